/**
 * `@x/maintenance/cloudflare` over small in-memory objects shaped like the Workers KV and
 * R2 bindings: the 64 KiB cap, a missing key, options errors, descriptions, errors
 * turned into `StoreError`s. These stand-ins are not the real test: that is
 * `scripts/npm_smoke_workers.mjs` (`deno task test:npm`), which runs both stores from
 * the packed package in workerd through wrangler's local server, with real KV and R2
 * bindings and no `nodejs_compat`.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  type KvNamespaceLike,
  type R2BucketLike,
  type R2ObjectBodyLike,
  R2Store,
  WorkersKvStore,
} from "../stores/cloudflare.ts";
import { StoreError } from "../stores/_store_error.ts";
import { createMaintenance } from "../src/maintenance.ts";

const DEFAULT_KEY = "maintenance_mode_state.txt";

/** A KV namespace in memory, counting calls. */
class FakeKv implements KvNamespaceLike {
  map = new Map<string, string>();
  gets: [string, string][] = [];
  fail?: Error;
  get(key: string, type: "text"): Promise<string | null> {
    this.gets.push([key, type]);
    if (this.fail) return Promise.reject(this.fail);
    return Promise.resolve(this.map.get(key) ?? null);
  }
  put(key: string, value: string): Promise<void> {
    if (this.fail) return Promise.reject(this.fail);
    this.map.set(key, value);
    return Promise.resolve();
  }
}

/** An R2 bucket in memory; records whether a body was read and each put's options. */
class FakeR2 implements R2BucketLike {
  map = new Map<string, string>();
  bodiesRead = 0;
  puts: { key: string; options: unknown }[] = [];
  fail?: Error;
  get(key: string): Promise<R2ObjectBodyLike | null> {
    if (this.fail) return Promise.reject(this.fail);
    const text = this.map.get(key);
    if (text === undefined) return Promise.resolve(null);
    return Promise.resolve({
      size: new TextEncoder().encode(text).byteLength,
      text: () => {
        this.bodiesRead++;
        return Promise.resolve(text);
      },
    });
  }
  put(
    key: string,
    value: string,
    options?: Parameters<R2BucketLike["put"]>[2],
  ): Promise<null> {
    if (this.fail) return Promise.reject(this.fail);
    this.map.set(key, value);
    this.puts.push({ key, options });
    return Promise.resolve(null);
  }
}

function storeError(code: string, ...includes: string[]) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof StoreError, `expected a StoreError, got ${e}`);
    assert.equal(e.code, code, e.message);
    for (const s of includes) assert.ok(e.message.includes(s), e.message);
    return true;
  };
}

describe("WorkersKvStore", () => {
  it("a missing key reads as null; a write is read back, under the default key", async () => {
    const kv = new FakeKv();
    const store = new WorkersKvStore(kv);
    assert.equal(store.description, `kv:${DEFAULT_KEY}`);
    assert.equal(await store.read(), null);
    await store.write('{"enabled":true}');
    assert.equal(kv.map.get(DEFAULT_KEY), '{"enabled":true}');
    assert.equal(await store.read(), '{"enabled":true}');
    assert.deepEqual(kv.gets[0], [DEFAULT_KEY, "text"]);
  });

  it("takes a key", async () => {
    const kv = new FakeKv();
    const store = new WorkersKvStore(kv, { key: "prod/state" });
    assert.equal(store.description, "kv:prod/state");
    await store.write("1");
    assert.deepEqual([...kv.map.keys()], ["prod/state"]);
  });

  it("a value over 64 KiB (in UTF-8 bytes) is an EFBIG StoreError; 64 KiB is read", async () => {
    const kv = new FakeKv();
    const store = new WorkersKvStore(kv);
    kv.map.set(DEFAULT_KEY, "x".repeat(65_536));
    assert.equal((await store.read())?.length, 65_536);
    kv.map.set(DEFAULT_KEY, "x".repeat(65_537));
    await assert.rejects(
      store.read(),
      storeError("EFBIG", `kv:${DEFAULT_KEY}`, "64 KiB"),
    );
    // 30,000 characters of 3 bytes each: under 64 K characters, over 64 KiB.
    kv.map.set(DEFAULT_KEY, "€".repeat(30_000));
    await assert.rejects(store.read(), storeError("EFBIG"));
  });

  it("what the binding throws is a StoreError naming the key", async () => {
    const kv = new FakeKv();
    kv.fail = Object.assign(new Error("KV GET failed: 500"), {
      name: "KvError",
    });
    const store = new WorkersKvStore(kv);
    await assert.rejects(
      store.read(),
      storeError("KvError", `cannot read maintenance state kv:${DEFAULT_KEY}`),
    );
    await assert.rejects(
      store.write("1"),
      storeError("KvError", "cannot write"),
    );
  });

  it("an aborted signal is an ABORTED StoreError", async () => {
    const store = new WorkersKvStore(new FakeKv());
    await assert.rejects(
      store.read(AbortSignal.abort()),
      storeError("ABORTED"),
    );
    const never: KvNamespaceLike = {
      get: () => new Promise(() => {}),
      put: () => new Promise(() => {}),
    };
    const c = new AbortController();
    const reading = new WorkersKvStore(never).read(c.signal);
    c.abort();
    await assert.rejects(reading, storeError("ABORTED"));
  });

  it("options: unknown keys (did you mean), a bad key, a missing binding", () => {
    const kv = new FakeKv();
    assert.throws(
      () => new WorkersKvStore(kv, { keys: "x" } as never),
      /unknown WorkersKvStore option "keys"; did you mean key\?/,
    );
    assert.throws(
      () => new WorkersKvStore(kv, { key: "" }),
      /WorkersKvStore key must be a non-empty string/,
    );
    assert.throws(
      () => new WorkersKvStore(kv, { key: "k".repeat(513) }),
      /longer than 512 bytes/,
    );
    assert.throws(
      () => new WorkersKvStore(kv, "key" as never),
      /WorkersKvStore options must be an object/,
    );
    assert.throws(
      () => new WorkersKvStore("STATE" as never),
      /WorkersKvStore needs a Workers KV namespace binding, such as new WorkersKvStore\(env\.STATE\) \(got string\)/,
    );
  });

  it("a missing binding (env.STATE undefined) is a store failure at each read and write", async () => {
    const store = new WorkersKvStore(undefined as never);
    await assert.rejects(
      store.read(),
      storeError("NO_BINDING", "WorkersKvStore has no binding", "env.STATE"),
    );
    await assert.rejects(store.write("1"), storeError("NO_BINDING"));
  });

  it("serves a controller: on, off, and a switch written to the namespace directly", async () => {
    const kv = new FakeKv();
    const mm = createMaintenance({
      store: new WorkersKvStore(kv),
      cache: { ttlMs: 0 },
    });
    assert.equal(await mm.isEnabled(), false);
    await mm.enable({ message: "soon" });
    assert.equal(await mm.isEnabled(), true);
    kv.map.set(DEFAULT_KEY, "0");
    assert.equal(await mm.isEnabled(), false);
  });
});

describe("R2Store", () => {
  it("a missing object reads as null; a write is read back, with no-store JSON metadata", async () => {
    const r2 = new FakeR2();
    const store = new R2Store(r2);
    assert.equal(store.description, `r2:${DEFAULT_KEY}`);
    assert.equal(await store.read(), null);
    await store.write('{"enabled":true}');
    assert.equal(await store.read(), '{"enabled":true}');
    assert.deepEqual(r2.puts, [{
      key: DEFAULT_KEY,
      options: {
        httpMetadata: {
          contentType: "application/json",
          cacheControl: "no-store",
        },
      },
    }]);
  });

  it("takes a key", async () => {
    const r2 = new FakeR2();
    const store = new R2Store(r2, { key: "prod/state.txt" });
    assert.equal(store.description, "r2:prod/state.txt");
    await store.write("1");
    assert.deepEqual([...r2.map.keys()], ["prod/state.txt"]);
  });

  it("an object over 64 KiB is an EFBIG StoreError by its size, its body not read", async () => {
    const r2 = new FakeR2();
    const store = new R2Store(r2);
    r2.map.set(DEFAULT_KEY, "x".repeat(65_536));
    assert.equal((await store.read())?.length, 65_536);
    assert.equal(r2.bodiesRead, 1);
    r2.map.set(DEFAULT_KEY, "x".repeat(65_537));
    await assert.rejects(
      store.read(),
      storeError("EFBIG", `r2:${DEFAULT_KEY}`, "65537 bytes"),
    );
    assert.equal(r2.bodiesRead, 1);
  });

  it("what the binding throws is a StoreError naming the key", async () => {
    const r2 = new FakeR2();
    r2.fail = new TypeError("get: bucket not bound");
    const store = new R2Store(r2);
    await assert.rejects(
      store.read(),
      storeError("TypeError", `r2:${DEFAULT_KEY}`, "bucket not bound"),
    );
  });

  it("options: unknown keys (did you mean), a bad key, a missing binding", () => {
    const r2 = new FakeR2();
    assert.throws(
      () => new R2Store(r2, { Key: "x" } as never),
      /unknown R2Store option "Key"; did you mean key\?/,
    );
    assert.throws(
      () => new R2Store(r2, { key: 1 } as never),
      /R2Store key must be a non-empty string/,
    );
    assert.throws(
      () => new R2Store(r2, { key: "k".repeat(1025) }),
      /longer than 1024 bytes/,
    );
    assert.throws(
      () => new R2Store({ get() {} } as never),
      /R2Store needs an R2 bucket binding, such as new R2Store\(env\.BUCKET\) \(got an object without get and put\)/,
    );
    return assert.rejects(
      new R2Store(null as never).read(),
      storeError("NO_BINDING", "R2Store has no binding", "env.BUCKET"),
    );
  });

  it("serves a controller: a switch written to the bucket directly is seen", async () => {
    const r2 = new FakeR2();
    const mm = createMaintenance({
      store: new R2Store(r2),
      cache: { ttlMs: 0 },
    });
    assert.equal(await mm.isEnabled(), false);
    r2.map.set(DEFAULT_KEY, "1");
    assert.equal(await mm.isEnabled(), true);
    await mm.disable();
    assert.equal(await mm.isEnabled(), false);
  });
});
