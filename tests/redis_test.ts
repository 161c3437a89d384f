import { sharedCache } from "../src/_shared.ts";
import { bypassCookie } from "../src/bypass.ts";
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createClient } from "redis";
import { Hono } from "hono";
import { redisCache, type RedisLikeClient } from "../stores/redis.ts";
import { MemoryCache } from "./memory_cache.ts";
import { StoreError } from "../stores/_store_error.ts";
import { MemoryStore } from "../stores/memory.ts";
import type { StateStore } from "../stores/_types.ts";
import { createMaintenance } from "../src/maintenance.ts";
import { type RedisHandle, startRedis } from "../scripts/test_servers.ts";

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

describe("redisCache against redis-server", () => {
  let server: RedisHandle | undefined;
  let client: ReturnType<typeof createClient>;

  before(async () => {
    server = await startRedis();
    client = createClient({ url: server.url });
    await client.connect();
  });

  after(async () => {
    if (client?.isOpen) await client.close();
    await server?.stop();
  });

  it("gets, sets and deletes (node-redis)", async () => {
    const cache = redisCache(client);
    assert.equal(await cache.get("mm:a"), null);
    await cache.set("mm:a", '{"enabled":true}', 60);
    assert.equal(await cache.get("mm:a"), '{"enabled":true}');
    const ttl = await client.ttl("mm:a");
    assert.ok(ttl > 55 && ttl <= 60, `ttl ${ttl}`);
    await cache.delete("mm:a");
    assert.equal(await cache.get("mm:a"), null);
  });

  /** The envelope stored under `key`, parsed. */
  async function envelope(
    key: string,
  ): Promise<{ "x-maintenance": number; exp: number; v: string }> {
    const raw = await client.get(key);
    assert.ok(raw !== null, `${key} is set`);
    return JSON.parse(raw);
  }

  it("stores each value in its own envelope, with its expiry inside", async () => {
    const cache = redisCache(client);
    const before = Date.now();
    await cache.set("mm:env", '{"enabled":true}', 30);
    const e = await envelope("mm:env");
    assert.deepEqual(Object.keys(e), ["x-maintenance", "exp", "v"]);
    assert.equal(e["x-maintenance"], 1);
    assert.equal(e.v, '{"enabled":true}');
    assert.ok(
      e.exp >= before + 30_000 && e.exp <= Date.now() + 30_000,
      `exp ${e.exp - before} ms ahead`,
    );
    assert.equal(await cache.get("mm:env"), '{"enabled":true}');
  });

  it("ttl null (ttlMs: null) and ttls over an hour live one hour at most; ttl 0 drops", async () => {
    const cache = redisCache(client);
    for (const ttl of [null, 86_400, Infinity]) {
      const before = Date.now();
      await cache.set("mm:forever", "1", ttl);
      const left = await client.ttl("mm:forever");
      assert.ok(left > 3590 && left <= 3600, `${ttl}: Redis TTL ${left}`);
      const e = await envelope("mm:forever");
      assert.ok(
        e.exp >= before + 3_600_000 && e.exp <= Date.now() + 3_600_000,
        `${ttl}: envelope expires ${e.exp - before} ms ahead`,
      );
      assert.equal(await cache.get("mm:forever"), "1");
    }
    await cache.set("mm:forever", "1", 0);
    assert.equal(await client.exists("mm:forever"), 0);
  });

  it("a value not in our envelope is a miss: a raw SET without expiry, JSON, other shapes", async () => {
    const cache = redisCache(client);
    const planted = [
      "1",
      '{"enabled":true}',
      "null",
      "[1]",
      '{"x-maintenance":2,"exp":9e15,"v":"1"}',
      '{"x-maintenance":1,"exp":"9e15","v":"1"}',
      '{"x-maintenance":1,"v":"1"}',
      '{"x-maintenance":1,"exp":9e15,"v":1}',
      "not json",
    ];
    for (const raw of planted) {
      await client.set("mm:planted", raw); // no expiry
      assert.equal(await cache.get("mm:planted"), null, raw);
    }
  });

  it("an envelope past its expiry is a miss, and so is one expiring further off than an hour", async () => {
    const cache = redisCache(client);
    const now = Date.now();
    const wrap = (exp: number) =>
      JSON.stringify({ "x-maintenance": 1, exp, v: '{"enabled":true}' });
    await client.set("mm:old", wrap(now - 1));
    assert.equal(await cache.get("mm:old"), null, "expired");
    await client.set("mm:far", wrap(now + 10 * 365 * 86_400_000));
    assert.equal(await cache.get("mm:far"), null, "ten years off");
    await client.set("mm:soon", wrap(now + 60_000));
    assert.equal(await cache.get("mm:soon"), '{"enabled":true}', "ours");
  });

  it("the store decides over a raw value without expiry, and overwrites it", async () => {
    await client.set("mm:decides", '{"enabled":true,"message":"planted"}');
    const mm = createMaintenance({
      store: new MemoryStore('{"enabled":false}'),
      cache: { key: "mm:decides", ttlMs: 5000, store: redisCache(client) },
      onError: () => {},
    });
    assert.equal(
      await mm.isEnabled(),
      false,
      "the store's state, not the key's",
    );
    // The miss filled the key with the store's state, in our envelope.
    for (let i = 0; i < 50; i++) {
      const e = JSON.parse(await client.get("mm:decides") ?? "{}");
      if (e["x-maintenance"] === 1) break;
      await sleep(10);
    }
    const e = await envelope("mm:decides");
    assert.equal(e.v, '{"enabled":false}');
    assert.ok((await client.ttl("mm:decides")) > 0, "with Redis's TTL as well");
  });

  it("a state with a bypass hash planted raw does not open the bypass (with cookieKey too)", async () => {
    const secret = "attacker-chosen-secret-0123456789";
    // The attacker makes a state with a bypass hash of their own secret ...
    const theirs = new MemoryStore();
    await createMaintenance({ store: theirs }).enable({ secret });
    const plantedText = await theirs.read();
    assert.match(plantedText ?? "", /"bypass":"/);
    // ... and writes it raw to the shared key of a fleet in maintenance without one.
    await client.set("mm:bypass", plantedText!);
    const mm = createMaintenance({
      store: new MemoryStore('{"enabled":true}'),
      cache: { key: "mm:bypass", ttlMs: 5000, store: redisCache(client) },
      bypass: bypassCookie({ cookieKey: "k".repeat(32) }),
      onError: () => {},
    });
    const app = new Hono();
    app.use(mm.middleware());
    app.get("*", (c) => c.text("the app"));
    const visit = await app.request(`/${secret}`);
    assert.equal(visit.status, 503, "the secret is not accepted");
    assert.equal(visit.headers.get("set-cookie"), null, "no cookie given");
    assert.equal((await app.request("/")).status, 503);
    assert.equal((await mm.getState()).bypass, undefined);
  });

  it("expires values (fractional ttl uses PX)", async () => {
    const cache = redisCache(client);
    await cache.set("mm:short", "1", 0.15);
    const pttl = await client.pTTL("mm:short");
    assert.ok(pttl > 0 && pttl <= 150, `pttl ${pttl}`);
    assert.equal(await cache.get("mm:short"), "1");
    await sleep(250);
    assert.equal(await cache.get("mm:short"), null);
  });

  it("prefixes keys", async () => {
    const cache = redisCache(client, { prefix: "app1:" });
    await cache.set("state", "0", 30);
    assert.equal((await envelope("app1:state")).v, "0");
    assert.equal(await cache.get("state"), "0");
    await cache.delete("state");
    assert.equal(await client.get("app1:state"), null);
  });

  it("a huge value planted under the key is read in part (GETRANGE), not whole: a miss, and the store decides", async () => {
    // 8 MiB where an envelope of the largest state is under 200 KiB.
    const planted = "x".repeat(8 * 1024 * 1024);
    await client.set("mm:huge", planted);
    const sent = async () =>
      Number(
        /total_net_output_bytes:(\d+)/.exec(await client.info("stats"))?.[1],
      );
    const mm = createMaintenance({
      store: new MemoryStore('{"enabled":true,"message":"from the store"}'),
      cache: { key: "mm:huge", ttlMs: 5000, store: redisCache(client) },
      onError: () => {},
    });
    const before = await sent();
    assert.equal(await mm.isEnabled(), true, "the store's state");
    const bytes = await sent() - before;
    assert.ok(bytes < 300 * 1024, `Redis sent ${bytes} bytes for one check`);
    // The miss overwrote the planted value with the store's state, in our envelope.
    for (let i = 0; i < 50; i++) {
      if ((await client.strLen("mm:huge")) < 1024) break;
      await sleep(10);
    }
    assert.equal(
      (await envelope("mm:huge")).v,
      '{"enabled":true,"message":"from the store"}',
    );
  });

  it("a state at the size limit still round-trips through the bounded read", async () => {
    const cache = redisCache(client);
    // Near 64 KiB of state text (the most a state holds), each character 3 bytes
    // of UTF-8: about 195 KB in its envelope.
    const big = JSON.stringify({ enabled: true, later: "€".repeat(65_000) });
    assert.ok(big.length <= 65_536);
    await cache.set("mm:big", big, 60);
    assert.equal(await cache.get("mm:big"), big);
  });

  it("speaks the ioredis calling style (set key value EX n)", async () => {
    const calls: unknown[][] = [];
    // An ioredis-shaped client over the real server.
    const io: RedisLikeClient = {
      status: "ready",
      get: (key: string) => client.get(key),
      set: (key: string, value: string, ...rest: (string | number)[]) => {
        calls.push([key, value, ...rest]);
        return client.sendCommand(["SET", key, value, ...rest.map(String)]);
      },
      del: (key: string) => client.del(key),
    };
    const cache = redisCache(io);
    await cache.set("mm:io", "1", 20);
    await cache.set("mm:io2", "1", 0.5);
    await cache.set("mm:io3", "1", null);
    assert.deepEqual(
      calls.map(([key, value, ...rest]) => [
        key,
        JSON.parse(String(value)).v,
        ...rest,
      ]),
      [["mm:io", "1", "EX", 20], ["mm:io2", "1", "PX", 500], [
        "mm:io3",
        "1",
        "EX",
        3600,
      ]],
    );
    assert.equal(await cache.get("mm:io"), "1");
    const ttl = await client.ttl("mm:io");
    assert.ok(ttl > 15 && ttl <= 20, `ttl ${ttl}`);
    await cache.delete("mm:io");
    assert.equal(await cache.get("mm:io"), null);
  });

  it("raises StoreError naming the key when the client is closed", async () => {
    const closed = createClient({ url: server?.url });
    const cache = redisCache(closed);
    await assert.rejects(
      cache.get("mm:x"),
      (e: unknown) =>
        e instanceof StoreError && e.message.includes('"mm:x"') &&
        e.message.includes("connect"),
    );
  });

  it("rejects what is not a client, and options it does not know", () => {
    assert.throws(
      () => redisCache({} as unknown as RedisLikeClient),
      /get\/set\/del/,
    );
    assert.throws(
      () => redisCache(client, { prefx: "app:" } as { prefix?: string }),
      (e: unknown) =>
        e instanceof TypeError &&
        /unknown redisCache option "prefx"; did you mean prefix\?/.test(
          e.message,
        ),
    );
    assert.throws(
      () => redisCache(client, { prefix: 1 as unknown as string }),
      /prefix must be a string, such as "myapp:"/,
    );
  });
});

describe("MemoryCache", () => {
  it("gets, sets, expires and deletes", async () => {
    let now = 1_000_000;
    const cache = new MemoryCache({ now: () => now });
    assert.equal(await cache.get("k"), null);
    await cache.set("k", "v", 10);
    assert.equal(await cache.get("k"), "v");
    now += 9_999;
    assert.equal(await cache.get("k"), "v");
    now += 1;
    assert.equal(await cache.get("k"), null);
    assert.equal(cache.size, 0);

    await cache.set("k", "v", 10);
    await cache.delete("k");
    assert.equal(await cache.get("k"), null);
  });

  it("keeps forever with null, and not at all with 0", async () => {
    let now = 0;
    const cache = new MemoryCache({ now: () => now });
    await cache.set("k", "v", null);
    now += 1e12;
    assert.equal(await cache.get("k"), "v");
    await cache.set("k", "v", 0);
    assert.equal(await cache.get("k"), null);
    await assert.rejects(cache.set("k", "v", Number.NaN), RangeError);
  });

  it("uses the real clock by default", async () => {
    const cache = new MemoryCache();
    await cache.set("k", "v", 0.05);
    assert.equal(await cache.get("k"), "v");
    await sleep(80);
    assert.equal(await cache.get("k"), null);
    cache.clear();
  });
});

describe("a shared cache in front of a store that fails on one instance", () => {
  /** Lets background reads (and their cache calls) settle. */
  async function settle(): Promise<void> {
    for (let i = 0; i < 5; i++) await sleep(0);
  }

  it("onError hears of the store's outage once, though other instances keep filling the key", async () => {
    let t = 1_000_000;
    const now = () => t;
    const shared = new MemoryCache({ now });
    let broken = true;
    let text = '{"enabled":true}';
    // This instance's store: denied (a missing IAM permission), until it is fixed.
    const mine: StateStore = {
      description: "s3://bucket/state",
      read: () =>
        broken
          ? Promise.reject(new Error("AccessDenied"))
          : Promise.resolve(text),
      write: (next) => {
        text = next;
        return Promise.resolve();
      },
    };
    const errors: string[] = [];
    const a = createMaintenance({
      store: mine,
      cache: { ttlMs: 1000, store: sharedCache(shared) },
      now,
      onError: (e) => errors.push(e.message),
    });
    const b = createMaintenance({
      store: new MemoryStore('{"enabled":true}'),
      cache: { ttlMs: 1000, store: sharedCache(shared) },
      now,
      onError: (e) => assert.fail(e.message),
    });
    assert.equal(
      await a.isEnabled(),
      false,
      "the fallback before any good read",
    );
    assert.equal(errors.length, 1);
    // Three key lifetimes: the other instance fills the key, this one gets hits from it
    // and misses when it has expired, and its own store is still denied each time.
    for (let round = 0; round < 3; round++) {
      t += 500;
      assert.equal(await b.isEnabled(), true); // a miss: b reads its store, sets the key
      t += 600;
      await a.isEnabled(); // the background retry gets the key from the shared cache
      await settle();
      assert.equal(await a.isEnabled(), true, "served from the shared cache");
      t += 1000; // the key has expired: a reads its store, still denied
      await a.isEnabled();
      await settle();
      assert.equal(await a.isEnabled(), true, "the last good state is kept");
    }
    assert.equal(
      errors.length,
      1,
      `one outage, one report: ${errors.join(" | ")}`,
    );
    // After the store recovers, a new outage is told again.
    broken = false;
    t += 1100;
    await a.isEnabled();
    await settle();
    await a.isEnabled();
    broken = true;
    t += 2200;
    await a.isEnabled();
    await settle();
    await a.isEnabled();
    assert.equal(errors.length, 2, errors.join(" | "));
  });
});
