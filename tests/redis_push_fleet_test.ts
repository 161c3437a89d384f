// The contract for the demo and the CLI with push over Redis: three real demo processes
// (scripts/demo.ts) share a state file and a real redis-server (MAINTENANCE_REDIS_URL,
// MAINTENANCE_CACHE_TTL_MS=30000); the real CLI (main.ts) switches. Every demo serves
// `maintenance on` within 100 ms of the CLI's write, and a burst of requests between
// switches costs at most one Redis GET per instance per TTL, counted by redis-server
// itself (INFO commandstats). The processes run on the runtime that runs this file.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createClient } from "redis";
import {
  type RedisHandle,
  redisReads,
  startRedis,
} from "../scripts/test_servers.ts";
import {
  cleanEnv,
  currentRuntime,
  makeTempDir,
  removeDir,
  type RunningProcess,
  scriptCommand,
  sleep,
  startDemo,
} from "./helpers.ts";

const RUNTIME = currentRuntime();
const TTL_MS = 30_000;
const CHANNEL = "maintenance_mode_state:written";

/** How many reads (GET, GETRANGE) the server ran (INFO commandstats). */
async function gets(admin: ReturnType<typeof createClient>): Promise<number> {
  return redisReads(await admin.info("commandstats"));
}

/** Polls `url` until it answers `status`; resolves with the time of that answer. */
async function until(url: string, status: number, limitMs = 10_000) {
  const deadline = performance.now() + limitMs;
  while (performance.now() < deadline) {
    const res = await fetch(url);
    await res.body?.cancel();
    const t = performance.now();
    if (res.status === status) return t;
    await sleep(1);
  }
  throw new Error(`${url} did not answer ${status} within ${limitMs} ms`);
}

/** Runs the CLI; resolves with when it printed (right after its write) and its output. */
function cli(args: string[], env: Record<string, string>) {
  const [cmd, argv] = scriptCommand(RUNTIME, "main.ts", args);
  return new Promise<{ printedAt: number; code: number | null; out: string }>(
    (resolve, reject) => {
      const child = spawn(cmd, argv, {
        env,
        stdio: ["ignore", "pipe", "pipe"],
      });
      let printedAt: number | undefined;
      let out = "";
      child.stdout.on("data", (d) => {
        printedAt ??= performance.now();
        out += String(d);
      });
      child.stderr.on("data", (d) => out += String(d));
      child.on("error", reject);
      child.on(
        "close",
        (code) => resolve({ printedAt: printedAt ?? NaN, code, out }),
      );
    },
  );
}

describe(`push over Redis: 3 demos and the CLI (${RUNTIME})`, () => {
  let redis: RedisHandle | undefined;
  let admin: ReturnType<typeof createClient>;
  let dir: string | undefined;
  let env: Record<string, string>;
  const demos: RunningProcess[] = [];
  const urls: string[] = [];

  before(async () => {
    redis = await startRedis();
    admin = createClient({ url: redis.url });
    await admin.connect();
    dir = await makeTempDir();
    const settings = {
      MAINTENANCE_STATE_FILE: `${dir}/state.json`,
      MAINTENANCE_REDIS_URL: redis.url,
      MAINTENANCE_CACHE_TTL_MS: String(TTL_MS),
    };
    env = cleanEnv(settings);
    for (
      const { demo, url } of await Promise.all(
        [0, 1, 2].map(() => startDemo(RUNTIME, settings)),
      )
    ) {
      demos.push(demo);
      urls.push(url + "/");
    }
  });

  after(async () => {
    await Promise.all(demos.map((d) => d.stop()));
    if (admin?.isOpen) await admin.close();
    await redis?.stop();
    await removeDir(dir);
  });

  /** 100 requests to each demo, 10 at a time; all must answer `status`. */
  async function burst(status: number): Promise<void> {
    for (let round = 0; round < 10; round++) {
      await Promise.all(
        urls.flatMap((url) =>
          Array.from({ length: 10 }, async () => {
            const res = await fetch(url);
            await res.body?.cancel();
            assert.equal(res.status, status, url);
          })
        ),
      );
    }
  }

  it("serves `maintenance on` everywhere within 100 ms; a burst between switches costs at most one GET per instance", async () => {
    // Every demo subscribed.
    for (;;) {
      const n = Number((await admin.pubSubNumSub(CHANNEL))[CHANNEL] ?? 0);
      if (n >= 3) break;
      await sleep(20);
    }
    for (const url of urls) await until(url, 200);
    const t0 = performance.now();
    let before = await gets(admin);
    await burst(200);
    let reads = await gets(admin) - before;
    console.log(`Redis GETs for 300 requests before the switch: ${reads}`);
    assert.ok(reads <= 3, `${reads} GETs for 3 instances`);

    for (const [verb, status] of [["on", 503], ["off", 200]] as const) {
      const seen = Promise.all(urls.map((url) => until(url, status)));
      const run = await cli([verb], env);
      assert.equal(run.code, 0, run.out);
      const ms = (await seen).map((t) => t - run.printedAt);
      console.log(`maintenance ${verb}: served after ${ms.map(Math.round)} ms`);
      assert.ok(
        Math.max(...ms) <= 100,
        `${verb}: served ${ms.map(Math.round)} ms after the CLI's write`,
      );
      before = await gets(admin);
      await burst(status);
      reads = await gets(admin) - before;
      console.log(`Redis GETs for 300 requests after ${verb}: ${reads}`);
      assert.ok(reads <= 3, `${reads} GETs for 3 instances`);
    }
    assert.ok(performance.now() - t0 < TTL_MS, "all within one TTL");
  });
});
