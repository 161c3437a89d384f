/**
 * `createMaintenance({ onChange })` and the push hooks (issue 15 items 1, 3, 5): called
 * on each instance when the state it serves changes (a write through it, a TTL poll,
 * a store's `watch`, a layer's `reread`), not for the first read nor for a re-read of
 * the same text; never throws into a request (errors and rejections go to
 * `onError`), and a slow one never holds a request up.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { Hono } from "hono";
import { createMaintenance, type Maintenance } from "../src/maintenance.ts";
import { LAYER, type Layer, type LayerContext } from "../src/_cache.ts";
import type { MaintenanceState } from "../src/_state.ts";
import { FileStore } from "../stores/file.ts";
import { MemoryStore } from "../stores/memory.ts";
import type { CacheStore, StateStore } from "../stores/_types.ts";
import { serveFetch, sleep, useTempDirs } from "./helpers.ts";

const dirs = useTempDirs("maintenance-on-change-");

type Change = [state: MaintenanceState, previous: MaintenanceState];

/** Resolves once `cond()` holds; rejects after `timeoutMs`. */
async function waitFor(
  cond: () => boolean,
  what: string,
  timeoutMs = 2000,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

/** A clock the test moves by hand, so TTL polls happen exactly when it says. */
function clock(start = Date.parse("2030-01-01T00:00:00Z")) {
  const c = { t: start, now: () => c.t };
  return c;
}

/** A controller over `store` with a hand-moved clock and TTL 1 s, recording changes. */
function watched(
  store: StateStore,
  extra: { onError?: (e: Error) => void; ttlMs?: number } = {},
): {
  mm: Maintenance;
  changes: Change[];
  errors: Error[];
  clock: ReturnType<typeof clock>;
} {
  const changes: Change[] = [];
  const errors: Error[] = [];
  const c = clock();
  const mm = createMaintenance({
    store,
    cache: { ttlMs: extra.ttlMs ?? 1000 },
    now: c.now,
    onError: extra.onError ?? ((e) => errors.push(e)),
    onChange: (state, previous) => {
      changes.push([state, previous]);
    },
  });
  return { mm, changes, errors, clock: c };
}

/** A real Hono app behind the controller's middleware, answering `app`. */
function appFor(mm: Maintenance): Hono {
  const app = new Hono();
  app.use(mm.middleware());
  app.all("*", (c) => c.text("app"));
  return app;
}

describe("onChange: writes through this controller", () => {
  it("is called after enable and disable, with the state and the previous one", async () => {
    const { mm, changes } = watched(new MemoryStore());
    assert.equal(await mm.isEnabled(), false); // the first read
    await mm.enable({ message: "Back soon", by: "alice", note: "n" });
    await waitFor(() => changes.length === 1, "the change on enable");
    const [state, previous] = changes[0];
    assert.equal(state.enabled, true);
    assert.equal(state.message, "Back soon");
    // The operator's side: onChange sees who and why.
    assert.equal(state.updatedBy, "alice");
    assert.equal(state.note, "n");
    assert.equal(previous.enabled, false);
    await mm.disable();
    await waitFor(() => changes.length === 2, "the change on disable");
    assert.equal(changes[1][0].enabled, false);
    assert.equal(changes[1][1].message, "Back soon");
  });

  it("is not awaited: enable() resolves before onChange runs", async () => {
    const order: string[] = [];
    const mm = createMaintenance({
      store: new MemoryStore(),
      onChange: () => {
        order.push("onChange");
      },
    });
    await mm.isEnabled();
    await mm.enable();
    order.push("enable resolved");
    await waitFor(() => order.length === 2, "onChange");
    assert.deepEqual(order, ["enable resolved", "onChange"]);
  });

  // Regression (a bug these tests found, fixed in d2b5fe8): a write through a controller that has
  // not read the state yet (a script: createMaintenance + enable) changes the state
  // it serves, but onChange is not called (#accept skips it when there is no
  // previous snapshot). "Not called for the first read" — this is a write.
  it("is called for a write through a controller that has not read yet", async () => {
    const { mm, changes } = watched(new MemoryStore());
    await mm.enable({ message: "first thing" });
    await sleep(30);
    assert.equal(changes.length, 1, "onChange after the write");
    assert.equal(changes[0][0].message, "first thing");
  });
});

describe("onChange: another controller sharing the store (TTL poll)", () => {
  async function twoControllers(
    makeStore: () => Promise<StateStore>,
  ): Promise<void> {
    const a = watched(await makeStore());
    const other = createMaintenance({ store: await makeStore(), cache: false });
    assert.equal(await a.mm.isEnabled(), false); // a's first read: no change
    await other.enable({ message: "from elsewhere" });
    assert.equal(await a.mm.isEnabled(), false, "a still serves its copy");
    await sleep(20);
    assert.equal(a.changes.length, 0, "nothing changed for a yet");
    a.clock.t += 1000; // the TTL ends: the next check polls
    assert.equal(await a.mm.isEnabled(), true);
    await waitFor(() => a.changes.length === 1, "a's change after its poll");
    assert.equal(a.changes[0][0].message, "from elsewhere");
    assert.equal(a.changes[0][1].enabled, false);
    await other.disable();
    a.clock.t += 1000;
    assert.equal(await a.mm.isEnabled(), false);
    await waitFor(() => a.changes.length === 2, "a's second change");
    assert.equal(a.changes[1][0].enabled, false);
    assert.equal(a.changes[1][1].message, "from elsewhere");
  }

  it("over one MemoryStore", async () => {
    const store = new MemoryStore();
    await twoControllers(() => Promise.resolve(store));
  });

  it("over one real file (two FileStores on the same path)", async () => {
    const path = `${await dirs.fresh()}/state.txt`;
    await twoControllers(() => Promise.resolve(new FileStore(path)));
  });

  it("with the real clock and ttlMs 50 (the hot path), over one real file", async () => {
    const path = `${await dirs.fresh()}/state.txt`;
    const changes: Change[] = [];
    const a = createMaintenance({
      store: new FileStore(path),
      cache: { ttlMs: 50 },
      onChange: (s, p) => {
        changes.push([s, p]);
      },
    });
    const app = appFor(a);
    assert.equal((await app.request("/")).status, 200);
    const t0 = performance.now();
    await createMaintenance({ store: new FileStore(path), cache: false })
      .enable({ message: "polled" });
    while ((await app.request("/")).status !== 503) {
      assert.ok(performance.now() - t0 < 2000, "not served within 2 s");
      await sleep(5);
    }
    await waitFor(() => changes.length === 1, "onChange after the poll");
    assert.equal(changes[0][0].message, "polled");
    assert.equal(changes[0][1].enabled, false);
    await sleep(120); // more polls of the same text
    await app.request("/");
    assert.equal(changes.length, 1);
  });

  it("is not called for the first read, even of an ON state", async () => {
    const store = new MemoryStore();
    await createMaintenance({ store }).enable({ message: "on already" });
    const a = watched(store);
    assert.equal(await a.mm.isEnabled(), true);
    await sleep(30);
    assert.deepEqual(a.changes, []);
  });

  it("is not called when a re-read finds the same text", async () => {
    const store = new MemoryStore();
    await createMaintenance({ store }).enable({ message: "steady" });
    const a = watched(store);
    for (let i = 0; i < 5; i++) {
      assert.equal(await a.mm.isEnabled(), true);
      a.clock.t += 1000; // every check polls
    }
    assert.ok(store.reads >= 5, `the store was re-read (${store.reads})`);
    await sleep(30);
    assert.deepEqual(a.changes, []);
  });

  it("is not called when a store that failed answers again with the same text", async () => {
    // FAULT INJECTOR (a MemoryStore cannot fail on cue): reads fail while `down`.
    class FlakyStore extends MemoryStore {
      down = false;
      override read(): Promise<string | null> {
        return this.down
          ? Promise.reject(new Error("injected read failure"))
          : super.read();
      }
    }
    const store = new FlakyStore();
    await createMaintenance({ store }).enable({ message: "steady" });
    const a = watched(store);
    assert.equal(await a.mm.isEnabled(), true);
    store.down = true;
    a.clock.t += 1000;
    assert.equal(await a.mm.isEnabled(), true, "the last good state");
    store.down = false;
    a.clock.t += 5000;
    await a.mm.isEnabled(); // starts the try
    await sleep(10);
    const reads = store.reads;
    assert.equal(await a.mm.isEnabled(), true);
    assert.equal(store.reads, reads, "the good read is in");
    await sleep(30);
    assert.equal(a.errors.length, 1, "the failure was reported");
    assert.deepEqual(a.changes, []);
  });

  // Regression (a bug these tests found, fixed in d2b5fe8): when the store fails at start-up the
  // fallback (off) is served; the first good read then finds "off" too, and onChange
  // is called with (off, off) although the state served did not change.
  it("is not called when the first good read after the fallback finds the same state", async () => {
    class DownAtStart extends MemoryStore {
      down = true;
      override read(): Promise<string | null> {
        return this.down
          ? Promise.reject(new Error("injected read failure"))
          : super.read();
      }
    }
    const store = new DownAtStart(); // empty: off
    const a = watched(store);
    assert.equal(await a.mm.isEnabled(), false); // the fallback
    store.down = false;
    a.clock.t += 5000;
    await a.mm.isEnabled(); // starts the try
    await sleep(10);
    assert.equal(await a.mm.isEnabled(), false); // the store's own off
    assert.ok(store.reads >= 1, "the store was read after it came back");
    await sleep(30);
    assert.deepEqual(a.changes, [], "off → off is no change");
  });

  it("is called when the first good read after the fallback differs from it", async () => {
    class DownAtStart extends MemoryStore {
      down = true;
      override read(): Promise<string | null> {
        return this.down
          ? Promise.reject(new Error("injected read failure"))
          : super.read();
      }
    }
    const store = new DownAtStart();
    await store.write('{"enabled":true,"message":"on"}');
    const a = watched(store);
    assert.equal(await a.mm.isEnabled(), false); // the fallback (off)
    store.down = false;
    a.clock.t += 5000;
    // The check that finds a try due starts it and is served the last state at once.
    await a.mm.isEnabled();
    await sleep(10);
    assert.equal(await a.mm.isEnabled(), true);
    await waitFor(() => a.changes.length === 1, "the change from the fallback");
    assert.equal(a.changes[0][0].message, "on");
    assert.equal(a.changes[0][1].enabled, false);
  });
});

describe("onChange never breaks or holds up a request", () => {
  async function changedOnNextRequest(
    onChange: (s: MaintenanceState, p: MaintenanceState) => unknown,
  ) {
    const store = new MemoryStore();
    const errors: Error[] = [];
    const c = clock();
    const mm = createMaintenance({
      store,
      cache: { ttlMs: 1000 },
      now: c.now,
      onError: (e) => errors.push(e),
      onChange,
    });
    const app = appFor(mm);
    assert.equal((await app.request("/")).status, 200); // the first read
    await createMaintenance({ store, cache: false }).enable();
    c.t += 1000; // the next request polls and finds the change
    return { app, errors, mm };
  }

  it("a throwing onChange goes to onError; the request gets its answer", async () => {
    const boom = new Error("onChange threw");
    let called = 0;
    const { app, errors } = await changedOnNextRequest(() => {
      called++;
      throw boom;
    });
    const res = await app.request("/");
    assert.equal(res.status, 503);
    await res.body?.cancel();
    await waitFor(() => errors.length === 1, "onError");
    assert.equal(called, 1);
    assert.equal(errors[0], boom);
    assert.equal((await app.request("/")).status, 503);
  });

  it("a rejecting onChange goes to onError; the request gets its answer", async () => {
    const { app, errors } = await changedOnNextRequest(() =>
      Promise.reject(new Error("purge failed"))
    );
    const res = await app.request("/");
    assert.equal(res.status, 503);
    await res.body?.cancel();
    await waitFor(() => errors.length === 1, "onError");
    assert.match(errors[0].message, /purge failed/);
  });

  it("an onChange rejecting with a non-Error reaches onError as an Error", async () => {
    const { app, errors } = await changedOnNextRequest(() =>
      Promise.reject("a string")
    );
    await (await app.request("/")).body?.cancel();
    await waitFor(() => errors.length === 1, "onError");
    assert.ok(errors[0] instanceof Error);
    assert.match(errors[0].message, /a string/);
  });

  it("an onChange that never settles does not delay the request (real server)", async () => {
    let called = false;
    const { app } = await changedOnNextRequest(() => {
      called = true;
      return new Promise(() => {}); // never settles
    });
    const server = await serveFetch(app.fetch);
    try {
      const t0 = performance.now();
      const res = await fetch(`${server.url}/`);
      await res.body?.cancel();
      const ms = performance.now() - t0;
      assert.equal(res.status, 503);
      assert.ok(ms < 500, `the request took ${ms.toFixed(0)} ms`);
      await waitFor(() => called, "onChange");
      const again = await fetch(`${server.url}/`);
      await again.body?.cancel();
      assert.equal(again.status, 503);
    } finally {
      await server.stop();
    }
  });

  it("a 2-second onChange does not delay the request that triggered the read (real server)", async () => {
    let settled: Promise<void> | undefined;
    const { app } = await changedOnNextRequest(() => {
      settled = sleep(2000);
      return settled;
    });
    const server = await serveFetch(app.fetch);
    try {
      const t0 = performance.now();
      const res = await fetch(`${server.url}/`);
      await res.body?.cancel();
      const ms = performance.now() - t0;
      assert.equal(res.status, 503);
      assert.ok(ms < 500, `the request took ${ms.toFixed(0)} ms`);
      await waitFor(() => settled !== undefined, "onChange");
      // More requests while it runs: as fast.
      const t1 = performance.now();
      for (let i = 0; i < 5; i++) {
        const r = await fetch(`${server.url}/`);
        await r.body?.cancel();
        assert.equal(r.status, 503);
      }
      assert.ok(performance.now() - t1 < 1000);
      await settled;
    } finally {
      await server.stop();
    }
  });

  it("an onError that throws too does not break the request", async () => {
    const store = new MemoryStore();
    const c = clock();
    const mm = createMaintenance({
      store,
      now: c.now,
      onError: () => {
        throw new Error("onError threw");
      },
      onChange: () => {
        throw new Error("onChange threw");
      },
    });
    const app = appFor(mm);
    assert.equal((await app.request("/")).status, 200);
    await createMaintenance({ store, cache: false }).enable();
    c.t += 1000;
    const res = await app.request("/");
    assert.equal(res.status, 503);
    await sleep(30);
    assert.equal((await app.request("/")).status, 503);
  });

  it("onChange must be a function", () => {
    assert.throws(
      () =>
        createMaintenance({
          store: new MemoryStore(),
          onChange: "log" as unknown as () => void,
        }),
      /onChange must be a function/,
    );
  });
});

/**
 * One state shared by several handles, as a Deno KV database is by its clients; each
 * handle is a store of its own ({@linkcode WatchingStore}).
 */
class Hub {
  text: string | null = null;
  readonly handles = new Set<WatchingStore>();
}

/**
 * A real in-memory store that can watch (not a mock: the state lives in the hub, and
 * every write through one handle tells the others' watchers, a microtask later, as
 * `kv.watch()` does). `readDelays` makes the next reads slow (the text is taken when
 * the read starts), to race a change against a read in flight.
 */
class WatchingStore implements StateStore {
  readonly description = "watching memory store";
  reads = 0;
  watchCalls = 0;
  readDelays: number[] = [];
  #changed: (() => void) | undefined;
  #onError: ((e: unknown) => void) | undefined;
  constructor(readonly hub: Hub) {
    hub.handles.add(this);
  }
  async read(): Promise<string | null> {
    this.reads++;
    const text = this.hub.text;
    const delay = this.readDelays.shift();
    if (delay !== undefined) await sleep(delay);
    return text;
  }
  /** Tell this handle's own watcher of its own writes too, as `kv.watch()` does. */
  seesOwnWrites = false;
  write(text: string): Promise<void> {
    this.hub.text = text;
    for (const h of this.hub.handles) {
      if (h !== this || this.seesOwnWrites) {
        queueMicrotask(() => h.#changed?.());
      }
    }
    return Promise.resolve();
  }
  watch(changed: () => void, onError: (e: unknown) => void): void {
    this.watchCalls++;
    this.#changed = changed;
    this.#onError = onError;
  }
  /** The watch broke (a dropped connection): tells the cache's onError. */
  breakWatch(error: Error): void {
    this.#onError?.(error);
  }
}

describe("push: a store that watches (watch(changed, onError))", () => {
  function fleet(ttlMs = 60_000) {
    const hub = new Hub();
    const writerStore = new WatchingStore(hub);
    const readerStore = new WatchingStore(hub);
    const changes: Change[] = [];
    const errors: Error[] = [];
    // The real clock: the in-process hot path is on, as in production.
    const reader = createMaintenance({
      store: readerStore,
      cache: { ttlMs },
      onChange: (s, p) => {
        changes.push([s, p]);
      },
      onError: (e) => errors.push(e),
    });
    const writer = createMaintenance({ store: writerStore, cache: false });
    return { hub, writerStore, readerStore, reader, writer, changes, errors };
  }

  it("watch is called once, when the controller is made", async () => {
    const { readerStore, reader } = fleet();
    assert.equal(readerStore.watchCalls, 1);
    const app = appFor(reader);
    for (let i = 0; i < 3; i++) await app.request("/");
    await reader.isEnabled();
    assert.equal(readerStore.watchCalls, 1);
  });

  it("with ttlMs 60000, another handle's write is served within a few ms; onChange fires", async () => {
    const { readerStore, reader, writer, changes } = fleet();
    const app = appFor(reader);
    assert.equal((await app.request("/")).status, 200);
    assert.equal(readerStore.reads, 1);
    const t0 = performance.now();
    await writer.enable({ message: "pushed" });
    while ((await app.request("/")).status !== 503) {
      assert.ok(performance.now() - t0 < 1000, "not served within 1 s");
      await sleep(1);
    }
    const ms = performance.now() - t0;
    assert.ok(ms < 100, `served after ${ms.toFixed(1)} ms`);
    await waitFor(() => changes.length === 1, "onChange on the push");
    assert.equal(changes[0][0].message, "pushed");
    assert.equal(changes[0][1].enabled, false);
    // Between changes the TTL holds: no store read per request.
    const reads = readerStore.reads;
    for (let i = 0; i < 50; i++) await app.request("/");
    assert.equal(readerStore.reads, reads, "no read per request");
    // And back off, as fast.
    const t1 = performance.now();
    await writer.disable();
    while (await reader.isEnabled()) {
      assert.ok(performance.now() - t1 < 1000, "off not served within 1 s");
      await sleep(1);
    }
    await waitFor(() => changes.length === 2, "onChange on the push off");
  });

  it("without the watch (the same store minus watch) the change waits for the TTL", async () => {
    // The control: proves the test above measures the push, not a poll.
    const hub = new Hub();
    const writerStore = new WatchingStore(hub);
    const readerStore = new WatchingStore(hub);
    const plain: StateStore = {
      read: () => readerStore.read(),
      write: (t) => readerStore.write(t),
    };
    const reader = createMaintenance({
      store: plain,
      cache: { ttlMs: 60_000 },
    });
    assert.equal(await reader.isEnabled(), false);
    await createMaintenance({ store: writerStore, cache: false }).enable();
    await sleep(50);
    assert.equal(await reader.isEnabled(), false);
  });

  it("a change during a read in flight supersedes it: the newer state wins", async () => {
    const { readerStore, reader, writer } = fleet();
    // The first read is slow and takes the old text; the re-read is fast.
    readerStore.readDelays = [150, 5];
    const first = reader.isEnabled();
    await sleep(10);
    await writer.enable({ message: "newer" });
    await first;
    await sleep(200);
    assert.equal(await reader.isEnabled(), true, "the old read did not win");
    assert.equal((await reader.getState()).message, "newer");
  });

  it("a watch that fails reports to onError; requests go on", async () => {
    const { readerStore, reader, errors } = fleet();
    const app = appFor(reader);
    assert.equal((await app.request("/")).status, 200);
    readerStore.breakWatch(new Error("watch stream dropped"));
    assert.equal(errors.length, 1);
    assert.match(errors[0].message, /watch stream dropped/);
    assert.equal((await app.request("/")).status, 200);
  });

  it("a watch that also sees the controller's own write: onChange once, not twice", async () => {
    const hub = new Hub();
    const store = new WatchingStore(hub);
    store.seesOwnWrites = true;
    const changes: Change[] = [];
    const mm = createMaintenance({
      store,
      cache: { ttlMs: 60_000 },
      onChange: (s, p) => {
        changes.push([s, p]);
      },
    });
    assert.equal(await mm.isEnabled(), false);
    await mm.enable({ message: "once" });
    await sleep(50);
    assert.equal(store.reads, 2, "the watch made it read again");
    assert.equal(changes.length, 1);
    assert.equal(changes[0][0].message, "once");
  });

  it("a push that finds the same text does not call onChange", async () => {
    const { hub, writerStore, reader, changes } = fleet();
    await writerStore.write('{"enabled":true}');
    await reader.isEnabled();
    await sleep(20);
    const before = changes.length;
    // The same text again (a watch fires on any write, even an equal one).
    await writerStore.write(hub.text!);
    await sleep(30);
    assert.equal(await reader.isEnabled(), true);
    assert.equal(changes.length, before);
  });
});

/**
 * A pushing shared cache of our own (not a mock: a tiny pub/sub in process, as the
 * Redis layer does over a channel): every controller using it gets a Layer that
 * `pushes`; a write through one (`written(text)`) calls every other's `reread()`.
 */
function pushingCache(): {
  cache: CacheStore;
  asks: () => number;
  written: string[];
} {
  const contexts = new Set<LayerContext>();
  let asks = 0;
  const written: string[] = [];
  const cache: CacheStore & { [LAYER]: (ctx: LayerContext) => Layer } = {
    get: () => Promise.resolve(null),
    set: () => Promise.resolve(),
    delete: () => Promise.resolve(),
    [LAYER](ctx: LayerContext): Layer {
      contexts.add(ctx);
      return {
        failing: false,
        pushes: true,
        read(readStore) {
          asks++;
          return readStore(ctx.timeoutMs);
        },
        written(text: string) {
          written.push(text);
          for (const other of contexts) if (other !== ctx) other.reread();
          return Promise.resolve();
        },
        clockBack() {},
      };
    },
  };
  return { cache, asks: () => asks, written };
}

describe("push: a shared-cache layer that pushes (Layer.pushes, LayerContext.reread)", () => {
  it("the layer is asked once per TTL, not per check; reread serves a write at once", async () => {
    const store = new MemoryStore();
    const shared = pushingCache();
    const changes: Change[] = [];
    const reader = createMaintenance({
      store,
      cache: { ttlMs: 60_000, store: shared.cache },
      onChange: (s, p) => {
        changes.push([s, p]);
      },
    });
    const writer = createMaintenance({
      store,
      cache: { ttlMs: 60_000, store: shared.cache },
    });
    const app = appFor(reader);
    for (let i = 0; i < 100; i++) {
      assert.equal((await app.request("/")).status, 200);
    }
    assert.equal(shared.asks(), 1, "one ask for 100 checks");
    const t0 = performance.now();
    await writer.enable({ message: "pushed" });
    assert.equal(shared.written.length, 1);
    assert.equal(JSON.parse(shared.written[0]).message, "pushed");
    while ((await app.request("/")).status !== 503) {
      assert.ok(performance.now() - t0 < 1000, "not served within 1 s");
      await sleep(1);
    }
    assert.ok(performance.now() - t0 < 100);
    await waitFor(() => changes.length === 1, "onChange on the push");
    assert.equal(changes[0][0].message, "pushed");
    const asks = shared.asks();
    for (let i = 0; i < 100; i++) await app.request("/");
    assert.equal(shared.asks(), asks, "no ask per check after the push");
  });

  it("written(text) gets the exact text the store took", async () => {
    const path = `${await dirs.fresh()}/state.txt`;
    await writeFile(path, "");
    const shared = pushingCache();
    const mm = createMaintenance({
      store: new FileStore(path),
      cache: { store: shared.cache },
    });
    await mm.enable({ readOnly: true, by: "ops" });
    assert.equal(shared.written[0], await readFile(path, "utf8"));
  });
});
