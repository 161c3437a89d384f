/**
 * `maintenance run [on options] -- CMD ARGS`, through the real CLI process under the
 * runtime running the tests (Deno or Bun): the command runs with maintenance on, the
 * state found is set back however the command ends (its exit status, a signal sent to
 * the CLI and passed on, a command not found), a store that fails on the way out is
 * reported with the command to run by hand (run here, to prove it works), and a
 * state someone else changed meanwhile is left as they set it. Every fault is real:
 * real signals, a real directory replaced by a file; no mocks.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { constants } from "node:os";
import process from "node:process";
import {
  cleanEnv,
  currentRuntime,
  ROOT,
  type RunningProcess,
  runProcess,
  scriptCommand,
  sleep,
  startProcess,
  useTempDirs,
} from "./helpers.ts";
import { type RedisHandle, startRedis } from "../scripts/test_servers.ts";

const dirs = useTempDirs("maintenance-cli-run-");
const runtime = currentRuntime();
const FUTURE = "2099-01-01T14:00:00Z";

/** The CLI, as argv, under the runtime running the tests. */
function cliArgv(args: string[]): [string, string[]] {
  return scriptCommand(runtime, "main.ts", args);
}

/** Runs the CLI to completion; `env` is added to a clean environment. */
function cli(args: string[], env: Record<string, string> = {}) {
  const [cmd, argv] = cliArgv(args);
  return runProcess(cmd, argv, { env: cleanEnv(env), timeoutMs: 60_000 });
}

/**
 * Starts `maintenance run ARGS` as a long-running process (`env` added to a clean
 * environment), and a promise of how it closed: its exit code and signal.
 */
function startRun(
  args: string[],
  env: Record<string, string> = {},
): { p: RunningProcess; closed: Promise<[number | null, string | null]> } {
  const [cmd, argv] = cliArgv(["run", ...args]);
  const p = startProcess(cmd, argv, { env: cleanEnv(env) });
  const closed = new Promise<[number | null, string | null]>((resolve) =>
    p.child.once("close", (code, sig) => resolve([code, sig]))
  );
  return { p, closed };
}

/** The state file, parsed. */
async function stored(file: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(file, "utf8"));
}

/** The CLI as a shell word list, for a command that runs it (no spaces in ROOT). */
function cliShell(): string {
  const [cmd, argv] = cliArgv([]);
  return [cmd, ...argv].join(" ");
}

/**
 * Sends `signal` to the CLI process. process.kill, not child.kill: after child.kill(sig)
 * Deno reports the child as ended by sig even when it exited with a status of its own.
 */
function signalCli(p: { child: { pid?: number } }, signal: string): void {
  process.kill(p.child.pid!, signal);
}

/** Whether a process with this pid exists. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe(`maintenance run under ${runtime}`, () => {
  it("runs the command in maintenance, exits with its status, stdout is the command's alone, then sets back the state found", async () => {
    const d = await dirs.fresh();
    const file = `${d}/state.txt`;
    // The command prints the state it runs under, then fails with 7.
    const r = await cli([
      "run",
      "--read-only",
      "--by",
      "alice@web-1",
      "--note",
      "deploy v2",
      "--file",
      file,
      "--",
      "sh",
      "-c",
      'cat "$F"; exit 7',
    ], { F: file });
    assert.equal(r.code, 7, r.stderr);
    const during = JSON.parse(r.stdout);
    assert.equal(during.enabled, true);
    assert.equal(during.readOnly, true);
    assert.equal(during.updatedBy, "alice@web-1");
    assert.equal(during.note, "deploy v2");
    assert.equal(
      r.stderr,
      `maintenance mode is ON (read-only) by alice@web-1: deploy v2 (state file ${file})\n` +
        "sh exited with status 7\n" +
        `set back: maintenance mode is OFF by alice@web-1 (state file ${file})\n`,
    );
    // No file before: set back to off, by the same --by.
    const after = await stored(file);
    assert.equal(after.enabled, false);
    assert.equal(after.updatedBy, "alice@web-1");
    assert.equal(after.readOnly, undefined);

    const ok = await cli(["run", "--file", file, "--", "true"]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, "");
    assert.doesNotMatch(ok.stderr, /no end set/, "run ends: no reminder");
    assert.equal((await stored(file)).enabled, false);
  });

  it("a state that was on (scheduled, message, bypass, a newer version's field) is set back as it was, not just off", async () => {
    const d = await dirs.fresh();
    const file = `${d}/state.txt`;
    const on = await cli([
      "on",
      "--from",
      "2098-01-01T00:00:00Z",
      "--until",
      "2098-01-01T02:00:00Z",
      "-m",
      "Nightly upgrade",
      "--retry-after",
      "600",
      "--secret",
      "a-bypass-secret-0123456789",
      "--by",
      "bob@web-2",
      "--note",
      "planned",
      "--file",
      file,
    ]);
    assert.equal(on.code, 0, on.stderr);
    const found = { ...await stored(file), "x-future": { kept: true } };
    await writeFile(file, JSON.stringify(found));
    const t0 = Date.now();
    const r = await cli([
      "run",
      "--for",
      "10m",
      "-m",
      "Deploying",
      "--by",
      "alice@web-1",
      "--file",
      file,
      "--",
      "sh",
      "-c",
      'cat "$F"',
    ], { F: file });
    assert.equal(r.code, 0, r.stderr);
    const during = JSON.parse(r.stdout);
    assert.equal(during.enabled, true);
    assert.equal(during.message, "Deploying");
    assert.equal(during.startsAt, undefined, "on now, not scheduled");
    const ends = Date.parse(during.endsAt);
    assert.ok(
      ends >= t0 + 600_000 && ends <= Date.now() + 600_000,
      during.endsAt,
    );
    const after = await stored(file);
    assert.ok(
      Date.parse(after.updatedAt as string) >= t0,
      "the set-back is a write of its own",
    );
    assert.deepEqual(after, {
      ...found,
      updatedBy: "alice@web-1",
      updatedAt: after.updatedAt,
    });
    assert.match(
      r.stderr,
      /set back: maintenance mode is OFF; scheduled from 2098-01-01T00:00:00Z .*by alice@web-1: planned; until 2098-01-01T02:00:00Z; message: "Nightly upgrade"; secret bypass set/,
    );
  });

  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    it(
      `${signal} to the CLI goes to the command; the CLI waits for it, sets the state back and exits ${
        128 + constants.signals[signal]
      }`,
      async () => {
        const d = await dirs.fresh();
        const file = `${d}/state.txt`;
        assert.equal((await cli(["off", "--file", file])).code, 0);
        const { p, closed } = startRun([
          "--by",
          "ops",
          "--file",
          file,
          "--",
          "sh",
          "-c",
          'echo "started $$"; exec sleep 30',
        ]);
        try {
          const pid = Number((await p.waitFor(/started (\d+)/))[1]);
          assert.ok(alive(pid));
          assert.equal((await stored(file)).enabled, true, "on while it runs");
          signalCli(p, signal);
          const [code, sig] = await closed;
          assert.equal(
            sig,
            null,
            `the CLI itself was not killed:\n${p.output()}`,
          );
          assert.equal(code, 128 + constants.signals[signal], p.output());
          assert.match(
            p.output(),
            new RegExp(
              `sh was ended by ${signal} \\(status ${
                128 + constants.signals[signal]
              }\\)\nset back: maintenance mode is OFF by ops`,
            ),
          );
          assert.equal(alive(pid), false, "the command is gone");
          const after = await stored(file);
          assert.equal(after.enabled, false);
          assert.equal(after.updatedBy, "ops");
        } finally {
          await p.stop();
        }
      },
    );
  }

  it("a command that cleans up on SIGTERM: the state stays on until it has finished, and its status is run's", async () => {
    const d = await dirs.fresh();
    const file = `${d}/state.txt`;
    const { p, closed } = startRun([
      "--file",
      file,
      "--",
      "sh",
      "-c",
      'trap \'kill $! 2>/dev/null; sleep 0.5; cat "$F" > "$D/cleanup.txt"; exit 0\' TERM; ' +
      "sleep 30 >/dev/null 2>&1 & echo started; wait",
    ], { F: file, D: d });
    try {
      await p.waitFor(/started/);
      signalCli(p, "SIGTERM");
      assert.equal((await closed)[0], 0, p.output());
      const cleanup = JSON.parse(await readFile(`${d}/cleanup.txt`, "utf8"));
      assert.equal(cleanup.enabled, true, "still on during the cleanup");
      assert.equal((await stored(file)).enabled, false, "set back after it");
      assert.match(p.output(), /sh exited with status 0\nset back: /);
    } finally {
      await p.stop();
    }
  });

  it("a command killed by a signal of its own: 128 + the signal; a command not found: 127; both set the state back", async () => {
    const d = await dirs.fresh();
    const file = `${d}/state.txt`;
    const killed = await cli([
      "run",
      "--file",
      file,
      "--",
      "sh",
      "-c",
      "kill -KILL $$",
    ]);
    assert.equal(killed.code, 128 + constants.signals.SIGKILL, killed.stderr);
    assert.match(killed.stderr, /sh was ended by SIGKILL \(status 137\)/);
    assert.equal((await stored(file)).enabled, false);
    const missing = await cli([
      "run",
      "--file",
      file,
      "--",
      "no-such-command-for-maintenance-run",
    ]);
    assert.equal(missing.code, 127, missing.stderr);
    assert.match(
      missing.stderr,
      /could not start no-such-command-for-maintenance-run: command not found\nset back: maintenance mode is OFF/,
    );
    assert.equal((await stored(file)).enabled, false);
  });

  it("a command that cannot be started (not executable): 126, the state set back", async () => {
    const d = await dirs.fresh();
    const file = `${d}/state.txt`;
    await writeFile(`${d}/job.sh`, "#!/bin/sh\necho ran\n", { mode: 0o644 });
    const r = await cli(["run", "--file", file, "--", `${d}/job.sh`]);
    assert.equal(r.code, 126, r.stderr);
    assert.equal(r.stdout, "");
    assert.match(r.stderr, /could not start .*job\.sh: .*EACCES/);
    assert.equal((await stored(file)).enabled, false);
  });

  it("a shared Redis cache that cannot be told (nothing listens): the command does not run, the state is set back, exit 1", async () => {
    const d = await dirs.fresh();
    const file = `${d}/state.txt`;
    const r = await cli([
      "run",
      "--by",
      "ops",
      "--file",
      file,
      "--",
      "touch",
      `${d}/ran`,
    ], { MAINTENANCE_REDIS_URL: "redis://127.0.0.1:1" });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /could not be deleted/);
    assert.match(r.stderr, /did not run touch /);
    assert.match(r.stderr, /set back: maintenance mode is OFF by ops/);
    await assert.rejects(readFile(`${d}/ran`), { code: "ENOENT" });
    assert.equal((await stored(file)).enabled, false);
  });

  describe("with a shared Redis cache (redis-server)", () => {
    let redis: RedisHandle | undefined;
    before(async () => {
      redis = await startRedis();
    });
    after(async () => {
      await redis?.stop();
    });
    const KEY = "maintenance_mode_state";
    const redisCli = (...args: string[]) =>
      runProcess("redis-cli", ["-p", String(redis!.port), ...args]);

    it("the key is cleared after the switch and after the set-back", async () => {
      const d = await dirs.fresh();
      const file = `${d}/state.txt`;
      assert.equal((await redisCli("SET", KEY, "stale")).code, 0);
      const r = await cli([
        "run",
        "--file",
        file,
        "--",
        "sh",
        "-c",
        `redis-cli -p ${redis!.port} EXISTS ${KEY}; redis-cli -p ${
          redis!.port
        } SET ${KEY} stale-again >/dev/null`,
      ], { MAINTENANCE_REDIS_URL: redis!.url });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "0\n", "cleared before the command ran");
      assert.equal(
        (await redisCli("EXISTS", KEY)).stdout,
        "0\n",
        "cleared after the set-back",
      );
    });

    it("SIGTERM while it clears the key, before the command starts: the command does not run, the state is set back, exit 143", async () => {
      const d = await dirs.fresh();
      const file = `${d}/state.txt`;
      const { p, closed } = startRun([
        "--file",
        file,
        "--",
        "touch",
        `${d}/ran`,
      ], { MAINTENANCE_REDIS_URL: redis!.url });
      try {
        // On is written; the CLI now clears the key (twice, 1.25 s apart).
        const t0 = Date.now();
        for (;;) {
          const text = await readFile(file, "utf8").catch(() => "");
          if (text.includes('"enabled":true')) break;
          assert.ok(Date.now() - t0 < 20_000, p.output());
          await sleep(10);
        }
        signalCli(p, "SIGTERM");
        const [code, sig] = await closed;
        assert.equal(sig, null, p.output());
        assert.equal(code, 143, p.output());
        assert.match(
          p.output(),
          /SIGTERM before the command started: did not run touch .*\nset back: maintenance mode is OFF/,
        );
        await assert.rejects(readFile(`${d}/ran`), { code: "ENOENT" });
        assert.equal((await stored(file)).enabled, false);
      } finally {
        await p.stop();
      }
    });
    it("a second SIGINT while it sets the state back (clearing the key) does not stop it", async () => {
      const d = await dirs.fresh();
      const file = `${d}/state.txt`;
      const { p, closed } = startRun([
        "--file",
        file,
        "--",
        "sh",
        "-c",
        `redis-cli -p ${redis!.port} SET ${KEY} stale >/dev/null; ` +
        'echo "started $$"; exec sleep 30',
      ], { MAINTENANCE_REDIS_URL: redis!.url });
      try {
        await p.waitFor(/started/);
        signalCli(p, "SIGINT");
        // Written back; the key is being cleared (twice, 1.25 s apart): Ctrl-C again.
        await p.waitFor(/set back: /);
        signalCli(p, "SIGINT");
        const [code, sig] = await closed;
        assert.equal(sig, null, p.output());
        assert.equal(code, 130, p.output());
        assert.equal((await stored(file)).enabled, false);
        assert.equal(
          (await redisCli("EXISTS", KEY)).stdout,
          "0\n",
          "the key was cleared to the end",
        );
      } finally {
        await p.stop();
      }
    });
  });

  it("the store fails on the way out: the exact command to run by hand (which works), exit 1 or the command's status", async () => {
    for (
      const c of [
        // found on, with a message and an end: the hand command is that `on`
        { found: ["on", "-m", "Back soon", "--until", FUTURE], exit: 0 },
        // found off (no file): the hand command is `off`
        { found: [], exit: 5 },
      ]
    ) {
      const d = await dirs.fresh();
      const sub = `${d}/sub`;
      await mkdir(sub);
      const file = `${sub}/state.txt`;
      if (c.found.length > 0) {
        const r = await cli([...c.found, "--by", "bob", "--file", file]);
        assert.equal(r.code, 0, r.stderr);
      }
      const found = c.found.length > 0 ? await stored(file) : undefined;
      // The command replaces the state file's directory with a plain file: a real
      // fault (ENOTDIR), even for root.
      const r = await cli([
        "run",
        "--by",
        "alice o'neil",
        "--file",
        file,
        "--",
        "sh",
        "-c",
        `rm -rf "$D/sub" && touch "$D/sub"; exit ${c.exit}`,
      ], { D: d });
      assert.equal(r.code, c.exit || 1, r.stderr);
      assert.match(
        r.stderr,
        /error: could not set the state back after the command: .*is a file, not a directory/,
      );
      const hand = r.stderr.match(/set it back by hand: (maintenance .*)\n/)
        ?.[1];
      assert.ok(hand, r.stderr);
      assert.equal(
        hand,
        c.found.length > 0
          ? `maintenance on -m 'Back soon' --until 2099-01-01T14:00:00.000Z --by 'alice o'\\''neil' --file ${file}`
          : `maintenance off --by 'alice o'\\''neil' --file ${file}`,
      );
      // Fix the fault, then run what it said, as an operator would (a shell).
      await rm(sub, { force: true });
      await mkdir(sub);
      const byHand = await runProcess(
        "sh",
        ["-c", `maintenance() { ${cliShell()} "$@"; }; ${hand}`],
        { env: cleanEnv(), timeoutMs: 60_000 },
      );
      assert.equal(byHand.code, 0, byHand.stderr);
      const after = await stored(file);
      assert.equal(after.enabled, found?.enabled ?? false);
      assert.equal(after.message, found?.message);
      assert.equal(after.endsAt, found?.endsAt);
      assert.equal(after.updatedBy, "alice o'neil");
    }
  });

  it("a state someone else changed while the command ran is left as they set it", async () => {
    const d = await dirs.fresh();
    const file = `${d}/state.txt`;
    assert.equal((await cli(["off", "--file", file])).code, 0);
    const r = await cli([
      "run",
      "--by",
      "job",
      "--file",
      file,
      "--",
      "sh",
      "-c",
      `${cliShell()} on -m "Extended by hand" --by bob --file "$F" 2>/dev/null`,
    ], { F: file });
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stderr,
      /the state file was changed while the command ran, so it is left as it is, not set back: maintenance mode is ON since .* by bob; message: "Extended by hand"/,
    );
    const after = await stored(file);
    assert.equal(after.enabled, true);
    assert.equal(after.updatedBy, "bob");
    assert.equal(after.message, "Extended by hand");
  });
});

// The repository root has no spaces: cliShell() relies on it.
assert.doesNotMatch(ROOT, /\s/);
