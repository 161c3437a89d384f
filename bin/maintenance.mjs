#!/usr/bin/env node
// The npm package's `maintenance` bin: `npx @x/maintenance on`, `bunx @x/maintenance on`
// (`bunx --bun` to run it on Bun when Node is installed too). It runs the same CLI as
// `deno task maintenance`. main.ts runs itself only under `import.meta.main`, which
// Node 20 does not have, so this file calls `runCli` instead.
//
// scripts/build_npm.ts copies this file into the npm package as bin/maintenance.mjs; it is not
// part of the JSR package (publish.exclude), and `../main.js` exists only in the build.
import process from "node:process";
import { runCli } from "../main.js";

process.exitCode = await runCli(process.argv.slice(2));
