/**
 * Push over Redis when Redis dies: a real redis-server is killed with SIGKILL under
 * load, and restarted on the same port. Two instances in process, each with its own
 * node-redis client and subscriber (as a user makes them: default reconnects, offline
 * queue on), share one state file. No request fails or waits past `timeoutMs`; a state
 * written while Redis is down is served; once Redis is back the subscriptions are
 * (push: a switch served at once, no GET between switches); `onError` hears once per
 * instance for the outage.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { createClient } from "redis";
import { Hono } from "hono";
import { redisCache } from "../stores/redis.ts";
import { FileStore } from "../stores/file.ts";
import { createMaintenance } from "../src/maintenance.ts";
import {
  type RedisHandle,
  redisReads,
  startRedis,
  withRedisAdmin,
} from "../scripts/test_servers.ts";
import { makeTempDir, removeDir, sleep } from "./helpers.ts";

const TIMEOUT_MS = 500;
const KEY = "faults:mm";
const CHANNEL = `${KEY}:written`;

/** A short-lived admin connection to `url` (the server may be gone or new). */
async function waitSubscribers(url: string, n: number, limitMs: number) {
  const deadline = performance.now() + limitMs;
  for (;;) {
    const count = await withRedisAdmin(url, async (c) => {
      const r = await c.pubSubNumSub(CHANNEL);
      return Number(r[CHANNEL] ?? 0);
    }).catch(() => 0);
    if (count >= n) return performance.now();
    assert.ok(performance.now() < deadline, `${n} subscribers again`);
    await sleep(25);
  }
}

describe("push over Redis: redis-server killed (SIGKILL) and restarted under load", () => {
  let redis: RedisHandle | undefined;
  let dir: string | undefined;
  const clients: { isOpen: boolean; destroy(): void }[] = [];

  before(async () => {
    redis = await startRedis();
    dir = await makeTempDir();
  });

  after(async () => {
    for (const c of clients) if (c.isOpen) c.destroy();
    await redis?.stop();
    await removeDir(dir);
  });

  async function instance(name: string) {
    const client = createClient({ url: redis!.url });
    client.on("error", () => {}); // node-redis needs a listener; failures reach onError
    await client.connect();
    const subscriber = client.duplicate();
    clients.push(client, subscriber);
    const errors: string[] = [];
    const mm = createMaintenance({
      store: new FileStore(`${dir}/state.json`),
      cache: {
        key: KEY,
        ttlMs: 60_000,
        store: redisCache(client, { subscriber }),
      },
      timeoutMs: TIMEOUT_MS,
      onError: (e) => errors.push(e.message),
    });
    const app = new Hono();
    app.use(mm.middleware());
    app.get("/", (c) => c.text("app"));
    return { name, mm, app, errors };
  }

  it("no request fails or waits past timeoutMs; the state written meanwhile is served; push comes back; onError once", async () => {
    const a = await instance("a");
    const b = await instance("b");
    await waitSubscribers(redis!.url, 2, 10_000);
    for (const i of [a, b]) assert.equal(await i.mm.isEnabled(), false);

    // Load: three requests at a time on each instance, until told to stop.
    let running = true;
    const seen = new Map<string, number>(); // "b 503" -> count
    let slowest = 0;
    const last = new Map<string, number>();
    const load = [a, b].flatMap((i) =>
      Array.from({ length: 3 }, async () => {
        while (running) {
          const t0 = performance.now();
          const res = await i.app.request("/");
          await res.text();
          slowest = Math.max(slowest, performance.now() - t0);
          const k = `${i.name} ${res.status}`;
          seen.set(k, (seen.get(k) ?? 0) + 1);
          last.set(i.name, res.status);
          await sleep(2);
        }
      })
    );
    try {
      await sleep(200);
      const info = await withRedisAdmin(redis!.url, (c) => c.info("server"));
      const pid = Number(/process_id:(\d+)/.exec(info)?.[1]);
      assert.ok(pid > 0, "redis-server's pid");
      process.kill(pid, "SIGKILL");
      await sleep(300);

      // Written through a while Redis is down: its DEL and PUBLISH fail, within bounds.
      const t0 = performance.now();
      await a.mm.enable({ message: "written while Redis was down" });
      assert.ok(
        performance.now() - t0 < 2 * TIMEOUT_MS + 100,
        "enable bounded",
      );
      // b lost its subscription: it polls (the store, as Redis fails) once a second.
      const deadline = performance.now() + 3000;
      while (last.get("b") !== 503) {
        assert.ok(performance.now() < deadline, "b serves the state written");
        await sleep(10);
      }
      await sleep(700);

      // Redis back on the same port, empty (no persistence).
      redis = await startRedis({ port: redis!.port });
      await waitSubscribers(redis.url, 2, 10_000);
      await sleep(300);
      assert.equal(last.get("a"), 503);
      assert.equal(
        last.get("b"),
        503,
        "still the state written while Redis was down",
      );

      // Push again: no GET between switches, and a switch served at once.
      const gets = async () =>
        redisReads(
          await withRedisAdmin(redis!.url, (c) => c.info("commandstats")),
        );
      const before = await gets();
      // The load goes on: polling (push lost for good) would GET once a second each.
      await sleep(2500);
      const n = await gets() - before;
      assert.ok(n <= 2, `${n} GETs in 2.5 s: at most one per instance`);
      const t1 = performance.now();
      await b.mm.disable();
      while (last.get("a") !== 200) {
        assert.ok(performance.now() - t1 < 2000, "a follows b's write");
        await sleep(1);
      }
      assert.ok(performance.now() - t1 < 100, "pushed, not polled");
    } finally {
      running = false;
      await Promise.all(load);
    }
    assert.deepEqual(
      [...seen.keys()].filter((k) => !/ (200|503)$/.test(k)),
      [],
      "every request answered 200 or 503",
    );
    assert.ok(slowest <= TIMEOUT_MS + 100, `slowest request ${slowest} ms`);
    assert.equal(a.errors.length, 1, a.errors.join("\n"));
    assert.equal(b.errors.length, 1, b.errors.join("\n"));
    assert.match(b.errors[0], /subscriber on "faults:mm:written" lost/);
    console.log(
      `requests: ${JSON.stringify(Object.fromEntries(seen))}; slowest ${
        Math.round(slowest)
      } ms`,
    );
  });
});
