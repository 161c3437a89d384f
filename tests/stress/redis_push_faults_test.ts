/**
 * Push over Redis under repeated Redis deaths (deno task test:stress): three real demo
 * processes (scripts/demo.ts: push on with MAINTENANCE_REDIS_URL, TTL 30 s) under HTTP
 * load, and a real redis-server killed with SIGKILL and restarted on the same port,
 * STRESS_CYCLES times (default 3). In each cycle the real CLI switches maintenance on
 * while Redis is down (the state is written; it exits 1 saying the key was not
 * deleted), every demo serves it within a few seconds (polling while push is down),
 * and once Redis is back and every demo has subscribed again, `maintenance off` is
 * served everywhere within 100 ms (push again). No request fails or waits past the
 * demo's `timeoutMs` (1000 ms, plus slack for HTTP on a loaded machine), and each demo
 * logs one `[maintenance]` line per outage (its default onError).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import process from "node:process";
import {
  type RedisHandle,
  startRedis,
  withRedisAdmin,
} from "../../scripts/test_servers.ts";
import {
  cleanEnv,
  makeTempDir,
  removeDir,
  type RunningProcess,
  scriptCommand,
  sleep,
  startDemo,
} from "../helpers.ts";

const CYCLES = Number(process.env.STRESS_CYCLES ?? 3);
const TIMEOUT_MS = 1000; // the demo's (createMaintenance's default)
const SLACK_MS = 250;
const CHANNEL = "maintenance_mode_state:written";

/** Runs the CLI; resolves with when it printed (right after its write) and how it ended. */
function cli(args: string[], env: Record<string, string>) {
  const [cmd, argv] = scriptCommand("deno", "main.ts", args);
  return new Promise<{ printedAt: number; code: number | null; out: string }>(
    (resolve, reject) => {
      const child = spawn(cmd, argv, {
        env,
        stdio: ["ignore", "pipe", "pipe"],
      });
      let printedAt = NaN;
      let out = "";
      child.stdout.on("data", (d) => {
        if (Number.isNaN(printedAt)) printedAt = performance.now();
        out += String(d);
      });
      child.stderr.on("data", (d) => out += String(d));
      child.on("error", reject);
      child.on("close", (code) => resolve({ printedAt, code, out }));
    },
  );
}

describe(`stress: push over Redis, redis-server killed ${CYCLES} times under load`, () => {
  let redis: RedisHandle | undefined;
  let dir: string | undefined;
  let env: Record<string, string>;
  const demos: RunningProcess[] = [];
  const urls: string[] = [];

  before(async () => {
    redis = await startRedis();
    dir = await makeTempDir();
    const settings = {
      MAINTENANCE_STATE_FILE: `${dir}/state.json`,
      MAINTENANCE_REDIS_URL: redis.url,
      MAINTENANCE_CACHE_TTL_MS: "30000",
    };
    env = cleanEnv(settings);
    for (
      const { demo, url } of await Promise.all(
        [0, 1, 2].map(() => startDemo("deno", settings)),
      )
    ) {
      demos.push(demo);
      urls.push(url + "/");
    }
  });

  after(async () => {
    await Promise.all(demos.map((d) => d.stop()));
    await redis?.stop();
    await removeDir(dir);
  });

  async function subscribed(limitMs: number): Promise<void> {
    const deadline = performance.now() + limitMs;
    for (;;) {
      const n = await withRedisAdmin(
        redis!.url,
        async (c) => Number((await c.pubSubNumSub(CHANNEL))[CHANNEL] ?? 0),
      ).catch(() => 0);
      if (n >= urls.length) return;
      assert.ok(performance.now() < deadline, "every demo subscribed again");
      await sleep(25);
    }
  }

  it("no request fails or waits past timeoutMs; switches are served while Redis is down and pushed once it is back; one log line per outage", async () => {
    await subscribed(15_000);
    let running = true;
    let slowest = 0;
    const statuses = new Map<number, number>();
    const failures: string[] = [];
    const last = new Map<string, number>();
    const load = urls.flatMap((url) =>
      Array.from({ length: 3 }, async () => {
        while (running) {
          const t0 = performance.now();
          try {
            const res = await fetch(url);
            await res.arrayBuffer();
            statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
            last.set(url, res.status);
          } catch (e) {
            failures.push(String(e));
          }
          slowest = Math.max(slowest, performance.now() - t0);
          await sleep(1);
        }
      })
    );
    /** Resolves with the time when every demo's latest answer is `status`. */
    async function everywhere(status: number, limitMs: number) {
      const t0 = performance.now();
      while (!urls.every((u) => last.get(u) === status)) {
        assert.ok(
          performance.now() - t0 < limitMs,
          `every demo answers ${status} within ${limitMs} ms`,
        );
        await sleep(1);
      }
      return performance.now();
    }
    /** Runs the CLI while watching the demos: ms from its write until all answer `status`. */
    async function flip(args: string[], code: number, status: number) {
      const seen = everywhere(status, 10_000);
      const run = await cli(args, env);
      assert.equal(run.code, code, run.out);
      return { ms: await seen - run.printedAt, out: run.out };
    }
    const pushed: number[] = [];
    const polled: number[] = [];
    try {
      await everywhere(200, 5000);
      for (let cycle = 0; cycle < CYCLES; cycle++) {
        const info = await withRedisAdmin(redis!.url, (c) => c.info("server"));
        process.kill(Number(/process_id:(\d+)/.exec(info)![1]), "SIGKILL");
        await sleep(200);
        const on = await flip(["on", "--message", `cycle ${cycle}`], 1, 503);
        assert.match(on.out, /the state was written/);
        polled.push(on.ms);
        await sleep(500);
        redis = await startRedis({ port: redis!.port });
        await subscribed(15_000);
        await sleep(200);
        pushed.push((await flip(["off"], 0, 200)).ms);
        await sleep(500);
      }
    } finally {
      running = false;
      await Promise.all(load);
    }
    console.log(JSON.stringify({
      cycles: CYCLES,
      requests: Object.fromEntries(statuses),
      slowest_ms: Math.round(slowest),
      on_while_down_ms: polled.map(Math.round),
      off_pushed_ms: pushed.map(Math.round),
    }));
    assert.deepEqual(failures, [], "no request failed");
    assert.deepEqual(
      [...statuses.keys()].filter((s) => s !== 200 && s !== 503),
      [],
      "only 200 and 503",
    );
    assert.ok(slowest <= TIMEOUT_MS + SLACK_MS, `slowest ${slowest} ms`);
    for (const ms of pushed) assert.ok(ms <= 100, `off pushed after ${ms} ms`);
    for (const d of demos) {
      const lines = d.output().split("\n").filter((l) =>
        l.startsWith("[maintenance]")
      );
      assert.equal(lines.length, CYCLES, lines.join("\n"));
      for (const l of lines) {
        assert.match(l, /subscriber .* lost its connection/);
      }
    }
  });
});
