/**
 * `@x/maintenance/deno-kv` over a real `Deno.openKv(path)` (a SQLite file in a temp
 * directory; `deno test --unstable-kv`, as `deno task test` runs it): round trips, a
 * switch written through another handle served through `kv.watch()` (no polling: the
 * TTL is a minute), the 64 KiB cap and values that are not a state, a kv that throws,
 * closing the kv (Deno's sanitizers), and what the watch sees of a write made by
 * another process (nothing: the TTL poll picks it up; see docs/deno_kv.md).
 *
 * Bun has no `Deno.openKv`: there, the tests over a real kv are skipped (saying so) and
 * the ones that need no kv (options, a kv that always throws) run.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Hono } from "hono";
import {
  type DenoKvEntryLike,
  type DenoKvKey,
  type DenoKvLike,
  DenoKvStore,
} from "../stores/deno_kv.ts";
import { StoreError } from "../stores/_store_error.ts";
import { createMaintenance } from "../src/maintenance.ts";
import {
  cleanEnv,
  makeTempDir,
  removeDir,
  runProcess,
  serveFetch,
  sleep,
  type TestServer,
} from "./helpers.ts";

const KEY = ["maintenance_mode_state"];
/** What the tests use of the `Deno` namespace (typed here: Bun has none). */
interface DenoApi {
  openKv(path: string): Promise<Kv>;
  execPath(): string;
  test(t: {
    name: string;
    sanitizeOps: boolean;
    sanitizeResources: boolean;
    fn(): Promise<void>;
  }): void;
}
type Kv = DenoKvLike & { close(): void };
const deno = (globalThis as unknown as { Deno?: DenoApi }).Deno;
const HAS_KV = typeof deno?.openKv === "function";
const SKIP = HAS_KV
  ? false
  : deno
  ? "needs Deno.openKv: run deno test with --unstable-kv (deno task test does)"
  : "needs Deno.openKv (Deno KV), which Bun does not have; runs under deno test --unstable-kv";
if (!HAS_KV) {
  console.log(`tests/deno_kv_test.ts: real-kv tests skipped: ${SKIP}`);
}

function storeError(code: string, ...includes: string[]) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof StoreError, `expected a StoreError, got ${e}`);
    assert.equal(e.code, code, e.message);
    for (const s of includes) assert.ok(e.message.includes(s), e.message);
    return true;
  };
}

/** A DenoKvStore that counts the changes its watch reports. */
class CountingStore extends DenoKvStore {
  pushes = 0;
  override watch(changed: () => void, onError: (e: unknown) => void): void {
    super.watch(() => {
      this.pushes++;
      changed();
    }, onError);
  }
}

/** The status of GET / until it is `want`; the ms it took from `since`. */
async function until(
  url: string,
  want: number,
  since: number,
  limitMs: number,
): Promise<number> {
  for (;;) {
    const res = await fetch(url);
    await res.body?.cancel();
    const ms = performance.now() - since;
    if (res.status === want) return ms;
    if (ms > limitMs) {
      throw new Error(
        `GET / answered ${res.status}, not ${want}, for ${limitMs} ms`,
      );
    }
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2
    ? s[(s.length - 1) / 2]
    : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** An app behind the middleware of a controller over `store`. */
function appOver(
  store: DenoKvStore,
  options: { ttlMs?: number; errors?: Error[]; fallback?: boolean } = {},
) {
  const mm = createMaintenance({
    store,
    cache: { ttlMs: options.ttlMs ?? 60_000 },
    fallback: options.fallback,
    onError: (e) => options.errors?.push(e),
  });
  const app = new Hono();
  app.use(mm.middleware());
  app.get("/", (c) => c.text("app"));
  return { mm, app };
}

// Deno's sanitizers (off by default in Deno 2.9, and not run for node:test cases) are
// asked for by name here: a watch left running after close would leak its op, its
// "databaseWatcher" resource or a retry timer.
if (deno && HAS_KV) {
  deno.test({
    name:
      "DenoKvStore: closing the kv ends the watch quietly, leaving no op, resource or timer (Deno's sanitizers)",
    sanitizeOps: true,
    sanitizeResources: true,
    async fn() {
      const dir = await makeTempDir("maintenance-deno-kv-close-");
      try {
        const kv = await deno!.openKv(`${dir}/kv.sqlite`);
        const kv2 = await deno!.openKv(`${dir}/kv.sqlite`);
        const store = new DenoKvStore(kv);
        let changes = 0;
        const errors: unknown[] = [];
        store.watch(() => changes++, (e) => errors.push(e));
        // The watch is live once a write through the other handle reaches it.
        for (let i = 0; changes === 0 && i < 100; i++) {
          await kv2.set(KEY, String(i % 2));
          await sleep(20);
        }
        assert.ok(changes > 0, "the watch saw a write");
        kv.close();
        kv2.close();
        await sleep(100);
        assert.deepEqual(errors, [], "closing is not an error");
        await assert.rejects(
          store.read(),
          storeError("BadResource", "the Deno.Kv is closed"),
        );
      } finally {
        await removeDir(dir);
      }
    },
  });
}

// ---------------------------------------------------------------------------------
// No kv needed: these run under Deno and Bun.

/** A stand-in kv with the right methods, for option checks (never called). */
const SHAPE: DenoKvLike = {
  get: () => Promise.reject(new Error("not called")),
  set: () => Promise.reject(new Error("not called")),
  watch: () => {
    throw new Error("not called");
  },
};

describe("DenoKvStore options", () => {
  it("description names the key as Deno prints it; the default key", () => {
    assert.equal(
      new DenoKvStore(SHAPE).description,
      'deno-kv:["maintenance_mode_state"]',
    );
    assert.equal(
      new DenoKvStore(SHAPE, {
        key: ["prod", 7, 8n, true, new Uint8Array(2)],
      }).description,
      'deno-kv:["prod",7,8n,true,Uint8Array(2)]',
    );
  });

  it("unknown options (did you mean), a string key, bad keys, watch not a boolean", () => {
    assert.throws(
      () => new DenoKvStore(SHAPE, { keys: ["x"] } as never),
      /unknown DenoKvStore option "keys"; did you mean key\? \(known: key, watch\)/,
    );
    assert.throws(
      () => new DenoKvStore(SHAPE, { wach: false } as never),
      /did you mean watch\?/,
    );
    assert.throws(
      () => new DenoKvStore(SHAPE, { key: "prod_state" as never }),
      /DenoKvStore key must be an array \(a Deno\.KvKey\), such as \["prod_state"\]/,
    );
    for (const key of [[], [{}], [null], "" as never]) {
      assert.throws(
        () => new DenoKvStore(SHAPE, { key: key as never }),
        /DenoKvStore key must be/,
      );
    }
    assert.throws(
      () => new DenoKvStore(SHAPE, { watch: "no" as never }),
      /DenoKvStore watch must be true or false/,
    );
    assert.throws(
      () => new DenoKvStore(SHAPE, ["k"] as never),
      /DenoKvStore options must be an object/,
    );
  });

  it("the kv: a Promise (await forgotten), nothing, an object without watch", () => {
    assert.throws(
      () => new DenoKvStore(Promise.resolve(SHAPE) as never),
      /not a Promise: write new DenoKvStore\(await Deno\.openKv\(\)\)/,
    );
    assert.throws(
      () => new DenoKvStore(undefined as never),
      /DenoKvStore needs a Deno\.Kv, such as new DenoKvStore\(await Deno\.openKv\(\)\) \(got undefined\)/,
    );
    const noWatch = { get: SHAPE.get, set: SHAPE.set };
    assert.throws(
      () => new DenoKvStore(noWatch as never),
      /an object without watch/,
    );
    // Without watching, watch is not needed, and the store does not call it.
    const store = new DenoKvStore(noWatch as never, { watch: false });
    store.watch(() => assert.fail("changed"), (e) => assert.fail(String(e)));
  });

  it("the key given is copied: changing the array later changes nothing", () => {
    const key = ["a"];
    const store = new DenoKvStore(SHAPE, { key });
    key[0] = "b";
    assert.equal(store.description, 'deno-kv:["a"]');
  });
});

describe("DenoKvStore over a kv that always throws (a fault-injection object: no real kv fails on demand)", () => {
  it("serves the fallback; onError hears the read failure once and the watch failure once, as StoreErrors naming the key", async () => {
    let watchCalls = 0;
    let closed = false;
    const broken: DenoKvLike = {
      // At the end of the test it heals, so the cache's retries end too.
      get: () =>
        closed
          ? Promise.resolve({ value: null, versionstamp: null })
          : Promise.reject(new Error("database disk image is malformed")),
      set: () => Promise.reject(new Error("database disk image is malformed")),
      watch: () => {
        watchCalls++;
        // At the end of the test the kv "closes", so the watch's retries end.
        throw closed
          ? Object.assign(new Error("Bad resource ID"), { name: "BadResource" })
          : new Error("watch is not available");
      },
    };
    const errors: Error[] = [];
    const { mm, app } = appOver(new DenoKvStore(broken), {
      errors,
      fallback: true,
      ttlMs: 60_000,
    });
    for (let i = 0; i < 15; i++) {
      const res = await app.request("/");
      assert.equal(res.status, 503, "the fallback (on) is served");
      await sleep(100);
    }
    assert.ok(watchCalls >= 2, `the watch was retried (${watchCalls} tries)`);
    const reads = errors.filter((e) => e.message.includes("cannot read"));
    const watches = errors.filter((e) => e.message.includes("cannot watch"));
    assert.equal(reads.length, 1, errors.map((e) => e.message).join("\n"));
    assert.equal(watches.length, 1, errors.map((e) => e.message).join("\n"));
    assert.equal(errors.length, 2);
    assert.ok(
      storeError(
        "Error",
        'cannot read maintenance state deno-kv:["maintenance_mode_state"]',
        "malformed",
      )(reads[0]),
    );
    assert.ok(
      storeError(
        "Error",
        'cannot watch maintenance state deno-kv:["maintenance_mode_state"]',
        "watching again in 1 s",
      )(watches[0]),
    );
    await assert.rejects(
      mm.enable(),
      storeError("Error", "cannot write", "the state may be unchanged"),
    );
    closed = true;
    await sleep(1100); // the cache's retry, which now succeeds
  });
});

// ---------------------------------------------------------------------------------
// Over a real Deno.openKv(path): Deno only.

/**
 * Fault injection around a real kv (Deno KV cannot be made to fail on demand): while
 * `failing`, get, set and watch throw, and the watch streams it gave out break.
 */
class FaultyKv implements DenoKvLike {
  failing = false;
  #streams = new Set<ReadableStreamDefaultController<unknown>>();
  constructor(readonly kv: Kv) {}
  get(key: DenoKvKey): Promise<DenoKvEntryLike> {
    if (this.failing) return Promise.reject(new Error("database is locked"));
    return this.kv.get(key);
  }
  set(key: DenoKvKey, value: string): Promise<unknown> {
    if (this.failing) return Promise.reject(new Error("database is locked"));
    return this.kv.set(key, value);
  }
  watch(keys: readonly DenoKvKey[]): ReadableStream<DenoKvEntryLike[]> {
    if (this.failing) throw new Error("cannot watch: database is locked");
    const reader = this.kv.watch(keys).getReader();
    const streams = this.#streams;
    let controller: ReadableStreamDefaultController<unknown>;
    return new ReadableStream<DenoKvEntryLike[]>({
      start(c) {
        controller = c;
        streams.add(c);
      },
      async pull(c) {
        const r = await reader.read();
        try {
          if (r.done) c.close();
          else c.enqueue([...r.value]);
        } catch {
          // broken meanwhile
        }
      },
      cancel() {
        streams.delete(controller);
        return reader.cancel();
      },
    });
  }
  /** Starts failing: what is called throws, and each watch stream errors. */
  break(): void {
    this.failing = true;
    for (const c of this.#streams) c.error(new Error("watch stream broke"));
    this.#streams.clear();
  }
}

describe("DenoKvStore over a real Deno.openKv(path)", { skip: SKIP }, () => {
  let dir = "";
  let n = 0;
  const open: Kv[] = [];
  const servers: TestServer[] = [];
  /** A fresh path and two handles on it (as two instances of an app would have). */
  async function twoHandles(): Promise<[Kv, Kv, string]> {
    const path = `${dir}/kv-${n++}.sqlite`;
    const a = await deno!.openKv(path);
    const b = await deno!.openKv(path);
    open.push(a, b);
    return [a, b, path];
  }
  async function serve(app: Hono): Promise<string> {
    const s = await serveFetch(app.fetch);
    servers.push(s);
    return s.url + "/";
  }
  before(async () => {
    dir = await makeTempDir("maintenance-deno-kv-");
  });
  after(async () => {
    for (const s of servers) await s.stop();
    for (const kv of open) {
      try {
        kv.close();
      } catch {
        // closed by the test
      }
    }
    await removeDir(dir);
  });

  it("a missing key reads as null; a write is one string value, read back; a key of our own", async () => {
    const [kv] = await twoHandles();
    const store = new DenoKvStore(kv, { watch: false });
    assert.equal(await store.read(), null);
    await store.write('{"enabled":true}');
    assert.equal(await store.read(), '{"enabled":true}');
    assert.equal((await kv.get(KEY)).value, '{"enabled":true}');
    const other = new DenoKvStore(kv, { key: ["prod", 1], watch: false });
    await other.write("1");
    assert.equal((await kv.get(["prod", 1])).value, "1");
    assert.equal((await kv.get(KEY)).value, '{"enabled":true}');
    const mm = createMaintenance({ store: other, cache: { ttlMs: 0 } });
    assert.equal(await mm.isEnabled(), true);
    await mm.disable();
    assert.equal(await mm.isEnabled(), false);
  });

  it("a switch written through another handle is served through the watch in well under 100 ms (TTL 60 s: no polling); without the watch it is not", async () => {
    const [kv, kv2] = await twoHandles();
    const store = new CountingStore(kv);
    const { app } = appOver(store, { ttlMs: 60_000 });
    const url = await serve(app);
    // Another instance's store, over its own handle.
    const otherStore = new DenoKvStore(kv2, { watch: false });
    assert.equal(await fetch(url).then((r) => r.text()), "app");
    // From the start of the write (one kv.set through the other handle) to the first
    // answer that shows it; and from the write's end (committed) to that answer.
    const total: number[] = [];
    const afterCommit: number[] = [];
    for (let i = 0; i < 8; i++) {
      const on = i % 2 === 0;
      const t0 = performance.now();
      await otherStore.write(
        on ? `{"enabled":true,"message":"switch ${i}"}` : "0",
      );
      const committed = performance.now() - t0;
      const ms = await until(url, on ? 503 : 200, t0, 2000);
      total.push(ms);
      afterCommit.push(ms - committed);
    }
    const show = (xs: number[]) =>
      `${xs.map((t) => t.toFixed(1)).join(", ")} ms (median ${
        median(xs).toFixed(1)
      }, max ${Math.max(...xs).toFixed(1)})`;
    console.log(
      `deno-kv watch, TTL 60 s: write through another handle -> first 503/200: ${
        show(total)
      }; after the write returned: ${show(afterCommit)}`,
    );
    // The machine is shared: the median for the whole, every switch for the push.
    assert.ok(median(total) < 50, `write -> 503/200: ${show(total)}`);
    assert.ok(
      Math.max(...afterCommit) < 100,
      `after commit: ${show(afterCommit)}`,
    );
    assert.ok(store.pushes >= 8, `pushes: ${store.pushes}`);

    // The same without the watch: the in-process copy is served for the TTL.
    const [kv3, kv4] = await twoHandles();
    const { app: polled } = appOver(new DenoKvStore(kv3, { watch: false }));
    const polledUrl = await serve(polled);
    assert.equal((await fetch(polledUrl)).status, 200);
    await new DenoKvStore(kv4, { watch: false }).write("1");
    await sleep(500);
    assert.equal(
      (await fetch(polledUrl)).status,
      200,
      "no watch: the TTL holds",
    );
  });

  it("the 64 KiB cap (UTF-8 bytes), and values that are not a string: StoreErrors naming the key", async () => {
    const [kv] = await twoHandles();
    const store = new DenoKvStore(kv, { watch: false });
    await kv.set(KEY, "x".repeat(60_000));
    assert.equal((await store.read())?.length, 60_000);
    // 30,000 characters of 3 UTF-8 bytes: Deno KV takes it (UTF-16 inside), 90,000 in UTF-8.
    await kv.set(KEY, "€".repeat(30_000));
    await assert.rejects(
      store.read(),
      storeError(
        "EFBIG",
        'deno-kv:["maintenance_mode_state"]',
        "64 KiB",
        "90000 bytes",
      ),
    );
    for (
      const [value, what] of [
        [{ enabled: true }, "an object"],
        [1, "a number"],
        [true, "a boolean"],
        [new Uint8Array([49]), "a Uint8Array"],
        [["1"], "an array"],
      ] as const
    ) {
      await (kv as unknown as {
        set(k: DenoKvKey, v: unknown): Promise<unknown>;
      })
        .set(KEY, value);
      await assert.rejects(
        store.read(),
        storeError(
          "CORRUPT",
          `the value is ${what}, not the state's text`,
          '"1", "0"',
        ),
      );
    }
  });

  it("a value that is not a state, written elsewhere: the last state is served and onError hears it once per streak", async () => {
    const [kv, kv2] = await twoHandles();
    const errors: Error[] = [];
    const { mm, app } = appOver(new DenoKvStore(kv), { errors });
    const url = await serve(app);
    await mm.enable({ message: "upgrade" });
    assert.equal((await fetch(url)).status, 503);
    await kv2.set(KEY, "maybe");
    await sleep(150); // the watch tells the cache, which reads "maybe"
    for (let i = 0; i < 3; i++) {
      assert.equal((await fetch(url)).status, 503, "the last state is served");
    }
    await (kv2 as unknown as {
      set(k: DenoKvKey, v: unknown): Promise<unknown>;
    })
      .set(KEY, { enabled: false });
    await sleep(150);
    assert.equal((await fetch(url)).status, 503);
    assert.equal(errors.length, 1, errors.map((e) => e.message).join("\n"));
    assert.ok(
      storeError("CORRUPT", 'deno-kv:["maintenance_mode_state"]')(errors[0]),
    );
    // A good value ends the streak, at once (through the watch).
    const t0 = performance.now();
    await kv2.set(KEY, "0");
    await until(url, 200, t0, 500);
  });

  it("a kv whose methods throw (fault injection around the real kv): the last state is served, onError hears the read and the watch once each; the watch comes back", async () => {
    const [kv, kv2] = await twoHandles();
    const faulty = new FaultyKv(kv);
    const store = new CountingStore(faulty);
    const errors: Error[] = [];
    const { app } = appOver(store, { errors, ttlMs: 200 });
    const url = await serve(app);
    const other = new DenoKvStore(kv2, { watch: false });
    assert.equal((await fetch(url)).status, 200);
    let t0 = performance.now();
    await other.write('{"enabled":true,"message":"on"}');
    await until(url, 503, t0, 500);

    faulty.break(); // the watch stream errors; reads, writes and new watches throw
    const end = performance.now() + 2500;
    while (performance.now() < end) {
      assert.equal((await fetch(url)).status, 503, "the last state is served");
      await sleep(50);
    }
    const messages = errors.map((e) => e.message).join("\n");
    assert.equal(errors.length, 2, messages);
    assert.ok(
      storeError(
        "Error",
        "cannot read maintenance state deno-kv:",
        "database is locked",
      )(
        errors.find((e) => e.message.startsWith("cannot read")),
      ),
      messages,
    );
    assert.ok(
      storeError(
        "Error",
        "cannot watch maintenance state deno-kv:",
        "watch stream broke",
      )(
        errors.find((e) => e.message.startsWith("cannot watch")),
      ),
      messages,
    );

    // Healed: the watch is started again (its retry is due 3 s after the break) and,
    // as the store was read meanwhile, the cache reads again once it answers.
    faulty.failing = false;
    const pushes = store.pushes;
    const limit = performance.now() + 3000;
    while (store.pushes === pushes && performance.now() < limit) {
      await sleep(20);
    }
    assert.ok(store.pushes > pushes, "the watch came back");
    t0 = performance.now();
    await other.write("0");
    const ms = await until(url, 200, t0, 150);
    assert.ok(ms < 100, `served through the watch again in ${ms} ms`);
    assert.equal(errors.length, 2, "nothing more reported");
  });

  it("across processes (local SQLite backend): the watch does not fire for another process's write; the TTL poll serves it", async () => {
    const [kv, kv2, path] = await twoHandles();
    const store = new CountingStore(kv);
    const ttlMs = 1000;
    const { app } = appOver(store, { ttlMs });
    const url = await serve(app);
    assert.equal((await fetch(url)).status, 200);
    await sleep(100); // the watch has given its first answer
    const pushes = store.pushes;
    const child = await runProcess(deno!.execPath(), [
      "eval",
      "--unstable-kv",
      `const kv = await Deno.openKv(${JSON.stringify(path)});
       await kv.set(${
        JSON.stringify(KEY)
      }, '{"enabled":true,"message":"from another process"}');
       console.log(Date.now());
       kv.close();`,
    ], { env: cleanEnv(), timeoutMs: 30_000 });
    assert.equal(child.code, 0, child.stderr);
    const written = Number(child.stdout.trim());
    const ms = await until(url, 503, performance.now(), ttlMs + 1000);
    const sinceWrite = Date.now() - written;
    console.log(
      `deno-kv across processes: watch events ${store.pushes - pushes}; ` +
        `write -> first 503 ${sinceWrite} ms (TTL ${ttlMs} ms; ${
          ms.toFixed(0)
        } ms after the child exited)`,
    );
    assert.equal(
      store.pushes,
      pushes,
      "Deno's local KV backend now tells a watch of another process's writes: " +
        "update docs/deno_kv.md and this test",
    );
    assert.ok(sinceWrite <= ttlMs + 500, `served after ${sinceWrite} ms`);
    // The same write from this process, through the other handle, is pushed at once.
    const t0 = performance.now();
    await kv2.set(KEY, "0");
    assert.ok(await until(url, 200, t0, 500) < 100);
    assert.ok(store.pushes > pushes);
  });
});
