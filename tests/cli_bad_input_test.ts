/**
 * Bad input to the CLI: every case exits 2 (usage: stderr is the one-line error naming
 * the argument, then `run 'maintenance --help' ...`, not the whole usage) or 1 (the store failed: stderr names the store and the fix), and the state
 * file is left byte for byte as it was. Most cases call `runCli` in process (fast); the
 * ones that need environment variables, and a few to prove the real exit status, run
 * `main.ts` as a child process under the runtime running the tests.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import {
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { runCli } from "../main.ts";
import { serializeState } from "../src/_state.ts";
import { parseDuration } from "../src/_duration.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");
const dir = mkdtempSync(join(tmpdir(), "maintenance-cli-bad-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const STATE = serializeState({
  enabled: true,
  message: "untouched",
  updatedAt: "2026-01-01T00:00:00.000Z",
});
const file = join(dir, "state.txt");
writeFileSync(file, STATE);
const aFile = join(dir, "plain");
writeFileSync(aFile, "x");

function snapshot(): string {
  return readFileSync(file, "utf8") + `@${statSync(file).mtimeMs}`;
}

async function cli(args: string[]): Promise<{ code: number; err: string }> {
  const err: string[] = [];
  const code = await runCli(args, { out: () => {}, err: (l) => err.push(l) });
  return { code, err: err.join("\n") };
}

/** Each case: arguments, the exit code, and what stderr must say. */
const CASES: { args: string[]; code: 1 | 2; says: RegExp }[] = [
  { args: [], code: 2, says: /missing command: on, off, status or run/ },
  {
    args: ["restart"],
    code: 2,
    says: /unknown command "restart"; use on, off, status or run/,
  },
  { args: ["ON"], code: 2, says: /unknown command "ON"/ },
  { args: ["on", "--mesage", "x"], code: 2, says: /Unknown option '--mesage'/ },
  { args: ["on", "-x"], code: 2, says: /Unknown option '-x'/ },
  {
    // A typo gets the option it misses, not advice to pass it as a positional.
    args: ["on", "--mesage=x"],
    code: 2,
    says: /Unknown option '--mesage'; did you mean --message\?/,
  },
  {
    args: ["on", "--retry_after", "5"],
    code: 2,
    says: /Unknown option '--retry_after'; did you mean --retry-after\?/,
  },
  {
    // A second -m would silently replace the first (git would join them).
    args: ["on", "-m", "first line", "-m", "second line"],
    code: 2,
    says: /--message is given more than once; give it once/,
  },
  {
    args: ["status", "--file", file, "--file", join(dir, "other.txt")],
    code: 2,
    says: /--file is given more than once/,
  },
  {
    args: ["on", "--message"],
    code: 2,
    says: /^error: --message needs a value$/m,
  },
  { args: ["on", "-m"], code: 2, says: /^error: --message needs a value$/m },
  {
    args: ["on", "--retry-after"],
    code: 2,
    says: /^error: --retry-after needs a value$/m,
  },
  {
    // the parser would call it ambiguous; a word after a flag that wants a value
    args: ["on", "--message", "--until", "2099-01-01T00:00:00Z"],
    code: 2,
    says:
      /--message needs a value; to give one that starts with a dash, write --message=VALUE/,
  },
  { args: ["on", "--json=yes"], code: 2, says: /--json takes no value/ },
  {
    args: ["on", "--retry-after", "ten"],
    code: 2,
    says: /--retry-after must be a whole number of seconds.*"ten"/,
  },
  {
    args: ["on", "--retry-after", "1.5"],
    code: 2,
    says: /--retry-after must be a whole number/,
  },
  {
    // our message, not the parser's "argument is ambiguous"
    args: ["on", "--retry-after", "-5"],
    code: 2,
    says:
      /^error: --retry-after must be a whole number of seconds \(0 to 31536000\), not "-5"$/m,
  },
  {
    args: ["on", "--refresh", "-1"],
    code: 2,
    says: /^error: --refresh must be a whole number of seconds .*"-1"$/m,
  },
  {
    args: ["on", "--retry-after", "1e3"],
    code: 2,
    says: /--retry-after must be a whole number/,
  },
  {
    args: ["on", "--retry-after", ""],
    code: 2,
    says: /--retry-after must be a whole number/,
  },
  {
    args: ["on", "--retry-after", "99999999999"],
    code: 2,
    says: /0 to 31536000/,
  },
  {
    args: ["on", "--refresh", "0x10"],
    code: 2,
    says: /--refresh must be a whole number/,
  },
  {
    args: ["on", "--until", "tomorrow"],
    code: 2,
    says: /--until must be an ISO-8601 date.*2030-01-01T14:00:00Z/,
  },
  {
    args: ["on", "--until", ""],
    code: 2,
    says: /--until must be an ISO-8601 date/,
  },
  {
    args: ["on", "--until", "2030-13-01T00:00:00Z"],
    code: 2,
    says: /--until must be an ISO-8601 date/,
  },
  {
    args: ["on", "--until", "2030-01-01T25:00:00Z"],
    code: 2,
    says: /--until must be an ISO-8601 date/,
  },
  {
    args: ["on", "--until", "2030-02-30T00:00:00Z"],
    code: 2,
    says: /--until must be an ISO-8601 date/, // Date.parse alone: March 2
  },
  {
    // Without a zone, each server would read it in its own: say what to add.
    args: ["on", "--until", "2030-01-01T14:00"],
    code: 2,
    says:
      /--until "2030-01-01T14:00" has no time zone.*[+-]\d{2}:\d{2}.*2030-01-01T14:00Z/,
  },
  {
    // ISO 8601's basic offset: say what RFC 3339 wants instead.
    args: ["on", "--until", "2030-01-01T14:00:00+0200"],
    code: 2,
    says: /write the offset with a colon: 2030-01-01T14:00:00\+02:00/,
  },
  {
    args: ["on", "--until", "2020-01-01T00:00:00Z"],
    code: 2,
    says: /--until .*in the past/,
  },
  {
    args: [
      "on",
      "--from",
      "2030-01-02T00:00:00Z",
      "--until",
      "2030-01-01T00:00:00Z",
    ],
    code: 2,
    says: /--from .*must be before/,
  },
  {
    args: ["on", "--message", "x".repeat(2001)],
    code: 2,
    says: /message must be at most 2000 characters/,
  },
  {
    args: ["on", "--message", "bell\u0007"],
    code: 2,
    says: /message must not contain control characters/,
  },
  {
    args: ["on", "--secret", "short"],
    code: 2,
    says: /--secret must be 16 to 128 characters/,
  },
  {
    args: ["on", "--secret", "has spaces in it, sixteen+"],
    code: 2,
    says: /--secret may only contain/,
  },
  {
    args: ["on", "--secret", "a".repeat(20), "--with-secret"],
    code: 2,
    says: /either --secret or --with-secret/,
  },
  // --for DURATION: a whole number and a unit, not with --until
  {
    args: ["on", "--for", "90"],
    code: 2,
    says: /^error: --for: duration "90" needs a unit: 90s, 90m, 90h or 90d$/m,
  },
  {
    args: ["on", "--for", "1.5h"],
    code: 2,
    says: /--for: duration "1\.5h" is not understood; .*such as 90s, 30m, 2h/,
  },
  {
    args: ["on", "--for", "30 min"],
    code: 2,
    says: /--for: duration "30 min" is not understood/,
  },
  {
    args: ["on", "--for", "0m"],
    code: 2,
    says: /--for: duration "0m" is zero/,
  },
  {
    args: ["on", "--for", "400d"],
    code: 2,
    says: /--for: duration "400d" is more than 365 days/,
  },
  {
    args: ["on", "--for=-5m"],
    code: 2,
    says: /--for: duration "-5m" is not understood/,
  },
  {
    args: ["on", "--for", "-5m"],
    code: 2,
    says: /--for: duration "-5m" is not understood/,
  },
  { args: ["on", "--for"], code: 2, says: /^error: --for needs a value$/m },
  {
    args: ["on", "--for", "2h", "--until", "2099-01-01T00:00:00Z"],
    code: 2,
    says: /give either --for or --until, not both/,
  },
  {
    args: ["on", "--for", "2h", "--for", "3h"],
    code: 2,
    says: /--for is given more than once/,
  },
  {
    // the end would come before the start
    args: ["on", "--from", "2020-01-01T00:00:00Z", "--for", "1h"],
    code: 2,
    says:
      /^error: the end \(--from \+ --for\) 2020-01-01T01:00:00\.000Z is in the past/m,
  },
  // who and why
  { args: ["on", "--by", ""], code: 2, says: /--by needs a name/ },
  { args: ["off", "--by", "  "], code: 2, says: /--by needs a name/ },
  {
    args: ["on", "--by", "x".repeat(201)],
    code: 2,
    says: /^error: --by must be at most 200 characters \(it has 201\)$/m,
  },
  {
    args: ["off", "--by", "alice\u001b[31m"],
    code: 2,
    says: /--by must not contain control characters/,
  },
  {
    args: ["off", "--note", "n".repeat(2001)],
    code: 2,
    says: /--note must be at most 2000 characters/,
  },
  {
    args: ["on", "--note", "bell\u0007"],
    code: 2,
    says: /--note must not contain control characters/,
  },
  { args: ["on", "--note"], code: 2, says: /^error: --note needs a value$/m },
  {
    args: ["status", "--by", "alice"],
    code: 2,
    says: /--by only goes with "on", "off" or "run"/,
  },
  {
    args: ["status", "--note", "x"],
    code: 2,
    says: /--note only goes with "on", "off" or "run"/,
  },
  {
    args: ["off", "--read-only"],
    code: 2,
    says: /--read-only only goes with "on" or "run"/,
  },
  {
    args: ["off", "--for", "1h"],
    code: 2,
    says: /--for only goes with "on" or "run"/,
  },
  {
    args: ["status", "--read-only"],
    code: 2,
    says: /--read-only only goes with "on" or "run"/,
  },
  {
    args: ["on", "--read-only=yes"],
    code: 2,
    says: /--read-only takes no value/,
  },
  {
    args: ["on", "--readonly"],
    code: 2,
    says: /Unknown option '--readonly'; did you mean --read-only\?/,
  },
  // run
  {
    args: ["run"],
    code: 2,
    says: /run needs a command after --: maintenance run \[options\] -- CMD/,
  },
  { args: ["run", "--"], code: 2, says: /run needs a command after --/ },
  {
    args: ["run", "./migrate.sh"],
    code: 2,
    says:
      /unexpected argument "\.\/migrate\.sh" after "run"; put the command after --: maintenance run \[options\] -- \.\/migrate\.sh/,
  },
  {
    args: ["on", "--", "true"],
    code: 2,
    says:
      /unexpected argument "true" after "on"; only run takes a command after --/,
  },
  {
    args: ["run", "--json", "--", "true"],
    code: 2,
    says: /--json does not go with "run"/,
  },
  {
    args: ["run", "--exit-code", "--", "true"],
    code: 2,
    says: /--exit-code only goes with "status"/,
  },
  {
    args: ["run", "--for", "soon", "--", "true"],
    code: 2,
    says: /--for: duration "soon" is not understood/,
  },
  {
    args: ["run", "--until", "2020-01-01T00:00:00Z", "--", "true"],
    code: 2,
    says: /--until .*in the past/,
  },
  {
    // A flag after -- is the command's, not this CLI's: still run's usage error.
    args: ["run", "--mesage", "x", "--", "true"],
    code: 2,
    says: /Unknown option '--mesage'; did you mean --message\?/,
  },
  {
    args: ["status", "extra"],
    code: 2,
    says: /unexpected argument "extra" after "status"/,
  },
  {
    args: ["off", "--message", "x"],
    code: 2,
    says: /--message only goes with "on"/,
  },
  {
    args: ["on", "--exit-code"],
    code: 2,
    says: /--exit-code only goes with "status"/,
  },
  {
    args: ["off", "--exit-code"],
    code: 2,
    says: /--exit-code only goes with "status"/,
  },
  { args: ["on", "--file", ""], code: 2, says: /--file needs a path/ },
  {
    args: ["status", "--file", "x", "--s3", "s3://bucket/key"],
    code: 2,
    says: /either --file or --s3/,
  },
  {
    args: ["status", "--s3", "http://bucket/key"],
    code: 2,
    says: /--s3: .*must start with s3:\/\//,
  },
  {
    args: ["status", "--s3", "s3://"],
    code: 2,
    says: /--s3: .*bucket name is missing/,
  },
  {
    args: ["status", "--s3", "s3://ab/key"],
    code: 2,
    says: /--s3: .*not a valid bucket name/,
  },
  {
    args: ["status", "--s3", "s3://bucket//key"],
    code: 2,
    says: /--s3: .*key starts with "\/"/,
  },
  {
    args: ["status", "--s3", "s3://my bucket/key"],
    code: 2,
    says: /--s3: .*not a valid bucket name/,
  },
  {
    args: ["on", "--file", join(dir, "no", "such", "dir", "state.txt")],
    code: 1,
    says: /does not exist; create it, or choose another path/,
  },
  {
    args: ["on", "--file", join(aFile, "state.txt")],
    code: 1,
    says: /is a file, not a directory/,
  },
];

describe("CLI bad input (in process)", () => {
  for (const c of CASES) {
    const name = `${
      c.args.join(" ").slice(0, 80) || "(no arguments)"
    } → exit ${c.code}`;
    it(name, async () => {
      const args = c.args.some((a) => a === "--file" || a === "--s3")
        ? c.args
        : ["--file", file, ...c.args]; // first, so a flag last misses its value
      const before = snapshot();
      const r = await cli(args);
      assert.equal(r.code, c.code, r.err);
      assert.match(r.err, c.says);
      assert.doesNotMatch(r.err, /after '--'/, "no advice this CLI refuses");
      assert.doesNotMatch(r.err, /Usage:/, "the one-line error, not the help");
      if (c.code === 2) {
        // the error, then where the help is: two lines
        assert.match(
          r.err,
          /^error: [^\n]*\nrun 'maintenance --help' for the commands and options$/,
        );
      } else {
        assert.doesNotMatch(
          r.err,
          /maintenance --help/,
          "a store error is not a usage error",
        );
      }
      assert.equal(snapshot(), before, "the state file is untouched");
      assert.deepEqual(readdirSync(dir).sort(), ["plain", "state.txt"]);
    });
  }
});

/** The CLI as a child process, with only the environment given (plus PATH/HOME). */
function runMain(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stderr: string }> {
  const [cmd, argv] = "Bun" in globalThis
    ? [process.execPath, [`${ROOT}/main.ts`, ...args]]
    : [process.execPath, [
      "run",
      "-A",
      "--no-lock",
      "--config",
      `${ROOT}/deno.json`,
      `${ROOT}/main.ts`,
      ...args,
    ]];
  const base: Record<string, string> = {};
  for (const k of ["PATH", "HOME", "DENO_DIR", "TMPDIR"]) {
    if (process.env[k]) base[k] = process.env[k]!;
  }
  return new Promise((resolve) => {
    const child = spawn(cmd, argv, {
      cwd: dir,
      env: { ...base, ...env },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr?.on("data", (d: Uint8Array | string) => stderr += String(d));
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

describe("CLI bad input (child process, real exit status)", () => {
  const S3 = ["status", "--s3", "s3://bucket/state.txt"];
  const PROC: {
    args: string[];
    env?: Record<string, string>;
    code: 1 | 2;
    says: RegExp;
  }[] = [
    {
      args: ["restart", "--file", file],
      code: 2,
      says: /unknown command "restart"/,
    },
    {
      args: ["on", "--until", "yesterday", "--file", file],
      code: 2,
      says: /--until must be an ISO-8601 date/,
    },
    {
      args: S3,
      env: { MAINTENANCE_S3_ENDPOINT: "ftp://127.0.0.1:1" },
      code: 2,
      says:
        /MAINTENANCE_S3_ENDPOINT "ftp:\/\/127\.0\.0\.1:1" is not an http:\/\/ or https:\/\/ URL; write e\.g\./,
    },
    {
      args: S3,
      env: { MAINTENANCE_S3_ENDPOINT: "not a url" },
      code: 2,
      says:
        /MAINTENANCE_S3_ENDPOINT "not a url" is not an http:\/\/ or https:\/\/ URL/,
    },
    {
      args: S3,
      env: {
        MAINTENANCE_S3_ENDPOINT: "http://127.0.0.1:1",
        MAINTENANCE_S3_TIMEOUT_MS: "soon",
      },
      code: 2,
      says: /MAINTENANCE_S3_TIMEOUT_MS must be a whole number/,
    },
    {
      args: S3,
      env: {
        MAINTENANCE_S3_ENDPOINT: "http://127.0.0.1:1",
        AWS_ACCESS_KEY_ID: "AKIA",
      },
      code: 2,
      says: /AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not/,
    },
    {
      // node-redis refuses the path only when it connects: after the state is written.
      args: ["on", "--file", file],
      env: { MAINTENANCE_REDIS_URL: "redis://127.0.0.1:1/abc" },
      code: 2,
      says:
        /MAINTENANCE_REDIS_URL must look like .*only a database number, such as \/0 \(got "\/abc"\)/,
    },
    {
      args: ["off", "--file", file],
      env: { MAINTENANCE_REDIS_URL: "redis://127.0.0.1:1/0/x" },
      code: 2,
      says: /MAINTENANCE_REDIS_URL .*only a database number/,
    },
    {
      args: ["status"],
      env: { MAINTENANCE_S3_URL: "https://bucket/key" },
      code: 2,
      says: /MAINTENANCE_S3_URL: .*must start with s3:\/\//,
    },
    {
      // Nothing listens on port 1: the store fails, which is exit 1, not usage.
      args: S3,
      env: {
        MAINTENANCE_S3_ENDPOINT: "http://127.0.0.1:1",
        AWS_ACCESS_KEY_ID: "S3RVER",
        AWS_SECRET_ACCESS_KEY: "S3RVER",
        MAINTENANCE_S3_TIMEOUT_MS: "3000",
      },
      code: 1,
      says: /s3:\/\/bucket\/state\.txt.*(cannot connect|did not answer)/,
    },
    {
      args: ["on", "--s3", "s3://bucket/state.txt"],
      env: {
        MAINTENANCE_S3_ENDPOINT: "http://127.0.0.1:1",
        AWS_ACCESS_KEY_ID: "S3RVER",
        AWS_SECRET_ACCESS_KEY: "S3RVER",
        MAINTENANCE_S3_TIMEOUT_MS: "3000",
      },
      code: 1,
      says: /cannot write maintenance state s3:\/\/bucket\/state\.txt/,
    },
  ];
  for (const c of PROC) {
    const env = Object.entries(c.env ?? {}).map(([k, v]) => `${k}=${v}`).join(
      " ",
    );
    it(`${env} ${c.args.join(" ")} → exit ${c.code}`.trim(), async () => {
      const before = snapshot();
      const r = await runMain(c.args, c.env);
      assert.equal(r.code, c.code, r.stderr);
      assert.match(r.stderr, c.says);
      assert.equal(snapshot(), before, "the state file is untouched");
      assert.deepEqual(readdirSync(dir).sort(), ["plain", "state.txt"]);
    });
  }
});

describe("CLI without permission to read the environment (deno run without --allow-env)", () => {
  it("exits 2 naming the variable and --allow-env, instead of switching a local file", async () => {
    const cwd = mkdtempSync(join(tmpdir(), "maintenance-cli-noenv-"));
    try {
      const base: Record<string, string> = {};
      for (const k of ["PATH", "HOME", "DENO_DIR", "TMPDIR"]) {
        if (process.env[k]) base[k] = process.env[k]!;
      }
      const run = (args: string[]) =>
        new Promise<{ code: number | null; stderr: string }>((resolve) => {
          const child = spawn("deno", [
            "run",
            "--allow-read",
            "--allow-write",
            "--no-prompt",
            "--no-lock",
            "--config",
            `${ROOT}/deno.json`,
            `${ROOT}/main.ts`,
            ...args,
          ], {
            cwd,
            env: { ...base, MAINTENANCE_S3_URL: "s3://fleet-bucket/state.txt" },
            stdio: ["ignore", "ignore", "pipe"],
          });
          let stderr = "";
          child.stderr?.on(
            "data",
            (d: Uint8Array | string) => stderr += String(d),
          );
          const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
          child.on("close", (code) => {
            clearTimeout(timer);
            resolve({ code, stderr });
          });
        });
      const r = await run(["on"]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(
        r.stderr,
        /cannot read the environment variable MAINTENANCE_S3_URL .*--allow-env/,
      );
      assert.deepEqual(readdirSync(cwd), [], "no local state file was written");
      // status with --file reads no store variable, and skips the cache settings.
      const s = await run(["status", "--file", file]);
      assert.equal(s.code, 0, s.stderr);
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  });
});

describe("run without permission to start a command (deno run without --allow-run)", () => {
  it("exits 2 naming --allow-run before anything is written", async () => {
    const before = snapshot();
    const r = await new Promise<{ code: number | null; stderr: string }>(
      (resolve) => {
        const child = spawn("deno", [
          "run",
          "--allow-read",
          "--allow-write",
          "--allow-env",
          "--allow-sys",
          "--no-prompt",
          "--no-lock",
          "--config",
          `${ROOT}/deno.json`,
          `${ROOT}/main.ts`,
          "run",
          "--file",
          file,
          "--",
          "touch",
          join(dir, "ran"),
        ], { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
        let stderr = "";
        child.stderr?.on(
          "data",
          (d: Uint8Array | string) => stderr += String(d),
        );
        const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
        child.on("close", (code) => {
          clearTimeout(timer);
          resolve({ code, stderr });
        });
      },
    );
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      r.stderr,
      /^error: run starts a command: under Deno, allow it with --allow-run/,
    );
    assert.equal(snapshot(), before, "the state file is untouched");
    assert.deepEqual(readdirSync(dir).sort(), ["plain", "state.txt"]);
  });
});

describe("parseDuration (on --for, the admin routes' for)", () => {
  it("reads 90s, 30m, 2h, 1d and 1h30m as milliseconds", () => {
    assert.equal(parseDuration("90s"), 90_000);
    assert.equal(parseDuration("30m"), 1_800_000);
    assert.equal(parseDuration("2h"), 7_200_000);
    assert.equal(parseDuration("1d"), 86_400_000);
    assert.equal(parseDuration("1h30m"), 5_400_000);
    assert.equal(parseDuration("1d2h3m4s"), 93_784_000);
    assert.equal(parseDuration(" 2H "), 7_200_000);
    assert.equal(parseDuration("365d"), 365 * 86_400_000);
  });
  it("refuses anything else with what to write instead", () => {
    for (
      const text of ["", "90", "1.5h", "30 min", "-5m", "m", "2h1d", "1h1h"]
    ) {
      assert.throws(() => parseDuration(text), {
        name: "TypeError",
        message: /^duration ".*" (needs a unit|is not understood; .*30m)/,
      }, text);
    }
    for (const text of ["0s", "0h0m", "366d", "9".repeat(30) + "d"]) {
      assert.throws(() => parseDuration(text), { name: "RangeError" }, text);
    }
    assert.throws(
      () => parseDuration(5 as unknown as string),
      { name: "TypeError", message: /a duration must be a string/ },
    );
  });
});
