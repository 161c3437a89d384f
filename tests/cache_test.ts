import { withCountedDateNow } from "./helpers.ts";
import { sharedCache } from "../src/_shared.ts";
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Hono } from "hono";
import type { CacheStore, StateStore } from "../stores/_types.ts";
import { createMaintenance } from "../src/maintenance.ts";
import { MemoryCache } from "./memory_cache.ts";
import { MemoryStore } from "../stores/memory.ts";
import { StateCache } from "../src/_cache.ts";
import { TimeoutError } from "../src/_timeout.ts";

/**
 * A fake clock: tests move time by hand, so TTLs are exact on a noisy machine.
 */
function clock(start = Date.parse("2030-01-01T00:00:00Z")) {
  let t = start;
  return {
    now: () => t,
    advance(ms: number) {
      t += ms;
    },
  };
}

/**
 * FAULT INJECTOR (no real store can be told to do these on cue): a MemoryStore behind a
 * switch that makes reads fail, return corrupt text, or hang forever (never resolve,
 * ignoring the abort signal). Counts every read it is asked for.
 */
class FaultyStore implements StateStore {
  readonly description = "faulty test store";
  mode: "ok" | "fail" | "corrupt" | "hang" = "ok";
  reads = 0;
  /** Resolvers of the reads hanging now; `release()` ends them. */
  hung: ((text: string | null) => void)[] = [];
  inner: MemoryStore;
  constructor(initial: string | null = null) {
    this.inner = new MemoryStore(initial);
  }
  read(): Promise<string | null> {
    this.reads++;
    switch (this.mode) {
      case "fail":
        return Promise.reject(new Error("injected store failure"));
      case "corrupt":
        return Promise.resolve("{not a state");
      case "hang":
        return new Promise((resolve) => this.hung.push(resolve));
      default:
        return this.inner.read();
    }
  }
  write(text: string): Promise<void> {
    return this.inner.write(text);
  }
  /** Ends the hanging reads with the current text (a hung mount that recovers). */
  async release(): Promise<void> {
    const text = await this.inner.read();
    for (const resolve of this.hung.splice(0)) resolve(text);
  }
}

/**
 * FAULT INJECTOR (a real Redis cannot fail get, set and delete separately on cue): a
 * MemoryCache whose operations can be made to fail.
 */
class FlakyCache implements CacheStore {
  inner = new MemoryCache();
  failing = new Set<"get" | "set" | "delete">();
  get(key: string): Promise<string | null> {
    return this.failing.has("get")
      ? Promise.reject(new Error("injected cache get failure"))
      : this.inner.get(key);
  }
  set(key: string, value: string, ttl: number | null): Promise<void> {
    return this.failing.has("set")
      ? Promise.reject(new Error("injected cache set failure (READONLY)"))
      : this.inner.set(key, value, ttl);
  }
  delete(key: string): Promise<void> {
    return this.failing.has("delete")
      ? Promise.reject(new Error("injected cache delete failure"))
      : this.inner.delete(key);
  }
}

/**
 * A controller on a fake clock over a FaultyStore that holds a good state, with a TTL of
 * 100 ms, `timeoutMs`, and the errors `onError` heard.
 */
function goodThenFaulty(timeoutMs: number) {
  const c = clock();
  const store = new FaultyStore('{"enabled":true,"message":"good"}');
  const errors: Error[] = [];
  const mm = createMaintenance({
    store,
    timeoutMs,
    cache: { ttlMs: 100 },
    now: c.now,
    onError: (e) => errors.push(e),
  });
  return { c, store, errors, mm };
}

/** Lets pending promise callbacks (a background refresh) run. */
/**
 * A store whose reads wait until `release(text)` answers the latest of them, so a
 * read can be held across a write; writes land at once.
 */
function heldReadStore(): {
  store: StateStore & { text: string | null };
  release: (text: string | null) => void;
} {
  let answer: (text: string | null) => void = () => {};
  const store: StateStore & { text: string | null } = {
    text: "0",
    read: () => new Promise((resolve) => (answer = resolve)),
    write(t) {
      this.text = t;
      return Promise.resolve();
    },
  };
  return { store, release: (text) => answer(text) };
}

function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

describe("createMaintenance controller", () => {
  it("isEnabled / getState / enable / disable", async () => {
    const store = new MemoryStore();
    const mm = createMaintenance({ store });
    assert.equal(await mm.isEnabled(), false);
    assert.deepEqual(await mm.getState(), { enabled: false });
    const written = await mm.enable({
      message: "Back at 14:00",
      retryAfter: 600,
    });
    assert.equal(written.enabled, true);
    assert.equal(written.message, "Back at 14:00");
    assert.ok(written.updatedAt);
    assert.equal(await mm.isEnabled(), true);
    const state = await mm.getState();
    assert.equal(state.message, "Back at 14:00");
    assert.equal(state.retryAfter, 600);
    // What the store holds is the JSON state, readable by any other process.
    const raw = JSON.parse((await store.read())!);
    assert.equal(raw.enabled, true);
    assert.equal(raw.message, "Back at 14:00");
    await mm.disable();
    assert.equal(await mm.isEnabled(), false);
    assert.equal(JSON.parse((await store.read())!).enabled, false);
  });

  it("a scheduled window is not enabled before it starts, nor after it ends", async () => {
    const c = clock();
    const mm = createMaintenance({ store: new MemoryStore(), now: c.now });
    await mm.enable({
      startsAt: new Date(c.now() + 60_000),
      endsAt: new Date(c.now() + 120_000),
    });
    assert.equal(await mm.isEnabled(), false);
    c.advance(60_000);
    assert.equal(await mm.isEnabled(), true);
    c.advance(60_000);
    assert.equal(await mm.isEnabled(), false);
  });

  it("enable() validates before anything is written", async () => {
    const c = clock();
    const store = new MemoryStore('{"enabled":false}');
    const mm = createMaintenance({ store, now: c.now });
    const past = new Date(c.now() - 1000).toISOString();
    const future = new Date(c.now() + 60_000).toISOString();
    const bad: [unknown, typeof TypeError | typeof RangeError, RegExp][] = [
      [{ endsAt: past }, RangeError, /endsAt .* is in the past/],
      [
        { startsAt: future, endsAt: future },
        RangeError,
        /must be before endsAt/,
      ],
      [
        { endsAt: "tomorrow" },
        TypeError,
        /endsAt must be a Date or an ISO-8601/,
      ],
      [{ startsAt: 12 }, TypeError, /startsAt must be a Date/],
      [{ message: 5 }, TypeError, /message must be a string/],
      [{ message: "x".repeat(2001) }, RangeError, /at most 2000/],
      [{ message: "bell\u0007" }, TypeError, /control characters/],
      [{ retryAfter: -1 }, RangeError, /retryAfter must be a whole number/],
      [{ retryAfter: 1.5 }, RangeError, /retryAfter/],
      [{ refresh: "10" }, RangeError, /refresh/],
      [null, TypeError, /options object/],
    ];
    for (const [opts, type, message] of bad) {
      await assert.rejects(
        mm.enable(opts as never),
        (e: Error) => {
          assert.ok(e instanceof type, `${JSON.stringify(opts)}: ${e.name}`);
          assert.match(e.message, message);
          return true;
        },
      );
    }
    assert.equal(await store.read(), '{"enabled":false}');
    assert.equal(await mm.isEnabled(), false);
  });

  it("setState() refuses a state readers would reject, before writing", async () => {
    const store = new MemoryStore("1");
    const mm = createMaintenance({ store });
    for (
      const bad of [
        { enabled: "yes" },
        { enabled: true, retryAfter: -1 },
        { enabled: true, endsAt: "tomorrow" },
        { enabled: true, message: "x".repeat(2001) },
        { enabled: true, bypass: "plain-secret" },
      ]
    ) {
      await assert.rejects(
        mm.setState(bad as never),
        (e: Error) =>
          e instanceof TypeError && /maintenance state/.test(e.message),
        JSON.stringify(bad).slice(0, 60),
      );
    }
    assert.equal(await store.read(), "1");
    assert.equal(await mm.isEnabled(), true);
  });

  it("createMaintenance validates its options", () => {
    const bad: [unknown, typeof TypeError | typeof RangeError, RegExp][] = [
      ["x", TypeError, /options object/],
      [
        { stor: new MemoryStore() },
        TypeError,
        /unknown createMaintenance option "stor"/,
      ],
      [{ store: {} }, TypeError, /store must have read\(\) and write\(\)/],
      [{ timeoutMs: 0 }, RangeError, /timeoutMs/],
      [{ timeoutMs: Infinity }, RangeError, /timeoutMs/],
      [{ cache: "yes" }, TypeError, /cache must be an object/],
      [{ cache: { ttlMs: -1 } }, RangeError, /ttlMs/],
      [{ cache: { key: "" } }, TypeError, /cache\.key/],
      [
        { cache: { store: {} } },
        TypeError,
        /cache\.store must come from redisCache/,
      ],
      [{ fallback: "on" }, TypeError, /fallback must be true/],
      [{ onError: "log" }, TypeError, /onError must be a function/],
    ];
    for (const [opts, type, message] of bad) {
      assert.throws(
        () => createMaintenance(opts as never),
        (e: Error) => {
          assert.ok(e instanceof type, `${JSON.stringify(opts)}: ${e.name}`);
          assert.match(e.message, message);
          return true;
        },
      );
    }
  });
});

describe("read-through cache { ttlMs }", () => {
  it("concurrent misses share one store read", async () => {
    const store = new MemoryStore("1");
    const mm = createMaintenance({ store, cache: { ttlMs: 1000 } });
    const all = await Promise.all(
      Array.from({ length: 100 }, () => mm.isEnabled()),
    );
    assert.ok(all.every((v) => v === true));
    assert.equal(store.reads, 1);
  });

  it("concurrent requests through the middleware share one store read", async () => {
    const store = new MemoryStore("1");
    const mm = createMaintenance({ store, cache: { ttlMs: 60_000 } });
    const app = new Hono();
    app.use(mm.middleware());
    app.get("*", (c) => c.text("ok"));
    const statuses = await Promise.all(
      Array.from(
        { length: 50 },
        async () => (await app.fetch(new Request("http://localhost/"))).status,
      ),
    );
    assert.ok(statuses.every((s) => s === 503), String(statuses));
    assert.equal(store.reads, 1);
  });

  it("serves from memory within the TTL and reads again after it", async () => {
    const c = clock();
    const store = new MemoryStore("0");
    const mm = createMaintenance({ store, cache: { ttlMs: 500 }, now: c.now });
    assert.equal(await mm.isEnabled(), false);
    await store.write("1"); // another process switches it on
    c.advance(499);
    assert.equal(await mm.isEnabled(), false);
    assert.equal(store.reads, 1);
    c.advance(1);
    assert.equal(await mm.isEnabled(), true);
    assert.equal(store.reads, 2);
  });

  it("with the real clock, through the middleware: cached within the TTL, re-read after", async () => {
    const store = new MemoryStore("0");
    const mm = createMaintenance({ store, cache: { ttlMs: 300 } });
    const app = new Hono();
    app.use(mm.middleware());
    app.get("*", (c) => c.text("ok"));
    const status = async () =>
      (await app.fetch(new Request("http://localhost/"))).status;
    const t0 = performance.now();
    assert.equal(await status(), 200);
    await store.write("1"); // another process switches it on
    const early = await status();
    if (performance.now() - t0 < 250) {
      assert.equal(early, 200, "served from the cache within the TTL");
      assert.equal(store.reads, 1);
    }
    let seen = 0;
    while ((seen = await status()) !== 503 && performance.now() - t0 < 5000) {
      await new Promise((r) => setTimeout(r, 10));
    }
    const ms = performance.now() - t0;
    assert.equal(seen, 503);
    assert.ok(ms <= 300 + 250, `seen after ${Math.round(ms)} ms`);
    assert.ok(store.reads <= 4, `${store.reads} reads`);
  });

  it("a write through the controller is seen at once, without a read", async () => {
    const c = clock();
    const store = new MemoryStore("0");
    const mm = createMaintenance({
      store,
      cache: { ttlMs: 60_000 },
      now: c.now,
    });
    assert.equal(await mm.isEnabled(), false);
    await mm.enable();
    assert.equal(await mm.isEnabled(), true);
    await mm.disable();
    assert.equal(await mm.isEnabled(), false);
    assert.equal(store.reads, 1);
  });

  it("a read that began before a write cannot bring the old state back", async () => {
    const { store, release } = heldReadStore();
    const mm = createMaintenance({ store, cache: { ttlMs: 60_000 } });
    const pending = mm.isEnabled(); // the read is in flight
    await mm.enable();
    release("0"); // the stale read completes after the write
    await pending;
    assert.equal(await mm.isEnabled(), true);
  });

  it("cache: false reads the store on every check", async () => {
    const store = new MemoryStore("0");
    const mm = createMaintenance({ store, cache: false });
    for (let i = 0; i < 5; i++) await mm.isEnabled();
    assert.equal(store.reads, 5);
    await store.write("1");
    assert.equal(await mm.isEnabled(), true);
  });

  it("ttlMs: null caches forever (only this process's writes are seen)", async () => {
    const c = clock();
    const store = new MemoryStore("0");
    const mm = createMaintenance({ store, cache: { ttlMs: null }, now: c.now });
    assert.equal(await mm.isEnabled(), false);
    await store.write("1");
    c.advance(365 * 86_400_000);
    assert.equal(await mm.isEnabled(), false);
    assert.equal(store.reads, 1);
    await mm.enable();
    assert.equal(await mm.isEnabled(), true);
  });
});

describe("a failing store never fails a request", () => {
  it("keeps the last good state; onError once per failure streak, again after recovery", async () => {
    const c = clock();
    const store = new FaultyStore("1");
    const errors: Error[] = [];
    const mm = createMaintenance({
      store,
      cache: { ttlMs: 100 },
      now: c.now,
      onError: (e) => errors.push(e),
    });
    assert.equal(await mm.isEnabled(), true);

    store.mode = "fail";
    for (let i = 0; i < 20; i++) {
      c.advance(300); // past the TTL and the retry pause, again and again
      assert.equal(await mm.isEnabled(), true, `check ${i}`);
      await settle();
    }
    assert.equal(errors.length, 1, errors.map((e) => e.message).join("; "));
    assert.match(errors[0].message, /injected store failure/);
    assert.ok(store.reads > 2, "it kept retrying in the background");

    // Recovery: the new state is picked up, and nothing more is reported.
    store.mode = "ok";
    await store.inner.write("0");
    for (let i = 0; i < 5 && (await mm.isEnabled()); i++) {
      c.advance(1100);
      await settle();
    }
    assert.equal(await mm.isEnabled(), false);
    assert.equal(errors.length, 1);

    // A new failure streak is reported again, once.
    store.mode = "fail";
    for (let i = 0; i < 10; i++) {
      c.advance(300);
      assert.equal(await mm.isEnabled(), false);
      await settle();
    }
    assert.equal(errors.length, 2);
  });

  it("corrupt text keeps the last good state and is reported", async () => {
    const c = clock();
    const store = new FaultyStore('{"enabled":true,"message":"kept"}');
    const errors: Error[] = [];
    const mm = createMaintenance({
      store,
      cache: { ttlMs: 100 },
      now: c.now,
      onError: (e) => errors.push(e),
    });
    assert.equal((await mm.getState()).message, "kept");
    store.mode = "corrupt";
    for (let i = 0; i < 5; i++) {
      c.advance(1500);
      assert.equal((await mm.getState()).message, "kept");
      await settle();
    }
    assert.equal(errors.length, 1);
    assert.match(errors[0].message, /corrupt/);
  });

  for (const fallback of [false, true]) {
    it(`with no good state yet, serves fallback: ${fallback}`, async () => {
      for (const mode of ["fail", "corrupt"] as const) {
        const store = new FaultyStore("1");
        store.mode = mode;
        const errors: Error[] = [];
        const mm = createMaintenance({
          store,
          fallback,
          onError: (e) => errors.push(e),
        });
        assert.equal(await mm.isEnabled(), fallback, mode);
        assert.equal(await mm.isEnabled(), fallback, mode);
        assert.equal(errors.length, 1, mode);
      }
    });
  }

  it("requests keep flowing through the middleware while the store fails", async () => {
    const store = new FaultyStore("1");
    const errors: Error[] = [];
    const mm = createMaintenance({
      store,
      cache: { ttlMs: 0 },
      onError: (e) => errors.push(e),
    });
    const app = new Hono();
    app.use(mm.middleware());
    app.get("*", (c) => c.text("ok"));
    assert.equal(
      (await app.fetch(new Request("http://localhost/"))).status,
      503,
    );
    store.mode = "fail";
    for (let i = 0; i < 20; i++) {
      const res = await app.fetch(new Request("http://localhost/"));
      assert.equal(res.status, 503);
    }
    assert.equal(errors.length, 1);
  });

  it("an onError that throws does not break a request", async () => {
    const store = new FaultyStore();
    store.mode = "fail";
    const heard: Error[] = [];
    const mm = createMaintenance({
      store,
      onError: (e) => {
        heard.push(e);
        throw new Error("logger down");
      },
    });
    const app = new Hono();
    app.use(mm.middleware());
    app.get("/", (c) => c.text("ok"));
    const res = await app.request("/");
    assert.equal(res.status, 200, "the fallback (off) is served");
    assert.equal(await res.text(), "ok");
    assert.equal(await mm.isEnabled(), false);
    assert.ok(store.reads >= 1, "the store was read");
    assert.equal(heard.length, 1, "onError ran, once for the streak");
    assert.match(heard[0].message, /injected store failure/);
  });

  it("a hanging store is bounded by timeoutMs", async () => {
    // FAULT INJECTOR: a read that never resolves and ignores its abort signal.
    const store = new FaultyStore("1");
    store.mode = "hang";
    const errors: Error[] = [];
    const mm = createMaintenance({
      store,
      timeoutMs: 100,
      fallback: true,
      onError: (e) => errors.push(e),
    });
    const t0 = performance.now();
    assert.equal(await mm.isEnabled(), true); // the fallback
    const ms = performance.now() - t0;
    assert.ok(ms >= 90 && ms < 2000, `took ${ms} ms`);
    assert.equal(errors.length, 1);
    assert.ok(errors[0] instanceof TimeoutError, errors[0].name);
    assert.match(errors[0].message, /faulty test store.*within \d+ ms/);

    // Later checks do not wait on the hanging store at all.
    const t1 = performance.now();
    for (let i = 0; i < 10; i++) await mm.isEnabled();
    // Waiting on the store would cost >= 100 ms per check, 1 s for ten.
    const waited = performance.now() - t1;
    assert.ok(waited < 500, `ten checks took ${waited} ms`);
    assert.equal(errors.length, 1);
  });

  it("a store that hangs after a good read keeps serving the good state at once", async () => {
    const { c, store, errors, mm } = goodThenFaulty(100);
    assert.equal((await mm.getState()).message, "good");
    store.mode = "hang";
    c.advance(200);
    // The first check after the TTL waits for the timeout at most...
    assert.equal((await mm.getState()).message, "good");
    assert.equal(errors.length, 1);
    // ...later ones not at all.
    const t = performance.now();
    for (let i = 0; i < 10; i++) {
      c.advance(2000);
      assert.equal((await mm.getState()).message, "good");
    }
    // Waiting on the store would cost >= 100 ms per check, 1 s for ten.
    const waited = performance.now() - t;
    assert.ok(waited < 500, `ten checks took ${waited} ms`);
    assert.equal(errors.length, 1);
  });
});

describe("cache faults: hung reads, clock steps, a shared cache that half works", () => {
  it("a store that answers with a plain value (not a promise) works, with no unhandled rejection", async () => {
    const store = { read: () => "1", write: () => {} } as unknown as StateStore;
    const errors: Error[] = [];
    const mm = createMaintenance({
      store,
      cache: false,
      onError: (e) => errors.push(e),
    });
    assert.equal(await mm.isEnabled(), true);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(errors, []);
  });

  it("a hung read is not joined by more while it hangs; after it ends, reads go on", async () => {
    // FAULT INJECTOR: reads that hang (ignoring their signal) until released.
    const { c, store, errors, mm } = goodThenFaulty(50);
    assert.equal((await mm.getState()).message, "good");
    store.mode = "hang";
    for (let i = 0; i < 10; i++) {
      c.advance(2000);
      await mm.getState();
      await new Promise((resolve) => setTimeout(resolve, 60));
    }
    assert.equal(store.reads, 2, "one read hangs; no more pile up behind it");
    assert.equal(errors.length, 1);
    store.mode = "ok";
    await store.inner.write('{"enabled":false}');
    await store.release();
    await settle();
    c.advance(2000);
    await mm.getState();
    await settle();
    c.advance(2000);
    assert.equal((await mm.getState()).enabled, false);
  });

  it("a wall clock stepping back does not keep a stale state fresh", async () => {
    const c = clock();
    const store = new FaultyStore("0");
    const mm = createMaintenance({
      store,
      cache: { ttlMs: 1000 },
      now: c.now,
    });
    assert.equal(await mm.isEnabled(), false);
    assert.equal(store.reads, 1);
    await store.inner.write("1"); // switched elsewhere
    c.advance(500);
    assert.equal(await mm.isEnabled(), false, "within the TTL");
    c.advance(-3_600_000); // NTP steps the clock back an hour
    assert.equal(await mm.isEnabled(), true, "read again, not an hour later");
    assert.equal(store.reads, 2);
  });

  it("a write whose shared-cache delete fails: the old state does not come back when the cache does", async () => {
    const store = new MemoryStore('{"enabled":true}');
    const shared = new FlakyCache();
    const opts = { ttlMs: 60_000, store: sharedCache(shared) };
    const a = createMaintenance({ store, cache: opts, onError: () => {} });
    const b = createMaintenance({ store, cache: opts, onError: () => {} });
    assert.equal(await a.isEnabled(), true);
    assert.equal(await b.isEnabled(), true); // the key holds "on"
    shared.failing = new Set(["get", "set", "delete"]); // the cache goes down
    await a.disable();
    assert.equal(
      await shared.inner.get("maintenance_mode_state"),
      '{"enabled":true}',
    );
    shared.failing.clear(); // back, still holding "on"
    await new Promise((resolve) => setTimeout(resolve, 1100)); // past a's local copy
    assert.equal(
      await a.isEnabled(),
      false,
      "a deletes the key before trusting it",
    );
    assert.equal(await b.isEnabled(), false, "b misses and reads the store");
  });

  it("a shared cache that reads but cannot write (READONLY) is reported once, not every second", async () => {
    const c = clock();
    const shared = new FlakyCache();
    shared.failing.add("set");
    const errors: Error[] = [];
    const mm = createMaintenance({
      store: new MemoryStore("1"),
      cache: { ttlMs: 1000, store: sharedCache(shared) },
      now: c.now,
      onError: (e) => errors.push(e),
    });
    for (let i = 0; i < 8; i++) {
      assert.equal(await mm.isEnabled(), true);
      await settle();
      c.advance(1500);
    }
    assert.equal(errors.length, 1, errors.map((e) => e.message).join(" | "));
    assert.match(errors[0].message, /READONLY/);
  });

  it("a store that fails while other processes keep the shared key filled: onError once for the streak", async () => {
    const c = clock();
    const shared = new MemoryCache({ now: c.now });
    const store = new FaultyStore('{"enabled":true}');
    store.mode = "fail"; // this process cannot read the store (its grant is broken)
    const errors: Error[] = [];
    const mm = createMaintenance({
      store,
      cache: { ttlMs: 1000, store: sharedCache(shared) },
      now: c.now,
      onError: (e) => errors.push(e),
    });
    const key = "maintenance_mode_state";
    for (let i = 0; i < 4; i++) {
      c.advance(1500);
      await mm.isEnabled(); // a miss: the store is read, and fails
      await settle();
      await shared.set(key, '{"enabled":true}', 60); // another process fills the key
      c.advance(1500);
      await mm.isEnabled(); // the next try: a hit
      await settle();
      assert.equal(await mm.isEnabled(), true, `round ${i}: a hit`);
      await shared.delete(key); // the key expires
    }
    assert.equal(errors.length, 1, errors.map((e) => e.message).join(" | "));
  });

  it("a corrupt value in the shared cache is a miss: the store's state is served and overwrites it", async () => {
    const shared = new MemoryCache();
    await shared.set("maintenance_mode_state", "{corrupt", null);
    const errors: Error[] = [];
    const mm = createMaintenance({
      store: new MemoryStore('{"enabled":true}'),
      cache: { ttlMs: 1000, store: sharedCache(shared) },
      onError: (e) => errors.push(e),
    });
    assert.equal(await mm.isEnabled(), true);
    await settle();
    assert.equal(
      await shared.get("maintenance_mode_state"),
      '{"enabled":true}',
    );
    assert.equal(errors.length, 1);
    assert.match(errors[0].message, /cache key maintenance_mode_state/);
  });
});

describe("cache edges: defaults, retries, a shared cache that hangs or races", () => {
  it("cache: {} trusts a read for the default 1000 ms", async () => {
    const c = clock();
    const store = new MemoryStore("0");
    const mm = createMaintenance({ store, cache: {}, now: c.now });
    assert.equal(await mm.isEnabled(), false);
    await store.write("1"); // another process switches it on
    c.advance(999);
    assert.equal(await mm.isEnabled(), false);
    c.advance(1);
    assert.equal(await mm.isEnabled(), true);
    assert.equal(store.reads, 2);
  });

  it("a StateCache without cache options reads the store on every check", async () => {
    const store = new MemoryStore("0");
    const cache = new StateCache({
      store,
      timeoutMs: 1000,
      fallback: { enabled: false },
      onError: () => {},
      now: Date.now,
    });
    for (let i = 0; i < 3; i++) await cache.get();
    assert.equal(store.reads, 3);
  });

  it("ttlMs: null stays forever even when the clock steps back", async () => {
    const c = clock();
    const store = new MemoryStore("0");
    const mm = createMaintenance({ store, cache: { ttlMs: null }, now: c.now });
    assert.equal(await mm.isEnabled(), false);
    await store.write("1");
    c.advance(-3_600_000);
    assert.equal(await mm.isEnabled(), false);
    assert.equal(store.reads, 1);
  });

  for (const cache of [false, { ttlMs: 100 }] as const) {
    it(`a failing store is tried once a second, not on every check (cache: ${JSON.stringify(cache)})`, async () => {
      const c = clock();
      const store = new FaultyStore('{"enabled":true}');
      const mm = createMaintenance({
        store,
        cache,
        now: c.now,
        onError: () => {},
      });
      assert.equal(await mm.isEnabled(), true);
      store.mode = "fail";
      c.advance(200);
      assert.equal(await mm.isEnabled(), true); // this check finds it failing
      const reads = store.reads;
      for (let i = 0; i < 5; i++) {
        c.advance(150);
        assert.equal(await mm.isEnabled(), true, "the last good state");
        await settle();
      }
      assert.equal(store.reads, reads, "no read within the second");
      c.advance(300); // a second after the failure
      assert.equal(await mm.isEnabled(), true);
      await settle();
      assert.equal(store.reads, reads + 1, "one retry");
    });
  }

  it("a store failing from the start: the fallback is served and the store tried once a second", async () => {
    for (const cache of [false, { ttlMs: 60_000 }] as const) {
      const c = clock();
      const store = new FaultyStore("1");
      store.mode = "fail";
      const mm = createMaintenance({
        store,
        cache,
        now: c.now,
        fallback: true,
        onError: () => {},
      });
      for (let i = 0; i < 4; i++) {
        assert.equal(await mm.isEnabled(), true, "the fallback");
        await settle();
        c.advance(100);
      }
      assert.equal(store.reads, 1, JSON.stringify(cache));
    }
  });

  it("a shared cache that hangs gets half of timeoutMs; the store the rest, and is asked alone for a second", async () => {
    const c = clock();
    let cacheGets = 0;
    const hanging: CacheStore = {
      get: () => {
        cacheGets++;
        return new Promise<string | null>(() => {});
      },
      set: () => Promise.resolve(),
      delete: () => Promise.resolve(),
    };
    const inner = new MemoryStore(
      '{"enabled":true,"message":"from the store"}',
    );
    const slowStore: StateStore = {
      read: async () => {
        await new Promise((r) => setTimeout(r, 40));
        return inner.read();
      },
      write: (t) => inner.write(t),
    };
    const errors: Error[] = [];
    const mm = createMaintenance({
      store: slowStore,
      cache: { ttlMs: 100, store: sharedCache(hanging) },
      timeoutMs: 600,
      now: c.now,
      onError: (e) => errors.push(e),
    });
    const state = await mm.getState();
    assert.equal(state.message, "from the store");
    assert.equal(errors.length, 1, errors.map((e) => e.message).join(" | "));
    assert.equal(cacheGets, 1);
    c.advance(200); // past the local copy, within the cache's retry second
    const t0 = performance.now();
    assert.equal((await mm.getState()).message, "from the store");
    assert.equal(cacheGets, 1, "the hanging cache is not asked again");
    assert.ok(performance.now() - t0 < 250, "no wait for the cache");
    c.advance(-3_600_000); // the wall clock steps back an hour
    assert.equal((await mm.getState()).message, "from the store");
    assert.equal(cacheGets, 2, "asked again, not an hour later");
  });

  it("a read that began before a write does not put the old state into the shared cache", async () => {
    const { store, release } = heldReadStore();
    const shared = new MemoryCache();
    const mm = createMaintenance({
      store,
      cache: { ttlMs: 60_000, store: sharedCache(shared) },
    });
    const pending = mm.isEnabled(); // a miss: the store read is in flight
    await mm.enable();
    release("0"); // the stale read completes after the write
    await pending;
    await settle();
    assert.equal(await shared.get("maintenance_mode_state"), null);
  });

  it("after a write the shared key is deleted again, in case another process put the old state back", async () => {
    const shared = new MemoryCache();
    const mm = createMaintenance({
      store: new MemoryStore("0"),
      cache: { ttlMs: 60_000, store: sharedCache(shared) },
      timeoutMs: 50,
    });
    await mm.enable();
    // Another process's read, in flight during the write, lands now.
    await shared.set("maintenance_mode_state", "0", 60);
    await new Promise((resolve) => setTimeout(resolve, 50 + 250 + 150));
    assert.equal(await shared.get("maintenance_mode_state"), null);
  });
});

describe("snapshots", () => {
  it("a re-read of the same text keeps the same snapshot; a new text makes a new one", async () => {
    // With a shared cache or cache: false every check reads: the page rendered for a
    // snapshot, the middleware's per-state objects and the bypass check are reused.
    const store = new MemoryStore('{"enabled":true,"message":"m"}');
    const cache = new StateCache({
      store,
      cache: false,
      timeoutMs: 1000,
      fallback: { enabled: false },
      onError: () => {},
      now: Date.now,
    });
    const a = await cache.get();
    const b = await cache.get();
    assert.equal(store.reads, 2);
    assert.equal(a, b);
    await store.write('{"enabled":true,"message":"n"}');
    const c = await cache.get();
    assert.notEqual(c, a);
    assert.equal(c.state.message, "n");
  });
});

describe("current(): the state while fresh, no I/O", () => {
  function cacheOver(store: StateStore, ttlMs: number, now = Date.now) {
    return new StateCache({
      store,
      cache: { ttlMs },
      timeoutMs: 1000,
      fallback: { enabled: false },
      onError: () => {},
      now,
    });
  }

  it("reads no clock while the in-process copy is fresh (the benchmark's hot path)", async () => {
    await withCountedDateNow(async (clock) => {
      const cache = cacheOver(new MemoryStore("1"), 60_000, Date.now);
      await cache.get();
      clock.reads = 0;
      for (let i = 0; i < 1000; i++) {
        assert.equal(cache.current()?.enabled, true);
      }
      assert.equal(clock.reads, 0);
    });
  });

  it("a timer that runs late cannot stretch the TTL: the clock is read every 2048 answers", async () => {
    const cache = cacheOver(new MemoryStore(), 20);
    await cache.get();
    assert.ok(cache.current(), "fresh after a read");
    const until = Date.now() + 60;
    while (Date.now() < until) {
      // busy: the event loop cannot run the expiry timer
    }
    let calls = 0;
    while (cache.current() !== undefined && calls < 100_000) calls++;
    assert.ok(calls < 2048, `${calls} calls still said fresh`);
  });

  it("with a test clock: fresh until the TTL is up, then undefined until a read", async () => {
    const c = clock();
    const store = new MemoryStore("1");
    const cache = cacheOver(store, 100, c.now);
    assert.equal(cache.current(), undefined, "nothing read yet");
    await cache.get();
    c.advance(99);
    assert.equal(cache.current()?.enabled, true);
    c.advance(1);
    assert.equal(cache.current(), undefined);
    assert.equal(store.reads, 1, "current() never reads");
    cache.invalidate();
    assert.equal(cache.current(), undefined);
  });
});
