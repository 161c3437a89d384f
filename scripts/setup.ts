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

function run(cmd: string): void {
  console.error(`setup: ${cmd}`);
  execSync(cmd, { cwd: root, stdio: ["ignore", "inherit", "inherit"] });
}

const demoOnly = process.argv.includes("--demo");

if (
  !existsSync(`${root}/node_modules/hono/package.json`) ||
  (!demoOnly && !existsSync(`${root}/node_modules/s3rver/package.json`))
) {
  run("npm ci --no-audit --no-fund --loglevel=error");
}
if (!demoOnly) {
  if (!has("bun")) run("npm i -g bun --no-audit --no-fund --loglevel=error");
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
