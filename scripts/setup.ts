/**
 * Installs what the project needs on a fresh machine, and nothing when it is there:
 * npm packages (node_modules), Bun, and for tests the Debian packages redis-server and
 * chromium. Imports nothing but Node built-ins, so it runs before node_modules exists.
 *
 * Usage: deno run -A scripts/setup.ts [--demo]   (--demo: only what the demo needs)
 *
 * @module
 */
import { execSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import process from "node:process";

const root = new URL("..", import.meta.url).pathname;

function has(cmd: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" })
    .status === 0;
}

function run(cmd: string, hint = ""): void {
  console.error(`setup: ${cmd}`);
  try {
    execSync(cmd, { cwd: root, stdio: ["ignore", "inherit", "inherit"] });
  } catch (e) {
    // Its own output is above; say which step failed, without a stack trace.
    const status = (e as { status?: unknown }).status;
    console.error(
      `setup: \`${cmd}\` failed${
        typeof status === "number" ? ` (exit ${status})` : ""
      }${hint ? `; ${hint}` : ""}`,
    );
    process.exit(1);
  }
}

const demoOnly = process.argv.includes("--demo");

if (
  !existsSync(`${root}/node_modules/hono/package.json`) ||
  (!demoOnly && !existsSync(`${root}/node_modules/s3rver/package.json`))
) {
  // Without npm (Deno alone), Deno installs the same packages from package.json.
  if (has("npm")) {
    run(
      "npm ci --no-audit --no-fund --loglevel=error",
      "check the network to the npm registry",
    );
  } else {
    run("deno install", "check the network to the npm registry");
  }
}
if (!demoOnly) {
  if (!has("bun")) {
    if (!has("npm")) {
      console.error(
        "setup: the tests run under Bun too, and Bun comes from npm here: install Node " +
          "and npm (apt-get install nodejs npm), or Bun itself, then run this again",
      );
      process.exit(1);
    }
    run("npm i -g bun --no-audit --no-fund --loglevel=error");
  }
  const apt: string[] = [];
  if (!has("redis-server")) apt.push("redis-server");
  if (!has("chromium")) apt.push("chromium");
  if (process.argv.includes("--bench") && !has("wrk")) apt.push("wrk");
  if (apt.length > 0) {
    const sudo = process.getuid?.() === 0 ? "" : "sudo ";
    run(`${sudo}apt-get update -qq`);
    run(
      `${sudo}env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${
        apt.join(" ")
      }`,
    );
  }
}
