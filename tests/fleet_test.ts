// Many servers, one switch: three demo processes (scripts/demo.ts, on Bun and on Deno)
// share one S3 object in a real s3rver, each through its own counting proxy so its S3
// reads can be counted; the CLI, a fourth process, flips maintenance mode. Then the same
// with a shared Redis cache (real redis-server), where the demos subscribe and the CLI
// deletes the cache key and publishes (push: tests/redis_push_fleet_test.ts).
//
// The processes run on both runtimes whichever runner starts this file, so it runs only
// under `deno test` and is skipped under `bun test`, which would repeat it (~30 s).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import type { S3Client } from "@aws-sdk/client-s3";
import { Hono } from "hono";
import { S3Store } from "../stores/s3.ts";
import { cleanEnv } from "./helpers.ts";
import {
  type CountingProxy,
  type RedisHandle,
  s3ClientFor,
  type S3rverHandle,
  startCountingProxy,
  startRedis,
  startS3rver,
  WATCHDOG,
} from "../scripts/test_servers.ts";

const BUCKET = "maintenance";
const ROOT = new URL("..", import.meta.url).pathname;
const ON_BUN = "Bun" in globalThis;
const SKIP = ON_BUN
  ? "the fleet runs its own Bun and Deno processes; it runs under deno test only"
  : false;
if (ON_BUN) console.log(`tests/fleet_test.ts: skipped: ${SKIP}`);

type Runtime = "bun" | "deno";
const PERMISSIONS = [
  "--allow-net",
  "--allow-env",
  "--allow-read",
  "--allow-write",
  "--allow-sys",
];

function command(runtime: Runtime, script: string): string[] {
  return runtime === "bun"
    ? ["bun", script]
    : ["deno", "run", ...PERMISSIONS, script];
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

interface Demo {
  name: string;
  url: string;
  stop(): Promise<void>;
}

/** Starts scripts/demo.ts on `runtime` and waits for "demo listening on URL". */
async function startDemo(
  runtime: Runtime,
  env: Record<string, string>,
  name: string,
): Promise<Demo> {
  const child: ChildProcess = spawn(
    "node",
    ["-e", WATCHDOG, ...command(runtime, "scripts/demo.ts")],
    {
      cwd: ROOT,
      env: cleanEnv({ PORT: "0", ...env }),
      stdio: ["pipe", "pipe", "pipe"],
    },
  );
  let output = "";
  child.stderr?.on("data", (d: Uint8Array) => output += String(d));
  let exited = false;
  const gone = new Promise<void>((resolve) =>
    child.once("exit", () => {
      exited = true;
      resolve();
    })
  );
  const stop = async (): Promise<void> => {
    if (!exited) {
      child.kill("SIGTERM");
      await Promise.race([gone, sleep(5000)]);
      if (!exited) child.kill("SIGKILL");
    }
    child.stdin?.destroy();
    child.stdout?.destroy();
    child.stderr?.destroy();
  };
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${name} did not start in 30 s: ${output}`)),
        30_000,
      );
      child.stdout?.on("data", (d: Uint8Array) => {
        output += String(d);
        const m = /demo listening on (http:\/\/\S+?)\/?\s/.exec(output);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
      gone.then(() => {
        clearTimeout(timer);
        reject(new Error(`${name} exited before listening: ${output}`));
      });
    });
    return { name, url, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** Runs the CLI on `runtime`; resolves when it has exited, with the time it did. */
function runCli(
  runtime: Runtime,
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; output: string; exitedAt: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command(runtime, "main.ts")[0], [
      ...command(runtime, "main.ts").slice(1),
      ...args,
    ], { cwd: ROOT, env: cleanEnv(env), stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d: Uint8Array) => output += String(d));
    child.stderr.on("data", (d: Uint8Array) => output += String(d));
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.on("error", reject);
    child.on("exit", (code) => {
      const exitedAt = performance.now();
      clearTimeout(timer);
      resolve({ code, output, exitedAt });
    });
  });
}

async function status(url: string): Promise<number> {
  const res = await fetch(url + "/");
  await res.body?.cancel();
  return res.status;
}

/**
 * Sends `batches` × `size` GET / requests spread round-robin over `urls`: each batch all
 * at once, a batch starting every `everyMs` (so the burst outlasts a few cache TTLs).
 * Returns how long it took and how many answered each status.
 */
async function burst(
  urls: string[],
  batches = 10,
  size = 100,
  everyMs = 300,
): Promise<{ ms: number; statuses: Map<number, number> }> {
  const statuses = new Map<number, number>();
  const start = performance.now();
  const running: Promise<void>[] = [];
  for (let b = 0; b < batches; b++) {
    const wait = start + b * everyMs - performance.now();
    if (wait > 0) await sleep(wait);
    for (let i = 0; i < size; i++) {
      running.push(
        status(urls[(b * size + i) % urls.length]).then((s) => {
          statuses.set(s, (statuses.get(s) ?? 0) + 1);
        }),
      );
    }
  }
  await Promise.all(running);
  return { ms: performance.now() - start, statuses };
}

/**
 * Polls every demo every 20 ms until each answers `want`; returns, per demo, when it
 * first did (`performance.now()`).
 */
async function waitFor(
  demos: Demo[],
  want: number,
  limitMs: number,
): Promise<number[]> {
  return await Promise.all(demos.map(async (d) => {
    const deadline = performance.now() + limitMs;
    while (performance.now() < deadline) {
      if (await status(d.url) === want) return performance.now();
      await sleep(20);
    }
    throw new Error(`${d.name} did not answer ${want} within ${limitMs} ms`);
  }));
}

describe(
  "fleet: three demo servers (Bun, Deno) share one S3 object; the CLI flips them",
  {
    skip: SKIP,
  },
  () => {
    let s3: S3rverHandle | undefined;
    const proxies: CountingProxy[] = [];
    const demos: Demo[] = [];
    const clients: S3Client[] = [];
    let redis: RedisHandle | undefined;

    before(async () => {
      s3 = await startS3rver({ bucket: BUCKET });
      for (let i = 0; i < 4; i++) {
        proxies.push(await startCountingProxy(s3.endpoint));
      }
    });
    after(async () => {
      await Promise.all(demos.map((d) => d.stop()));
      for (const c of clients) c.destroy();
      await Promise.all(proxies.map((p) => p.stop()));
      await redis?.stop();
      await s3?.stop();
    });

    function s3Env(key: string, endpoint: string): Record<string, string> {
      return {
        MAINTENANCE_S3_URL: `s3://${BUCKET}/${key}`,
        MAINTENANCE_S3_ENDPOINT: endpoint,
        AWS_ACCESS_KEY_ID: "S3RVER",
        AWS_SECRET_ACCESS_KEY: "S3RVER",
      };
    }

    /** Three demos on the one key, demo i through proxy i. */
    async function startFleet(
      key: string,
      extra: Record<string, string>,
    ): Promise<Demo[]> {
      const runtimes: Runtime[] = ["bun", "deno", "bun"];
      const fleet = await Promise.all(runtimes.map((rt, i) =>
        startDemo(
          rt,
          { ...s3Env(key, proxies[i].url), ...extra },
          `demo ${i} (${rt})`,
        )
      ));
      demos.push(...fleet);
      return fleet;
    }

    async function stopFleet(fleet: Demo[]): Promise<void> {
      await Promise.all(fleet.map((d) => d.stop()));
      for (const d of fleet) demos.splice(demos.indexOf(d), 1);
    }

    it("in-process cache (TTL 1 s): one S3 read per TTL per server; all switch within TTL + 250 ms of the CLI", async () => {
      const TTL = 1000;
      const key = "fleet/memory.json";
      const fleet = await startFleet(key, {
        MAINTENANCE_CACHE_TTL_MS: String(TTL),
      });
      const urls = fleet.map((d) => d.url);
      for (const url of urls) assert.equal(await status(url), 200);

      // 1,000 requests over the three servers, 100 at once every 300 ms (~3 TTLs).
      for (const p of proxies) p.reset();
      const cached = await burst(urls);
      assert.deepEqual([...cached.statuses], [[200, 1000]]);
      const reads = proxies.slice(0, 3).map((p) => p.counts.get);
      const bound = Math.ceil(cached.ms / TTL) + 1;
      reads.forEach((n, i) =>
        assert.ok(
          n >= 1 && n <= bound,
          `${fleet[i].name}: ${n} S3 reads in ${
            Math.round(cached.ms)
          } ms (bound ${bound})`,
        )
      );

      // The naive way, for comparison: a tiny app that reads S3 on every request.
      const naiveClient = s3ClientFor(proxies[3].url, { maxAttempts: 1 });
      clients.push(naiveClient);
      const naiveStore = new S3Store({
        bucket: BUCKET,
        key,
        client: naiveClient,
      });
      const naive = new Hono();
      naive.get("/", async (c) => {
        const text = await naiveStore.read();
        return text !== null && JSON.parse(text).enabled
          ? c.text("maintenance", 503)
          : c.text("hello");
      });
      proxies[3].reset();
      let next = 0;
      const naiveStart = performance.now();
      await Promise.all(Array.from({ length: 50 }, async () => {
        while (next < 1000) {
          next++;
          assert.equal((await naive.request("/")).status, 200);
        }
      }));
      const naiveMs = performance.now() - naiveStart;
      assert.equal(proxies[3].counts.get, 1000);
      console.log(
        `S3 GETs for 1,000 requests: fleet with a ${TTL} ms cache ${
          reads.reduce((a, b) => a + b)
        } (${reads.join(" + ")}) in ${Math.round(cached.ms)} ms; ` +
          `naive read-per-request ${proxies[3].counts.get} in ${
            Math.round(naiveMs)
          } ms`,
      );

      // The CLI (a fourth process, straight to s3rver) switches it on, then off.
      const cliEnv = s3Env(key, s3!.endpoint);
      const on = await runCli("deno", ["on", "-m", "Fleet upgrade"], cliEnv);
      assert.equal(on.code, 0, on.output);
      const toOn = (await waitFor(fleet, 503, TTL + 5000)).map((t) =>
        t - on.exitedAt
      );
      toOn.forEach((ms, i) =>
        assert.ok(ms <= TTL + 250, `${fleet[i].name}: 503 after ${ms} ms`)
      );
      const page = await fetch(urls[1] + "/", {
        headers: { accept: "text/html" },
      });
      assert.match(await page.text(), /Fleet upgrade/);

      const off = await runCli("bun", ["off"], cliEnv);
      assert.equal(off.code, 0, off.output);
      const toOff = (await waitFor(fleet, 200, TTL + 5000)).map((t) =>
        t - off.exitedAt
      );
      toOff.forEach((ms, i) =>
        assert.ok(ms <= TTL + 250, `${fleet[i].name}: 200 after ${ms} ms`)
      );
      console.log(
        `switch seen after CLI exit (ms): on ${
          toOn.map(Math.round).join(", ")
        }; off ${toOff.map(Math.round).join(", ")}`,
      );
      await stopFleet(fleet);
    });

    it("shared Redis cache (TTL 60 s): S3 is read once for the fleet; the CLI's write is seen at once", async () => {
      redis = await startRedis();
      const key = "fleet/redis.json";
      const fleet = await startFleet(key, {
        MAINTENANCE_CACHE_TTL_MS: "60000",
        MAINTENANCE_REDIS_URL: redis.url,
      });
      const urls = fleet.map((d) => d.url);
      for (const p of proxies) p.reset();
      for (const url of urls) assert.equal(await status(url), 200);
      const cached = await burst(urls);
      assert.deepEqual([...cached.statuses], [[200, 1000]]);
      const reads = proxies.slice(0, 3).map((p) => p.counts.get);
      const total = reads.reduce((a, b) => a + b);
      assert.ok(
        total >= 1 && total <= 3,
        `S3 reads for the fleet: ${reads.join(" + ")}`,
      );

      // A write that does not delete the key is not seen for the TTL...
      const direct = s3ClientFor(s3!.endpoint);
      clients.push(direct);
      await new S3Store({ bucket: BUCKET, key, client: direct }).write(
        '{"enabled":true}',
      );
      await sleep(500);
      for (const url of urls) assert.equal(await status(url), 200);

      // ...the CLI's write deletes it: every server switches before the CLI has even
      // exited (it deletes the key again 1.25 s later, for reads that were in flight).
      const cliEnv = {
        ...s3Env(key, s3!.endpoint),
        MAINTENANCE_REDIS_URL: redis.url,
      };
      // Poll while the CLI runs, so a switch before it exits is seen when it happens.
      const on = runCli("bun", ["on"], cliEnv);
      const onSeen = await waitFor(fleet, 503, 10_000);
      const onResult = await on;
      assert.equal(onResult.code, 0, onResult.output);
      const toOn = onSeen.map((t) => t - onResult.exitedAt);
      toOn.forEach((ms, i) =>
        assert.ok(
          ms <= 250,
          `${fleet[i].name}: 503 ${ms} ms after the CLI exit`,
        )
      );

      const off = runCli("deno", ["off"], cliEnv);
      const offSeen = await waitFor(fleet, 200, 10_000);
      const offResult = await off;
      assert.equal(offResult.code, 0, offResult.output);
      const toOff = offSeen.map((t) => t - offResult.exitedAt);
      toOff.forEach((ms, i) =>
        assert.ok(
          ms <= 250,
          `${fleet[i].name}: 200 ${ms} ms after the CLI exit`,
        )
      );
      console.log(
        `shared Redis: S3 GETs for 3 + 1,000 requests ${total}; switch seen ` +
          `(ms after CLI exit, negative = before) on ${
            toOn.map(Math.round).join(", ")
          }; off ${toOff.map(Math.round).join(", ")}`,
      );
      await stopFleet(fleet);
    });
  },
);
