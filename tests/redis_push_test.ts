/**
 * Push over Redis, in process, against a real redis-server: redisCache(client,
 * { subscriber }) keeps the state in process for the TTL and serves a switch published
 * by another instance at once. Redis reads are counted by the server itself
 * (INFO commandstats), store reads by MemoryStore.reads.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createClient } from "redis";
import { Hono } from "hono";
import {
  redisCache,
  type RedisCacheOptions,
  type RedisLikeClient,
  type RedisLikeSubscriber,
} from "../stores/redis.ts";
import { MemoryStore } from "../stores/memory.ts";
import { createMaintenance } from "../src/maintenance.ts";
import type { Maintenance } from "../src/maintenance.ts";
import { adminRoutes, bearerToken } from "../src/admin.ts";
import {
  type RedisHandle,
  redisReads,
  startRedis,
} from "../scripts/test_servers.ts";
import { sleep } from "./helpers.ts";

type Client = ReturnType<typeof createClient>;

/**
 * How many times the server ran `command` (INFO commandstats); `"get"` counts the
 * reads, GET and GETRANGE.
 */
async function calls(admin: Client, command: string): Promise<number> {
  const info = await admin.info("commandstats");
  if (command === "get") return redisReads(info);
  const m = new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(info);
  return m ? Number(m[1]) : 0;
}

/** Waits until `channel` has `n` subscribers. */
async function subscribers(admin: Client, channel: string, n: number) {
  const deadline = performance.now() + 10_000;
  for (;;) {
    const counts = await admin.pubSubNumSub(channel);
    if (Number(counts[channel] ?? 0) >= n) return;
    assert.ok(performance.now() < deadline, `${channel}: ${n} subscribers`);
    await sleep(10);
  }
}

/** Polls `mm` until `isEnabled()` is `want`; resolves with the ms it took. */
async function until(
  mm: Maintenance,
  want: boolean,
  limitMs = 5000,
): Promise<number> {
  const t0 = performance.now();
  while (await mm.isEnabled() !== want) {
    assert.ok(performance.now() - t0 < limitMs, `not ${want} in ${limitMs} ms`);
    await sleep(1);
  }
  return performance.now() - t0;
}

describe("redis push (node-redis subscriber, real redis-server)", () => {
  let server: RedisHandle | undefined;
  let admin: Client;
  const open: { isOpen: boolean; destroy(): void }[] = [];

  before(async () => {
    server = await startRedis();
    admin = createClient({ url: server.url });
    await admin.connect();
  });

  after(async () => {
    for (const c of open) if (c.isOpen) c.destroy();
    if (admin?.isOpen) await admin.close();
    await server?.stop();
  });

  /** One instance: its own client and subscriber, over `store`. */
  async function instance(
    store: MemoryStore,
    key: string,
    options: { subscribe?: boolean; ttlMs?: number } = {},
  ) {
    const client = createClient({ url: server!.url });
    client.on("error", () => {});
    await client.connect();
    open.push(client);
    let subscriber: ReturnType<Client["duplicate"]> | undefined;
    if (options.subscribe !== false) {
      subscriber = client.duplicate(); // connected by redisCache
      open.push(subscriber);
    }
    const errors: Error[] = [];
    const mm = createMaintenance({
      store,
      cache: {
        key,
        ttlMs: options.ttlMs ?? 60_000,
        store: redisCache(client, { subscriber }),
      },
      timeoutMs: 500,
      onError: (e) => errors.push(e),
    });
    return { mm, client, subscriber, errors };
  }

  it("a write through one instance is served by the others at once; checks between cost no Redis read", async () => {
    const store = new MemoryStore();
    const key = "push:a";
    const a = await instance(store, key);
    const b = await instance(store, key);
    const c = await instance(store, key);
    await subscribers(admin, `${key}:written`, 3);
    for (const i of [a, b, c]) assert.equal(await i.mm.isEnabled(), false);
    await sleep(50); // the re-read each did when its subscription was confirmed
    const gets = await calls(admin, "get");
    const reads = store.reads;
    for (let n = 0; n < 300; n++) {
      for (const i of [a, b, c]) assert.equal(await i.mm.isEnabled(), false);
    }
    assert.equal(
      await calls(admin, "get") - gets,
      0,
      "no GET between switches",
    );
    assert.equal(store.reads - reads, 0, "no store read between switches");

    await a.mm.enable({ message: "pushed" });
    const ms = await Promise.all([until(b.mm, true), until(c.mm, true)]);
    assert.ok(Math.max(...ms) < 100, `served after ${ms.map(Math.round)} ms`);
    assert.equal((await b.mm.getState()).message, "pushed");

    // The switch cost each other instance one store read, and still no GET.
    const after = store.reads;
    for (let n = 0; n < 300; n++) {
      for (const i of [a, b, c]) assert.equal(await i.mm.isEnabled(), true);
    }
    assert.equal(store.reads, after);
    assert.equal(await calls(admin, "get") - gets, 0);

    await c.mm.disable();
    await Promise.all([until(a.mm, false), until(b.mm, false)]);
    for (const i of [a, b, c]) assert.deepEqual(i.errors, []);
  });

  it("the admin routes publish too", async () => {
    const store = new MemoryStore();
    const key = "push:admin";
    const a = await instance(store, key);
    const b = await instance(store, key);
    await subscribers(admin, `${key}:written`, 2);
    assert.equal(await b.mm.isEnabled(), false);
    const token = "t".repeat(32);
    const app = new Hono();
    app.route("/mm", adminRoutes(a.mm, { authorize: bearerToken(token) }));
    const res = await app.request("/mm/on", {
      method: "POST",
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(res.status, 200, await res.text());
    assert.ok(await until(b.mm, true) < 100);
  });

  it("ignores messages that are not ours, and an instance its own", async () => {
    const store = new MemoryStore();
    const key = "push:foreign";
    const a = await instance(store, key);
    const b = await instance(store, key);
    const channel = `${key}:written`;
    await subscribers(admin, channel, 2);
    await a.mm.isEnabled();
    await b.mm.isEnabled();
    await sleep(100);
    const reads = store.reads;
    for (
      const foreign of [
        "hello",
        "",
        "null",
        '{"enabled":true}',
        '{"x-maintenance":2,"written":"x"}',
        '{"x-maintenance":1,"written":7}',
        '{"x-maintenance":1}',
        JSON.stringify({ "x-maintenance": 1, written: "x".repeat(300) }),
      ]
    ) {
      await admin.publish(channel, foreign);
    }
    await admin.publish(`${key}:other`, '{"x-maintenance":1,"written":"x"}');
    await sleep(200);
    assert.equal(store.reads - reads, 0, "no re-read for a foreign message");

    await admin.publish(channel, '{"x-maintenance":1,"written":"cli:test"}');
    await sleep(200);
    assert.equal(store.reads - reads, 2, "one re-read each for ours");

    // A's own write: A does not read it back; B does, once per publish.
    await a.mm.enable();
    await until(b.mm, true);
    await sleep(1000); // the second publish, timeoutMs + 250 after the write
    assert.equal(store.reads - reads, 4, "B twice, A never");
  });

  it("a burst of messages costs at most one store read in flight per instance", async () => {
    let inflight = 0;
    let most = 0;
    const store = new MemoryStore();
    const read = store.read.bind(store);
    store.read = async () => {
      most = Math.max(most, ++inflight);
      await sleep(20);
      inflight--;
      return read();
    };
    const key = "push:burst";
    const a = await instance(store, key);
    await subscribers(admin, `${key}:written`, 1);
    await a.mm.isEnabled();
    await sleep(100);
    const reads = store.reads;
    for (let n = 0; n < 200; n++) {
      admin.publish(`${key}:written`, '{"x-maintenance":1,"written":"x"}');
    }
    await sleep(500);
    assert.equal(most, 1, "one read in flight at a time");
    assert.ok(
      store.reads - reads >= 1 && store.reads - reads <= 30,
      `${store.reads - reads} reads for 200 messages`,
    );
  });

  it("without a subscriber: per-check Redis as before, and writes still publish", async () => {
    const store = new MemoryStore();
    const key = "push:poll";
    const a = await instance(store, key, { subscribe: false });
    const b = await instance(store, key);
    await subscribers(admin, `${key}:written`, 1);
    await a.mm.isEnabled();
    const gets = await calls(admin, "get");
    for (let n = 0; n < 20; n++) await a.mm.isEnabled();
    assert.ok(await calls(admin, "get") - gets >= 20, "a GET per check");
    await b.mm.isEnabled();
    await a.mm.enable();
    assert.ok(await until(b.mm, true) < 100, "B subscribed: pushed");
  });

  it("the subscription lost: polled once a second meanwhile, one report, push again once re-subscribed", async () => {
    const store = new MemoryStore();
    const key = "push:lost";
    const a = await instance(store, key);
    const b = await instance(store, key);
    const channel = `${key}:written`;
    await subscribers(admin, channel, 2);
    assert.equal(await b.mm.isEnabled(), false);
    // Hold b's subscriber down: no new connection may log in (the ones open stay)
    // until the default user is switched on again.
    await admin.sendCommand(["ACL", "SETUSER", "default", "off"]);
    try {
      const id = await b.subscriber!.clientId();
      await admin.sendCommand(["CLIENT", "KILL", "ID", String(id)]);
      await sleep(50);
      // The message of this write is lost for b: it polls meanwhile.
      await a.mm.enable({ message: "while b was away" });
      const ms = await until(b.mm, true, 3000);
      assert.ok(
        ms < 1500,
        `served after ${Math.round(ms)} ms while push was down`,
      );
      // And the other way, while it is still down.
      await a.mm.disable();
      assert.ok(await until(b.mm, false, 3000) < 1500);
    } finally {
      await admin.sendCommand(["ACL", "SETUSER", "default", "on"]);
    }
    await subscribers(admin, channel, 2); // b's client re-subscribed on its own
    await sleep(100);
    // Push again: no GET between switches, a write served at once.
    const gets = await calls(admin, "get");
    for (let n = 0; n < 200; n++) await b.mm.isEnabled();
    assert.equal(await calls(admin, "get") - gets, 0, "push is back");
    await a.mm.enable();
    assert.ok(await until(b.mm, true) < 100);
    assert.equal(b.errors.length, 1, b.errors.map((e) => e.message).join("|"));
    assert.match(b.errors[0].message, /subscriber .* lost its connection/);
  });

  it("a subscriber that cannot connect at first: reported once, polled meanwhile, push once it can", async () => {
    const store = new MemoryStore();
    const key = "push:late";
    const a = await instance(store, key, { subscribe: false });
    const client = createClient({ url: server!.url });
    client.on("error", () => {});
    open.push(client);
    await client.connect();
    const subscriber = client.duplicate(); // connected by redisCache: refused at first
    open.push(subscriber);
    const errors: Error[] = [];
    // No new connection may log in until the default user is on again.
    await admin.sendCommand(["ACL", "SETUSER", "default", "off"]);
    const mm = createMaintenance({
      store,
      cache: { key, ttlMs: 60_000, store: redisCache(client, { subscriber }) },
      timeoutMs: 500,
      onError: (e) => errors.push(e),
    });
    try {
      assert.equal(await mm.isEnabled(), false);
      await sleep(1200);
      assert.equal(errors.length, 1, errors.map((e) => e.message).join("|"));
      assert.match(
        errors[0].message,
        /cannot subscribe to Redis channel "push:late:written"/,
      );
      // Polled meanwhile: a write by another instance is served within a second.
      await a.mm.enable();
      assert.ok(await until(mm, true, 3000) < 1500);
    } finally {
      await admin.sendCommand(["ACL", "SETUSER", "default", "on"]);
    }
    await subscribers(admin, `${key}:written`, 1);
    await sleep(100);
    await a.mm.disable();
    assert.ok(await until(mm, false) < 100, "pushed once subscribed");
    assert.equal(errors.length, 1);
  });

  it("checks its options", () => {
    const client = createClient();
    assert.throws(
      () => redisCache(client, { subscriber: client }),
      /its own connection .*client\.duplicate\(\)/,
    );
    assert.throws(
      () =>
        redisCache(client, {
          subscriber: {} as unknown as RedisLikeSubscriber,
        }),
      /subscriber must be a node-redis client/,
    );
    const ioredisLike = {
      status: "ready",
      subscribe: () => Promise.resolve(),
      on: () => {},
    };
    assert.throws(
      () => redisCache(client, { subscriber: ioredisLike }),
      /ioredis client is not supported/,
    );
    const noPublish: RedisLikeClient = {
      get: () => Promise.resolve(null),
      set: () => Promise.resolve(),
      del: () => Promise.resolve(),
    };
    assert.throws(
      () => redisCache(noPublish, { subscriber: client.duplicate() }),
      /needs a client with publish/,
    );
    assert.throws(
      () =>
        redisCache(
          client,
          { subscribe: client.duplicate() } as unknown as RedisCacheOptions,
        ),
      /subscriber/,
    );
  });
});
