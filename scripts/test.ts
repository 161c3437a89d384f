/**
 * `deno task test`: sets up what is missing, then runs every `tests/*_test.ts` under
 * Deno and under Bun, and closes with one line `N passed, N failed`.
 *
 * Usage: deno task test [--deno-only|--bun-only] [files...]
 *
 * @module
 */
import { spawn, spawnSync } from "node:child_process";
import { readdirSync, readFileSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import process from "node:process";

const root = new URL("..", import.meta.url).pathname;
const args = process.argv.slice(2);
const denoOnly = args.includes("--deno-only");
const bunOnly = args.includes("--bun-only");
let files = args.filter((a) => !a.startsWith("--"));
if (files.length === 0) {
  files = readdirSync(`${root}/tests`).filter((f) => f.endsWith("_test.ts"))
    .sort()
    .map((f) => `tests/${f}`);
}

const setup = spawnSync("deno", ["run", "-A", "scripts/setup.ts"], {
  cwd: root,
  stdio: "inherit",
});
if (setup.status !== 0) {
  console.log("setup failed");
  console.log("0 passed, 1 failed");
  process.exit(1);
}

function runSuite(
  cmd: string,
  argv: string[],
  parse: (out: string) => { passed: number; failed: number } | undefined,
): Promise<{ passed: number; failed: number; code: number }> {
  return new Promise((resolve) => {
    console.log(`\n== ${cmd} ${argv.join(" ")}`);
    const child = spawn(cmd, argv, {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
      process.stdout.write(d);
    });
    child.stderr.on("data", (d) => {
      out += d;
      process.stderr.write(d);
    });
    child.on("close", (code) => {
      // deno-lint-ignore no-control-regex
      const counts = parse(out.replace(/\u001b\[[0-9;]*m/g, ""));
      resolve({
        passed: counts?.passed ?? 0,
        failed: counts?.failed ?? (code === 0 ? 0 : 1),
        code: code ?? 1,
      });
    });
  });
}

function unescapeXml(s: string): string {
  return s.replace(/&gt;/g, ">").replace(/&lt;/g, "<").replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'").replace(/&amp;/g, "&");
}

function countJunit(
  path: string,
): { passed: number; failed: number } | undefined {
  let xml: string;
  try {
    xml = readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
  const cases: { name: string; failed: boolean; skipped: boolean }[] = [];
  const re = /<testcase name="([^"]*)"[^>]*?(\/>|>([\s\S]*?)<\/testcase>)/g;
  for (const m of xml.matchAll(re)) {
    cases.push({
      name: unescapeXml(m[1]),
      failed: /<failure|<error/.test(m[3] ?? ""),
      skipped: /<skipped/.test(m[3] ?? ""),
    });
  }
  const names = cases.map((c) => c.name);
  let passed = 0;
  let failed = 0;
  for (const c of cases) {
    if (names.some((n) => n.startsWith(c.name + " > "))) continue; // a describe()
    if (c.failed) failed++;
    else if (!c.skipped) passed++;
  }
  return { passed, failed };
}

const results: {
  name: string;
  passed: number;
  failed: number;
  code: number;
}[] = [];
if (!bunOnly) {
  // Deno counts a describe() as a test and its it()s as steps; its JUnit report lists
  // both, so count the leaves there, as Bun does.
  const junit = `${tmpdir()}/maintenance-deno-junit-${process.pid}.xml`;
  const r = await runSuite(
    "deno",
    // --unstable-kv: tests/deno_kv_test.ts opens a real Deno KV (Deno.openKv).
    [
      "test",
      "-A",
      "--unstable-kv",
      "--no-check",
      `--junit-path=${junit}`,
      ...files,
    ],
    () => countJunit(junit),
  );
  results.push({ name: "deno", ...r });
}
if (!denoOnly) {
  const r = await runSuite("bun", [
    "test",
    "--timeout",
    "120000",
    ...files.map((f) => `./${f}`),
  ], (out) => {
    const p = [...out.matchAll(/^\s*(\d+) pass$/gm)].pop();
    const f = [...out.matchAll(/^\s*(\d+) fail$/gm)].pop();
    return p || f
      ? { passed: Number(p?.[1] ?? 0), failed: Number(f?.[1] ?? 0) }
      : undefined;
  });
  results.push({ name: "bun", ...r });
}

let passed = 0;
let failed = 0;
console.log("");
for (const r of results) {
  // A runner that exited non-zero with no failure counted still fails the run.
  const f = r.code !== 0 && r.failed === 0 ? 1 : r.failed;
  console.log(`${r.name}: ${r.passed} passed, ${f} failed`);
  passed += r.passed;
  failed += f;
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
