// The read-through cache over a real S3 store (s3rver behind a counting proxy), in this
// process and shared through a real redis-server: TTL, forever, writes through the
// controller, single flight, stale-if-error. Clocks are injected (`now`) where a test is
// about TTLs, so the assertions do not depend on how fast this machine is; Redis expiry
// is real time.
import { adminRoutes } from "../src/admin.ts";
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { S3Client } from "@aws-sdk/client-s3";
import { createClient } from "redis";
import { Hono } from "hono";
import { bearerToken } from "../src/admin.ts";
import { createMaintenance, type Maintenance } from "../src/maintenance.ts";
import type { CacheOptions } from "../src/_cache.ts";
import { redisCache } from "../stores/redis.ts";
import { S3Store } from "../stores/s3.ts";
import {
  type CountingProxy,
  type RedisHandle,
  s3ClientFor,
  type S3rverHandle,
  startCountingProxy,
  startRedis,
  startS3rver,
} from "../scripts/test_servers.ts";

const BUCKET = "maintenance";

/** A node-redis client that fails fast when the server is gone. */
function redisClient(url: string) {
  const client = createClient({
    url,
    disableOfflineQueue: true,
    socket: { reconnectStrategy: false },
  });
  client.on("error", () => {});
  return client;
}

type RedisClient = ReturnType<typeof redisClient>;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A clock the test moves by hand. */
function fakeClock(): { now: () => number; advance(ms: number): void } {
  let t = Date.UTC(2030, 0, 1);
  return {
    now: () => t,
    advance(ms: number): void {
      t += ms;
    },
  };
}

/** s3rver, a counting proxy in front of it, and S3 stores over either. */
function s3Fixture(): {
  proxy(): CountingProxy;
  counted(key: string, timeoutMs?: number): S3Store;
  direct(key: string): S3Store;
} {
  let s3: S3rverHandle | undefined;
  let proxy: CountingProxy | undefined;
  const clients: S3Client[] = [];
  before(async () => {
    s3 = await startS3rver({ bucket: BUCKET });
    proxy = await startCountingProxy(s3.endpoint);
  });
  after(async () => {
    for (const c of clients) c.destroy();
    await proxy?.stop();
    await s3?.stop();
  });
  function make(endpoint: string, key: string, timeoutMs = 2000): S3Store {
    // One attempt per call, so the proxy's counts are store reads, not SDK retries.
    const client = s3ClientFor(endpoint, { maxAttempts: 1 });
    clients.push(client);
    return new S3Store({ bucket: BUCKET, key, client, timeoutMs });
  }
  return {
    proxy: () => proxy!,
    /** A store whose requests the proxy counts (one per simulated server). */
    counted: (key, timeoutMs) => make(proxy!.url, key, timeoutMs),
    /** A store that talks to s3rver directly: "someone else" writing. */
    direct: (key) => make(s3!.endpoint, key),
  };
}

let keys = 0;
function newKey(): string {
  return `cache-${Date.now()}-${++keys}.json`;
}

/** A Hono app behind the controller's middleware. */
function appFor(mm: Maintenance): Hono {
  const app = new Hono();
  app.use(mm.middleware());
  app.get("/", (c) => c.text("hello"));
  return app;
}

describe("createMaintenance over S3Store (s3rver) with the in-process cache", () => {
  const f = s3Fixture();

  it("reads S3 once per TTL however many checks arrive", async () => {
    const key = newKey();
    const clock = fakeClock();
    await f.direct(key).write('{"enabled":true}');
    const mm = createMaintenance({
      store: f.counted(key),
      cache: { ttlMs: 1000 },
      now: clock.now,
    });
    const proxy = f.proxy();
    proxy.reset();
    for (let i = 0; i < 50; i++) assert.equal(await mm.isEnabled(), true);
    assert.equal(proxy.counts.get, 1);

    // Another server switches it off: this one serves its copy until the TTL is over.
    await f.direct(key).write('{"enabled":false}');
    clock.advance(999);
    assert.equal(await mm.isEnabled(), true);
    assert.equal(proxy.counts.get, 1);
    clock.advance(1);
    assert.equal(await mm.isEnabled(), false);
    assert.equal(proxy.counts.get, 2);
    // A read of an unchanged object is a whole GetObject (nothing is remembered).
    clock.advance(1000);
    assert.equal(await mm.isEnabled(), false);
    assert.equal(proxy.counts.get, 3);
    assert.equal(proxy.requests.at(-1)?.status, 200);
  });

  it("caches forever with ttlMs: null; only writes through this controller are seen", async () => {
    const key = newKey();
    const clock = fakeClock();
    const mm = createMaintenance({
      store: f.counted(key),
      cache: { ttlMs: null },
      now: clock.now,
    });
    const proxy = f.proxy();
    proxy.reset();
    assert.equal(await mm.isEnabled(), false); // no object: off
    await f.direct(key).write('{"enabled":true}'); // a write it does not know about
    clock.advance(365 * 24 * 3600 * 1000);
    assert.equal(
      await mm.isEnabled(),
      false,
      "forever: the change is never read",
    );
    assert.equal(proxy.counts.get, 1);

    await mm.enable({ message: "Back soon" });
    assert.equal(await mm.isEnabled(), true);
    assert.equal((await mm.getState()).message, "Back soon");
    await mm.disable();
    assert.equal(await mm.isEnabled(), false);
    assert.equal(proxy.counts.get, 1, "its own writes need no read");
    assert.equal(proxy.counts.put, 2);
  });

  it("serves a write through the controller at once; other servers see it after their TTL", async () => {
    const key = newKey();
    const clock = fakeClock();
    const a = createMaintenance({
      store: f.counted(key),
      cache: { ttlMs: 2000 },
      now: clock.now,
    });
    const b = createMaintenance({
      store: f.counted(key),
      cache: { ttlMs: 2000 },
      now: clock.now,
    });
    const appA = appFor(a);
    const appB = appFor(b);
    assert.equal((await appA.request("/")).status, 200);
    assert.equal((await appB.request("/")).status, 200);

    await a.enable({ message: "Upgrading" });
    const res = await appA.request("/", { headers: { accept: "text/html" } });
    assert.equal(res.status, 503);
    assert.match(await res.text(), /Upgrading/);
    assert.equal((await appB.request("/")).status, 200, "b: within its TTL");
    clock.advance(2000);
    assert.equal((await appB.request("/")).status, 503, "b: after its TTL");

    await b.disable();
    assert.equal((await appB.request("/")).status, 200);
    clock.advance(2000);
    assert.equal((await appA.request("/")).status, 200);
  });

  it("shares one S3 read among concurrent misses (single flight)", async () => {
    const key = newKey();
    await f.direct(key).write('{"enabled":true}');
    const clock = fakeClock();
    const mm = createMaintenance({
      store: f.counted(key),
      cache: { ttlMs: 1000 },
      now: clock.now,
    });
    const app = appFor(mm);
    const proxy = f.proxy();
    proxy.reset();
    const checks = await Promise.all(
      Array.from({ length: 200 }, () => mm.isEnabled()),
    );
    assert.ok(checks.every((on) => on));
    assert.equal(proxy.counts.get, 1);

    clock.advance(1000);
    const responses = await Promise.all(
      Array.from({ length: 200 }, () => app.request("/")),
    );
    assert.ok(responses.every((r) => r.status === 503));
    assert.equal(
      proxy.counts.get,
      2,
      "one more read for 200 concurrent requests",
    );

    // Without a cache every check reads, but concurrent checks still share a read.
    const uncached = createMaintenance({
      store: f.counted(key),
      cache: false,
    });
    proxy.reset();
    await Promise.all(Array.from({ length: 50 }, () => uncached.isEnabled()));
    assert.equal(proxy.counts.get, 1);
    await uncached.isEnabled();
    assert.equal(proxy.counts.get, 2);
  });

  it("keeps serving the last state while S3 fails, telling onError once per failure streak", async () => {
    const key = newKey();
    await f.direct(key).write('{"enabled":true}');
    const clock = fakeClock();
    const errors: Error[] = [];
    const mm = createMaintenance({
      store: f.counted(key),
      cache: { ttlMs: 1000 },
      now: clock.now,
      onError: (e) => errors.push(e),
    });
    const app = appFor(mm);
    const proxy = f.proxy();
    assert.equal(await mm.isEnabled(), true);
    proxy.mode = "error500"; // S3 answers 500 InternalError
    try {
      for (let i = 0; i < 10; i++) {
        clock.advance(1500); // past the TTL and the retry pause: each round retries
        assert.equal((await app.request("/")).status, 503, `round ${i}`);
        await sleep(5); // let the background retry finish
      }
      assert.equal(errors.length, 1, errors.map((e) => e.message).join("\n"));
      assert.match(errors[0].message, /500|InternalError/);
      assert.match(errors[0].message, new RegExp(`s3://${BUCKET}/${key}`));
    } finally {
      proxy.mode = "pass";
    }

    // S3 is back, with a new state written meanwhile: read at the next retry.
    await f.direct(key).write('{"enabled":false}');
    clock.advance(1500);
    await mm.isEnabled(); // may serve the last state while the retry runs
    await sleep(50);
    clock.advance(1500);
    assert.equal(await mm.isEnabled(), false);

    // A new failure streak is reported again, once.
    proxy.mode = "accessDenied";
    try {
      for (let i = 0; i < 5; i++) {
        clock.advance(1500);
        assert.equal(await mm.isEnabled(), false);
        await sleep(5);
      }
    } finally {
      proxy.mode = "pass";
    }
    assert.equal(errors.length, 2);
    assert.match(errors[1].message, /AccessDenied|access denied/);
  });

  it("serves the last state when S3 hangs: the wait is bounded by timeoutMs, then none", async () => {
    const key = newKey();
    await f.direct(key).write('{"enabled":true,"message":"Back soon"}');
    const clock = fakeClock();
    const errors: Error[] = [];
    const mm = createMaintenance({
      store: f.counted(key, 5000),
      cache: { ttlMs: 1000 },
      timeoutMs: 300,
      now: clock.now,
      onError: (e) => errors.push(e),
    });
    const app = appFor(mm);
    assert.equal(await mm.isEnabled(), true);
    const proxy = f.proxy();
    proxy.hangMs = 5000;
    proxy.mode = "hang";
    try {
      clock.advance(1000);
      let start = performance.now();
      const res = await app.request("/");
      let elapsed = performance.now() - start;
      assert.equal(res.status, 503);
      assert.ok(
        elapsed >= 250 && elapsed < 1500,
        `first check took ${elapsed} ms`,
      );
      assert.equal(errors.length, 1);
      assert.match(errors[0].message, /did not finish within (29\d|300) ms/);

      // Later checks do not wait for the hanging store at all.
      start = performance.now();
      for (let i = 0; i < 20; i++) {
        clock.advance(600);
        assert.equal((await app.request("/")).status, 503);
      }
      elapsed = performance.now() - start;
      assert.ok(elapsed < 250, `20 checks took ${elapsed} ms`);
      assert.equal(errors.length, 1);
    } finally {
      proxy.mode = "pass";
    }
  });

  it("serves the fallback when S3 fails before any successful read", async () => {
    const proxy = f.proxy();
    proxy.mode = "error500";
    try {
      const errors: Error[] = [];
      const on = createMaintenance({
        store: f.counted(newKey()),
        fallback: true,
        onError: (e) => errors.push(e),
      });
      assert.equal(await on.isEnabled(), true);
      const off = createMaintenance({
        store: f.counted(newKey()),
        onError: (e) => errors.push(e),
      });
      assert.equal(await off.isEnabled(), false);
      assert.equal(errors.length, 2);
    } finally {
      proxy.mode = "pass";
    }
  });
});

describe("createMaintenance over S3Store with a shared Redis cache (two servers, one Redis)", () => {
  const f = s3Fixture();
  let redis: RedisHandle | undefined;
  const clients: RedisClient[] = [];

  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    for (const c of clients) if (c.isOpen) await c.close();
    await redis?.stop();
  });

  async function connect(url = redis!.url): Promise<RedisClient> {
    const c = redisClient(url);
    clients.push(c);
    await c.connect();
    return c;
  }

  /** Two controllers, each with its own S3 client and Redis connection: two servers. */
  async function twoServers(
    key: string,
    cache: Omit<CacheOptions, "store">,
  ): Promise<[Maintenance, Maintenance]> {
    const make = async (): Promise<Maintenance> =>
      createMaintenance({
        store: f.counted(key),
        cache: {
          ...cache,
          key: `mm:${key}`,
          store: redisCache(await connect()),
        },
      });
    return [await make(), await make()];
  }

  it("a write through one server is seen by the other at once: the key is deleted", async () => {
    const key = newKey();
    const [a, b] = await twoServers(key, { ttlMs: 60_000 });
    const inspect = await connect();
    assert.equal(await b.isEnabled(), false);
    assert.equal(
      JSON.parse(await inspect.get(`mm:${key}`) ?? "{}").v,
      "0",
      "b filled the cache (in redisCache's envelope)",
    );

    await a.enable({ message: "Deploying" });
    assert.equal(
      await inspect.get(`mm:${key}`),
      null,
      "the write deleted the key",
    );
    assert.equal(
      await b.isEnabled(),
      true,
      "b sees it without waiting for the TTL",
    );
    assert.equal((await b.getState()).message, "Deploying");

    const appB = appFor(b);
    assert.equal((await appB.request("/")).status, 503);
    await a.disable();
    assert.equal((await appB.request("/")).status, 200);
  });

  it("a switch through one server's admin routes is seen by the other at once", async () => {
    const key = newKey();
    const [a, b] = await twoServers(key, { ttlMs: 60_000 });
    const token = "fleet-admin-token-0123456789";
    const adminA = new Hono();
    adminA.route(
      "/maintenance-mode",
      adminRoutes(a, { authorize: bearerToken(token) }),
    );
    const appB = appFor(b);
    assert.equal((await appB.request("/")).status, 200); // b fills the cache
    const post = (path: string): Promise<Response> =>
      Promise.resolve(adminA.request(`/maintenance-mode/${path}`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${token}`,
          "content-type": "application/json",
        },
        body: path === "on" ? JSON.stringify({ message: "Admin says" }) : "",
      }));
    let res = await post("on");
    assert.equal(res.status, 200, await res.text());
    const page = await appB.request("/", { headers: { accept: "text/html" } });
    assert.equal(page.status, 503);
    assert.match(await page.text(), /Admin says/);
    res = await post("off");
    assert.equal(res.status, 200, await res.text());
    assert.equal((await appB.request("/")).status, 200);
  });

  it("reads S3 once per TTL for all servers; the others are Redis hits", async () => {
    const key = newKey();
    await f.direct(key).write('{"enabled":true}');
    const [a, b] = await twoServers(key, { ttlMs: 1000 });
    const inspect = await connect();
    const proxy = f.proxy();
    proxy.reset();
    assert.equal(await a.isEnabled(), true);
    assert.equal(proxy.counts.get, 1);
    const pttl = await inspect.pTTL(`mm:${key}`);
    assert.ok(pttl > 0 && pttl <= 1000, `key expires in ${pttl} ms`);
    const checks = await Promise.all(
      Array.from({ length: 100 }, (_, i) => (i % 2 ? a : b).isEnabled()),
    );
    assert.ok(checks.every((on) => on));
    assert.equal(proxy.counts.get, 1, "every other check was a Redis hit");

    // A change by someone who does not delete the key is seen when the key expires.
    await f.direct(key).write('{"enabled":false}');
    assert.equal(await b.isEnabled(), true);
    await sleep(1100);
    const after = await Promise.all(
      Array.from({ length: 100 }, (_, i) => (i % 2 ? a : b).isEnabled()),
    );
    assert.ok(after.every((on) => !on));
    assert.ok(
      proxy.counts.get >= 2 && proxy.counts.get <= 3,
      `S3 GETs after expiry: ${proxy.counts.get} (one per server at most)`,
    );
  });

  it("keeps the key for an hour (redisCache's bound) with ttlMs: null; writes through a controller still propagate", async () => {
    const key = newKey();
    const [a, b] = await twoServers(key, { ttlMs: null });
    const inspect = await connect();
    assert.equal(await b.isEnabled(), false);
    const pttl = await inspect.pTTL(`mm:${key}`);
    assert.ok(pttl > 3_590_000 && pttl <= 3_600_000, `expires in ${pttl} ms`);

    await f.direct(key).write('{"enabled":true}'); // not through a controller
    await sleep(200);
    assert.equal(await a.isEnabled(), false, "not re-read within the hour");
    assert.equal(await b.isEnabled(), false);

    await a.enable();
    assert.equal(await b.isEnabled(), true);
    await b.disable();
    assert.equal(await a.isEnabled(), false);
  });

  it("falls back to S3 when Redis goes down, telling onError once", async () => {
    const key = newKey();
    await f.direct(key).write('{"enabled":true}');
    const own = await startRedis();
    try {
      const errors: Error[] = [];
      const mm = createMaintenance({
        store: f.counted(key),
        cache: { ttlMs: 60_000, store: redisCache(await connect(own.url)) },
        timeoutMs: 500,
        onError: (e) => errors.push(e),
      });
      assert.equal(await mm.isEnabled(), true);
      await own.stop();
      await sleep(100);
      await f.direct(key).write('{"enabled":false}');
      const proxy = f.proxy();
      proxy.reset();
      // A dead cache is a miss: S3 is read, and (src/_cache.ts) the state is kept in
      // this process for up to a second, so S3 is not read on every request instead.
      for (let i = 0; i < 50; i++) assert.equal(await mm.isEnabled(), false);
      assert.ok(
        proxy.counts.get >= 1 && proxy.counts.get <= 3,
        `S3 reads for 50 checks with Redis down: ${proxy.counts.get}`,
      );
      await f.direct(key).write('{"enabled":true}');
      await sleep(1100);
      assert.equal(await mm.isEnabled(), true, "changes are still seen");
      assert.equal(errors.length, 1, errors.map((e) => e.message).join("\n"));
      assert.match(
        errors[0].message,
        /Redis cache key "maintenance_mode_state"/,
      );
    } finally {
      await own.stop();
    }
  });
});
