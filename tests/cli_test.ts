import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  mkdir,
  readdir,
  readFile,
  realpath,
  stat,
  writeFile,
} from "node:fs/promises";
import { execFileSync } from "node:child_process";
import { hostname } from "node:os";
import {
  cleanEnv,
  type ProcessResult,
  runProcess,
  type Runtime,
  RUNTIMES,
  scriptCommand,
  useTempDirs,
} from "./helpers.ts";

const dirs = useTempDirs("maintenance-cli-");
const freshDir = dirs.fresh;

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

const FUTURE = "2099-01-01T14:00:00Z";

/** `since 2026-12-05T14:02:11Z (3 s)` in `status`, as a pattern. */
const SINCE = String.raw`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(\d+ s\)`;

/** This process's user name, as `id -un` says it. */
function osUser(): string {
  return execFileSync("id", ["-un"], { encoding: "utf8" }).trim();
}

/** `text` as a pattern that matches it literally. */
function esc(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Runs the CLI as a subprocess of `runtime`, with a clean environment plus `env`. */
function runCli(
  runtime: Runtime,
  args: string[],
  opts: { cwd?: string; env?: Record<string, string> } = {},
): Promise<ProcessResult> {
  const [cmd, argv] = scriptCommand(runtime, "main.ts", args);
  return runProcess(cmd, argv, {
    cwd: opts.cwd,
    env: cleanEnv(opts.env),
    timeoutMs: 30_000,
  });
}

for (const runtime of RUNTIMES) {
  const label = runtime === "deno" ? "deno run -A main.ts" : "bun main.ts";
  const cli = (
    args: string[],
    opts: { cwd?: string; env?: Record<string, string> } = {},
  ) => runCli(runtime, args, opts);

  describe(`CLI: ${label}`, () => {
    it("--help and -h print usage and exit 0", async () => {
      for (const flag of ["--help", "-h"]) {
        const r = await cli([flag]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /^Usage: maintenance <command>/);
        assert.match(r.stdout, /on\s+switch maintenance mode on/);
        assert.match(r.stdout, /run \[options for on\] -- CMD \[ARGS\.\.\.\]/);
        for (const flag of ["--read-only", "--for DURATION", "--by NAME"]) {
          assert.ok(r.stdout.includes(flag), flag);
        }
        assert.ok(r.stdout.includes("--note TEXT"));
        assert.match(
          r.stdout,
          /Exit codes: 0 done, 1 the store failed, 2 usage error/,
        );
        assert.equal(r.stderr, "");
      }
    });

    it("status of a missing file is OFF, says no file exists at that path, creates nothing", async () => {
      const d = await freshDir();
      const r = await cli(["status", "--file", `${d}/state.txt`]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(
        r.stdout.trim(),
        `maintenance mode is OFF: no state file exists at ${d}/state.txt ` +
          "(a missing state file reads as OFF)",
      );
      const j = await cli(["status", "--json", "--file", `${d}/state.txt`]);
      assert.equal(j.code, 0, j.stderr);
      assert.deepEqual(JSON.parse(j.stdout), {
        enabled: false,
        readOnly: false,
        bypass: false,
        state: { enabled: false },
        store: `${d}/state.txt`,
        exists: false,
      });
      assert.deepEqual(await readdir(d), []);
    });

    it("--version and -V print deno.json's version, and nothing else", async () => {
      const { version } = JSON.parse(
        await readFile(new URL("../deno.json", import.meta.url), "utf8"),
      );
      for (const flag of ["--version", "-V"]) {
        // from another directory: the version is found next to main.ts, not in the cwd
        const r = await cli([flag], { cwd: await freshDir() });
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, `${version}\n`);
        assert.equal(r.stderr, "");
      }
    });

    it("a relative path: every command prints the absolute path it used", async () => {
      const d = await realpath(await freshDir());
      await mkdir(`${d}/sub`);
      const abs = `${d}/sub/maintenance_mode_state.txt`;
      const on = await cli(["on", "--by", "ops"], { cwd: `${d}/sub` });
      assert.equal(on.code, 0, on.stderr);
      assert.equal(
        on.stdout,
        `maintenance mode is ON by ops (state file ${abs})\n`,
      );
      const status = await cli(["status"], { cwd: `${d}/sub` });
      assert.match(
        status.stdout,
        new RegExp(
          `^maintenance mode is ON since ${SINCE} by ops \\(state file ${
            esc(abs)
          }\\)\n$`,
        ),
      );
      // the app one directory up reads another file: status there says so
      const up = await cli(["status"], { cwd: d });
      assert.match(
        up.stdout,
        new RegExp(
          `no state file exists at ${d}/maintenance_mode_state\\.txt`,
        ),
      );
      const rel = await cli(["off", "--by", "ops", "--file", "../x.txt"], {
        cwd: `${d}/sub`,
      });
      assert.equal(rel.code, 0, rel.stderr);
      assert.equal(
        rel.stdout,
        `maintenance mode is OFF by ops (state file ${d}/x.txt)\n`,
      );
      const env = await cli(["status", "--json"], {
        cwd: `${d}/sub`,
        env: { MAINTENANCE_STATE_FILE: "../x.txt" },
      });
      assert.equal(JSON.parse(env.stdout).store, `${d}/x.txt`);
      assert.equal(JSON.parse(env.stdout).exists, true);
    });

    it("on --json / off --json print one JSON object; --with-secret's secret once", async () => {
      const d = await freshDir();
      const file = `${d}/state.txt`;
      const on = await cli([
        "on",
        "--json",
        "--with-secret",
        "-m",
        "Back soon",
        "--until",
        FUTURE,
        "--file",
        file,
      ]);
      assert.equal(on.code, 0, on.stderr);
      assert.equal(on.stderr, "");
      assert.equal(on.stdout.trim().split("\n").length, 1, on.stdout);
      const o = JSON.parse(on.stdout);
      assert.equal(o.enabled, true);
      assert.equal(o.bypass, true);
      assert.equal(o.store, file);
      assert.equal(o.exists, true);
      assert.equal(o.state.message, "Back soon");
      assert.equal(o.state.endsAt, "2099-01-01T14:00:00.000Z");
      assert.equal(o.state.bypass, undefined, "never the hash");
      assert.match(o.secret, /^[A-Za-z0-9_-]{16,128}$/);
      const stored = await readFile(file, "utf8");
      assert.ok(!stored.includes(o.secret), "the secret is not stored");
      assert.ok(
        !on.stdout.includes(JSON.parse(stored).bypass.split(":")[1]),
        "hash printed",
      );
      // the secret is shown once: status never has it
      const status = await cli(["status", "--json", "--file", file]);
      assert.ok(!status.stdout.includes(o.secret));
      assert.equal(JSON.parse(status.stdout).secret, undefined);
      // without --with-secret, no secret field
      const plain = JSON.parse(
        (await cli(["on", "--json", "--file", file])).stdout,
      );
      assert.equal("secret" in plain, false);
      assert.equal(plain.bypass, false);

      const off = await cli(["off", "--json", "--file", file]);
      assert.equal(off.code, 0, off.stderr);
      const f = JSON.parse(off.stdout);
      assert.equal(f.enabled, false);
      assert.equal(f.state.enabled, false);
      assert.equal(f.store, file);
      assert.equal(f.exists, true);
      assert.equal("secret" in f, false);
    });

    it("status --exit-code: 3 while on, 0 while off, scheduled or missing", async () => {
      const d = await freshDir();
      const file = `${d}/state.txt`;
      const status = (...extra: string[]) =>
        cli(["status", "--exit-code", ...extra, "--file", file]);
      const missing = await status();
      assert.equal(missing.code, 0, missing.stderr);
      assert.equal((await cli(["on", "--file", file])).code, 0);
      const on = await status();
      assert.equal(on.code, 3, on.stderr);
      assert.match(on.stdout, /^maintenance mode is ON/);
      assert.equal(on.stderr, "");
      const onJson = await status("--json");
      assert.equal(onJson.code, 3, onJson.stderr);
      assert.equal(JSON.parse(onJson.stdout).enabled, true);
      // without --exit-code, status is 0 either way
      assert.equal((await cli(["status", "--file", file])).code, 0);
      assert.equal(
        (await cli(["on", "--from", "2098-01-01T00:00:00Z", "--file", file]))
          .code,
        0,
      );
      assert.equal((await status()).code, 0, "scheduled, not yet on");
      assert.equal((await cli(["off", "--file", file])).code, 0);
      assert.equal((await status()).code, 0);
      // a store failure is still 1, never read as on or off
      await writeFile(file, "{garbage");
      assert.equal((await status()).code, 1);
    });

    it("on / status / status --json / off, with --file", async () => {
      const d = await freshDir();
      const file = `${d}/state.txt`;
      const on = await cli([
        "on",
        "--by",
        "ops",
        "--file",
        file,
        "-m",
        "Back at 14:00",
        "--retry-after",
        "600",
        "--until",
        FUTURE,
      ]);
      assert.equal(on.code, 0, on.stderr);
      assert.match(on.stdout, /maintenance mode is ON/);
      assert.ok(on.stdout.includes(file), on.stdout);
      const stored = JSON.parse(await readFile(file, "utf8"));
      assert.equal(stored.enabled, true);
      assert.equal(stored.message, "Back at 14:00");
      assert.equal(stored.retryAfter, 600);
      assert.equal(stored.endsAt, "2099-01-01T14:00:00.000Z");

      const status = await cli(["status", "--file", file]);
      assert.equal(status.code, 0, status.stderr);
      assert.match(
        status.stdout,
        new RegExp(
          `^maintenance mode is ON since ${SINCE} by ops; until 2099-01-01T14:00:00Z ` +
            `\\(\\d+ d \\d+ h left\\); message: "Back at 14:00" \\(state file ${
              esc(file)
            }\\)\n$`,
        ),
      );

      const json = await cli(["status", "--json", "--file", file]);
      assert.equal(json.code, 0, json.stderr);
      const parsed = JSON.parse(json.stdout);
      assert.equal(parsed.enabled, true);
      assert.equal(parsed.state.message, "Back at 14:00");
      assert.equal(parsed.store, file);

      const off = await cli(["off", "--by", "ops", "--file", file]);
      assert.equal(off.code, 0, off.stderr);
      assert.equal(
        off.stdout,
        `maintenance mode is OFF by ops (state file ${file})\n`,
      );
      assert.equal(JSON.parse(await readFile(file, "utf8")).enabled, false);
      const json2 = JSON.parse(
        (await cli(["status", "--json", "--file", file])).stdout,
      );
      assert.equal(json2.enabled, false);
    });

    it("status --json says a bypass is set, never its hash (enough to mint a cookie)", async () => {
      const d = await freshDir();
      const file = `${d}/state.txt`;
      const on = await cli(["on", "--with-secret", "-m", "x", "--file", file]);
      assert.equal(on.code, 0, on.stderr);
      const stored: string = JSON.parse(await readFile(file, "utf8")).bypass;
      assert.match(stored, /^[0-9a-f]{32}:[0-9a-f]{64}$/);
      const r = await cli(["status", "--json", "--file", file]);
      assert.equal(r.code, 0, r.stderr);
      for (const part of stored.split(":")) {
        assert.ok(!r.stdout.includes(part), `hash printed: ${r.stdout}`);
      }
      const parsed = JSON.parse(r.stdout);
      assert.equal(parsed.enabled, true);
      assert.equal(parsed.bypass, true);
      assert.equal(parsed.state.bypass, undefined);
      assert.equal(parsed.state.message, "x");
      const off = await cli(["off", "--file", file]);
      assert.equal(off.code, 0, off.stderr);
      const after = JSON.parse(
        (await cli(["status", "--json", "--file", file])).stdout,
      );
      assert.equal(after.bypass, false);
    });

    it("status escapes bidi and C1 controls a state written by another tool holds", async () => {
      const d = await freshDir();
      const file = `${d}/state.txt`;
      // Written by hand, as another tool might: enable() refuses C1 controls.
      const message = "ok\u202egnp.exe\u009b31m\u2028x";
      await writeFile(file, JSON.stringify({ enabled: true, message }));
      const plain = await cli(["status", "--file", file]);
      assert.equal(plain.code, 0, plain.stderr);
      const json = await cli(["status", "--json", "--file", file]);
      assert.equal(json.code, 0, json.stderr);
      for (const out of [plain.stdout, json.stdout]) {
        assert.doesNotMatch(out, /[\u0080-\u009f\u2028\u202e]/, out);
      }
      assert.match(plain.stdout, /ok\\u202egnp\.exe\\u009b31m\\u2028x/);
      // Still JSON, with the message as it is stored.
      assert.equal(JSON.parse(json.stdout).state.message, message);
    });

    it("a scheduled window reads as OFF, scheduled", async () => {
      const d = await freshDir();
      const file = `${d}/state.txt`;
      const r = await cli([
        "on",
        "--file",
        file,
        "--from",
        "2098-01-01T00:00:00Z",
      ]);
      assert.equal(r.code, 0, r.stderr);
      const s = await cli(["status", "--file", file]);
      assert.match(
        s.stdout,
        /OFF; scheduled from 2098-01-01T00:00:00Z \(in \d+ d \d+ h\)/,
      );
      const j = JSON.parse(
        (await cli(["status", "--json", "--file", file])).stdout,
      );
      assert.equal(j.enabled, false);
      assert.equal(j.state.enabled, true);
    });

    it("MAINTENANCE_STATE_FILE picks the file; --file wins over it", async () => {
      const d = await freshDir();
      const envFile = `${d}/from-env.txt`;
      const env = { MAINTENANCE_STATE_FILE: envFile };
      const r = await cli(["on"], { env, cwd: d });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(JSON.parse(await readFile(envFile, "utf8")).enabled, true);
      const flagFile = `${d}/from-flag.txt`;
      const r2 = await cli(["off", "--file", flagFile], { env, cwd: d });
      assert.equal(r2.code, 0, r2.stderr);
      assert.equal(JSON.parse(await readFile(flagFile, "utf8")).enabled, false);
      assert.equal(JSON.parse(await readFile(envFile, "utf8")).enabled, true);
      assert.deepEqual((await readdir(d)).sort(), [
        "from-env.txt",
        "from-flag.txt",
      ]);
    });

    it("without --file or the variable: maintenance_mode_state.txt in the working directory", async () => {
      const d = await freshDir();
      const r = await cli(["on"], { cwd: d });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(await readdir(d), ["maintenance_mode_state.txt"]);
      const s = await cli(["status"], { cwd: d });
      assert.match(
        s.stdout.trim(),
        new RegExp(
          `^maintenance mode is ON since ${SINCE} by \\S+ \\(state file ${
            esc(await realpath(d))
          }/maintenance_mode_state\\.txt\\)$`,
        ),
      );
    });

    it("on --read-only --for --by --note: stored; status says since, by whom, why and the time left; --json has them", async () => {
      const d = await freshDir();
      const file = `${d}/state.txt`;
      const t0 = Date.now();
      const on = await cli([
        "on",
        "--read-only",
        "--for",
        "90m",
        "--by",
        "alice@web-1",
        "--note",
        "migrating orders",
        "--file",
        file,
      ]);
      const t1 = Date.now();
      assert.equal(on.code, 0, on.stderr);
      assert.equal(on.stderr, "", "an end is set: no reminder");
      const stored = JSON.parse(await readFile(file, "utf8"));
      assert.equal(stored.enabled, true);
      assert.equal(stored.readOnly, true);
      assert.equal(stored.updatedBy, "alice@web-1");
      assert.equal(stored.note, "migrating orders");
      const ends = Date.parse(stored.endsAt);
      assert.ok(
        ends >= t0 + 90 * 60_000 && ends <= t1 + 90 * 60_000,
        `--for 90m: endsAt ${stored.endsAt} is 90 minutes after the switch`,
      );
      const until = stored.endsAt.replace(/\.\d+Z$/, "Z");
      assert.equal(
        on.stdout,
        `maintenance mode is ON (read-only) by alice@web-1: migrating orders; ` +
          `until ${until} (1 h 30 min left) (state file ${file})\n`,
      );
      const status = await cli(["status", "--file", file]);
      assert.equal(status.code, 0, status.stderr);
      // the format, then the end and the time left
      assert.match(
        status.stdout,
        new RegExp(
          `^maintenance mode is ON \\(read-only\\) since ${SINCE} by alice@web-1: ` +
            `migrating orders; until ${until} \\(1 h (29|30) min left\\) ` +
            `\\(state file ${esc(file)}\\)\n$`,
        ),
      );
      assert.ok(
        status.stdout.includes(
          `since ${stored.updatedAt.replace(/\.\d+Z$/, "Z")} `,
        ),
        status.stdout,
      );
      const json = JSON.parse(
        (await cli(["status", "--json", "--file", file])).stdout,
      );
      assert.equal(json.enabled, true);
      assert.equal(json.readOnly, true);
      assert.equal(json.state.readOnly, true);
      assert.equal(json.state.updatedBy, "alice@web-1");
      assert.equal(json.state.note, "migrating orders");
      assert.equal(json.state.updatedAt, stored.updatedAt);
      assert.equal(json.state.endsAt, stored.endsAt);

      const off = await cli([
        "off",
        "--by",
        "bob@web-2",
        "--note",
        "orders migrated",
        "--file",
        file,
      ]);
      assert.equal(off.code, 0, off.stderr);
      assert.equal(off.stderr, "");
      assert.equal(
        off.stdout,
        `maintenance mode is OFF by bob@web-2: orders migrated (state file ${file})\n`,
      );
      const offStored = JSON.parse(await readFile(file, "utf8"));
      assert.equal(offStored.enabled, false);
      assert.equal(offStored.readOnly, undefined);
      assert.equal(offStored.updatedBy, "bob@web-2");
      assert.equal(offStored.note, "orders migrated");
      const offStatus = await cli(["status", "--file", file]);
      assert.match(
        offStatus.stdout,
        new RegExp(
          `^maintenance mode is OFF since ${SINCE} by bob@web-2: orders migrated \\(`,
        ),
      );
      const offJson = JSON.parse(
        (await cli(["status", "--json", "--file", file])).stdout,
      );
      assert.equal(offJson.readOnly, false);
      assert.equal(offJson.state.updatedBy, "bob@web-2");
    });

    it("without --by, on and off record the OS user and host (user@host)", async () => {
      const d = await freshDir();
      const file = `${d}/state.txt`;
      const expected = `${osUser()}@${hostname()}`;
      // $USER empty, as in a container: the name still comes from the OS.
      const envs: Record<string, string>[] = [{}, { USER: "", LOGNAME: "" }];
      for (const env of envs) {
        for (const cmd of ["on", "off"]) {
          const r = await cli([cmd, "--file", file], { env });
          assert.equal(r.code, 0, r.stderr);
          assert.equal(
            JSON.parse(await readFile(file, "utf8")).updatedBy,
            expected,
            `${cmd} ${JSON.stringify(env)}`,
          );
          assert.ok(r.stdout.includes(` by ${expected} `), r.stdout);
        }
      }
    });

    it("on without an end: one line on stderr says it stays on until off; not with --until or --for, nor for off", async () => {
      const d = await freshDir();
      const file = `${d}/state.txt`;
      const REMINDER =
        "no end set: maintenance stays on until 'maintenance off'\n";
      for (
        const args of [
          ["on"],
          ["on", "-m", "Back soon"],
          ["on", "--from", "2098-01-01T00:00:00Z"],
          ["on", "--json"],
        ]
      ) {
        const r = await cli([...args, "--file", file]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stderr, REMINDER, args.join(" "));
      }
      // --json: stdout is still the one object
      const j = await cli(["on", "--json", "--file", file]);
      assert.equal(JSON.parse(j.stdout).enabled, true);
      for (
        const args of [
          ["on", "--until", FUTURE],
          ["on", "--for", "30m"],
          ["off"],
        ]
      ) {
        const r = await cli([...args, "--file", file]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stderr, "", args.join(" "));
      }
    });

    it("--for with --from counts from the start of the window", async () => {
      const d = await freshDir();
      const file = `${d}/state.txt`;
      const r = await cli([
        "on",
        "--from",
        "2098-01-01T00:00:00Z",
        "--for",
        "1h30m",
        "--by",
        "ops",
        "--note",
        "nightly upgrade",
        "--file",
        file,
      ]);
      assert.equal(r.code, 0, r.stderr);
      const stored = JSON.parse(await readFile(file, "utf8"));
      assert.equal(stored.startsAt, "2098-01-01T00:00:00.000Z");
      assert.equal(stored.endsAt, "2098-01-01T01:30:00.000Z");
      const s = await cli(["status", "--file", file]);
      assert.match(
        s.stdout,
        /^maintenance mode is OFF; scheduled from 2098-01-01T00:00:00Z \(in \d+ d \d+ h\) by ops: nightly upgrade; until 2098-01-01T01:30:00Z \(/,
      );
    });

    it("status of states written elsewhere: on since the window opened, an ended window, a note quoted when it must be, an old state as before", async () => {
      const d = await freshDir();
      const file = `${d}/state.txt`;
      const now = Date.now();
      const iso = (ms: number) => new Date(ms).toISOString();
      const sec = (ms: number) => iso(ms).replace(/\.\d+Z$/, "Z");
      const status = async (state: unknown) => {
        await writeFile(
          file,
          typeof state === "string" ? state : JSON.stringify(state),
        );
        const r = await cli(["status", "--file", file]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout.split("\n").length, 2, r.stdout);
        return r.stdout.replace(` (state file ${file})\n`, "");
      };
      // written two hours ago for a window that opened an hour ago: on since then
      const opened = now - 3_600_000;
      assert.equal(
        await status({
          enabled: true,
          startsAt: iso(opened),
          endsAt: iso(now + 3 * 86_400_000 + 7_200_000 + 30_000),
          updatedAt: iso(now - 7_200_000),
          updatedBy: "deploy-bot",
          note: "step 1; step 2",
          message: "Back soon",
        }),
        `maintenance mode is ON since ${sec(opened)} (1 h) by deploy-bot: ` +
          `"step 1; step 2"; until ${
            sec(now + 3 * 86_400_000 + 7_200_000 + 30_000)
          } (3 d 2 h left); message: "Back soon"`,
      );
      // a note over two lines stays on one line, escaped
      assert.equal(
        await status({
          enabled: false,
          updatedAt: iso(now - 12 * 60_000 - 5000),
          updatedBy: "ops",
          note: "done\nall good",
        }),
        `maintenance mode is OFF since ${
          sec(now - 12 * 60_000 - 5000)
        } (12 min) by ops: "done\\nall good"`,
      );
      assert.equal(
        await status({
          enabled: true,
          endsAt: iso(now - 5 * 60_000 - 5000),
          updatedBy: "ops",
          note: "short job",
        }),
        `maintenance mode is OFF; the window ended at ${
          sec(now - 5 * 60_000 - 5000)
        } (5 min ago); set by ops: short job`,
      );
      // Older states, without the new fields: as before
      assert.equal(await status("1"), "maintenance mode is ON");
      assert.equal(
        await status({ enabled: true, message: "x" }),
        'maintenance mode is ON; message: "x"',
      );
      assert.equal(await status({ enabled: false }), "maintenance mode is OFF");
    });

    describe("usage errors: exit 2, stderr names the argument and where the help is, state untouched", () => {
      const cases: [string, string[], RegExp][] = [
        ["no command", [], /missing command: on, off, status or run/],
        ["unknown command", ["toggle"], /unknown command "toggle"/],
        [
          "extra argument",
          ["on", "now"],
          /unexpected argument "now" after "on"/,
        ],
        ["unknown flag", ["on", "--bogus"], /--bogus/],
        ["flag without its value", ["on", "--message"], /--message/],
        [
          "non-numeric --retry-after",
          ["on", "--retry-after", "soon"],
          /--retry-after must be a whole number.*"soon"/,
        ],
        [
          "negative --retry-after",
          ["on", "--retry-after=-5"],
          /--retry-after must be a whole number/,
        ],
        [
          "negative --retry-after as its own argument: our message, not the parser's",
          ["on", "--retry-after", "-5"],
          /^error: --retry-after must be a whole number of seconds \(0 to 31536000\), not "-5"\n/,
        ],
        [
          "fractional --refresh",
          ["on", "--refresh", "1.5"],
          /--refresh must be a whole number/,
        ],
        [
          "--until not a date",
          ["on", "--until", "tomorrow"],
          /--until must be an ISO-8601 date.*"tomorrow"/,
        ],
        [
          "--until in the past",
          ["on", "--until", "2001-01-01T00:00:00Z"],
          /--until 2001-01-01T00:00:00\.000Z is in the past/,
        ],
        ["--from after --until", [
          "on",
          "--from",
          "2099-02-01T00:00:00Z",
          "--until",
          FUTURE,
        ], /--from 2099-02-01T00:00:00\.000Z must be before/],
        [
          "--message with status",
          ["status", "--message", "x"],
          /--message only goes with "on"/,
        ],
        [
          "--exit-code with on",
          ["on", "--exit-code"],
          /--exit-code only goes with "status"/,
        ],
        ["empty --file", ["on", "--file", " "], /--file needs a path/],
      ];
      for (const [name, args, message] of cases) {
        it(name, async () => {
          const d = await freshDir();
          const file = `${d}/state.txt`;
          const before = '{"enabled":false,"message":"untouched"}\n';
          await writeFile(file, before);
          // An empty --file must not fall back to the env file either.
          const r = await cli(args, {
            env: { MAINTENANCE_STATE_FILE: file },
            cwd: d,
          });
          assert.equal(r.code, 2, `exit ${r.code}\n${r.stdout}\n${r.stderr}`);
          assert.match(r.stderr, /^error: /);
          assert.match(r.stderr, message);
          // the one-line error and where the help is, not the whole help
          assert.match(
            r.stderr,
            /^error: [^\n]+\nrun 'maintenance --help' for the commands and options\n$/,
          );
          assert.doesNotMatch(r.stderr, /Usage:/);
          assert.equal(r.stdout, "");
          assert.equal(await readFile(file, "utf8"), before);
          assert.deepEqual(await readdir(d), ["state.txt"]);
        });
      }
    });

    describe("store failures: exit 1, stderr says why", () => {
      it("a path under a regular file (ENOTDIR)", async () => {
        const d = await freshDir();
        await writeFile(`${d}/plain`, "x");
        const file = `${d}/plain/state.txt`;
        for (const cmd of ["on", "off", "status"]) {
          const r = await cli([cmd, "--file", file]);
          assert.equal(r.code, 1, `${cmd}: exit ${r.code}\n${r.stderr}`);
          assert.ok(r.stderr.includes(file), r.stderr);
          assert.match(
            r.stderr,
            /is a file, not a directory; choose another path/,
          );
          assert.doesNotMatch(r.stderr, /Usage:/);
        }
        assert.equal(await readFile(`${d}/plain`, "utf8"), "x");
      });

      it("a missing directory on write (ENOENT)", async () => {
        const d = await freshDir();
        const file = `${d}/nope/state.txt`;
        const r = await cli(["on", "--file", file]);
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, /nope does not exist; create it/);
        assert.equal(await exists(`${d}/nope`), false);
      });

      it("a directory in place of the file (EISDIR)", async () => {
        const d = await freshDir();
        await mkdir(`${d}/state.txt`);
        const r = await cli(["status", "--file", `${d}/state.txt`]);
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, /is a directory/);
      });

      it("a corrupt state file: status says so and how to fix it, the file is kept", async () => {
        const d = await freshDir();
        const file = `${d}/state.txt`;
        await writeFile(file, "{garbage");
        for (const args of [["status"], ["status", "--json"]]) {
          const r = await cli([...args, "--file", file]);
          assert.equal(r.code, 1, r.stderr);
          assert.ok(r.stderr.includes(file), r.stderr);
          assert.match(r.stderr, /corrupt/);
          assert.match(r.stderr, /run `maintenance on` or `maintenance off`/);
          assert.equal(r.stdout, "");
        }
        assert.equal(await readFile(file, "utf8"), "{garbage");
        // and `off` repairs it
        const off = await cli(["off", "--file", file]);
        assert.equal(off.code, 0, off.stderr);
        assert.equal((await cli(["status", "--file", file])).code, 0);
      });
    });
  });
}

describe("CLI across runtimes", () => {
  it("a state written by deno is read by bun and the other way round", async () => {
    const d = await freshDir();
    const file = `${d}/state.txt`;
    const run = (runtime: Runtime, args: string[]) => {
      const [cmd, argv] = scriptCommand(runtime, "main.ts", [
        ...args,
        "--file",
        file,
      ]);
      return runProcess(cmd, argv);
    };
    assert.equal((await run("deno", ["on", "-m", "from deno"])).code, 0);
    const a = JSON.parse((await run("bun", ["status", "--json"])).stdout);
    assert.equal(a.enabled, true);
    assert.equal(a.state.message, "from deno");
    assert.equal((await run("bun", ["off"])).code, 0);
    const b = JSON.parse((await run("deno", ["status", "--json"])).stdout);
    assert.equal(b.enabled, false);
  });
});
