/**
 * The shared cache (a {@linkcode CacheStore}, e.g. over Redis) between the in-process
 * cache and the store: optional, so it lives beside the core, reached through
 * `@x/maintenance/redis` (`redisCache(client)`, or `sharedCache(store)` for a store of
 * your own). The core sees only the {@linkcode Layer} a shared cache carries.
 *
 * Its contract, after the core cache's: asked on every check (as Django does); a miss
 * reads the store and fills the key for `ttlMs`; a cache that fails is a miss, reported
 * once per streak. Each mechanism and the fault it handles:
 * - half of `timeoutMs` for the cache, the store the rest: a Redis that hangs;
 * - skipped for `RETRY_MS` after it fails, while the core keeps a local copy: a Redis
 *   down or hanging, so the store is not read per request;
 * - its streak ended only by the kind of operation that failed: a READONLY replica that
 *   reads but cannot write;
 * - a key whose delete failed is deleted before the cache is trusted again: a write
 *   while Redis was down;
 * - a second delete after a write: another process's read, in flight during the write,
 *   putting the old state back;
 * - a corrupt value is a miss: the store's state overwrites it.
 */
import type { CacheStore } from "../stores/_types.ts";
import {
  checkState,
  LAYER,
  type Layer,
  type LayerContext,
  RETRY_MS,
} from "./_cache.ts";
import { withTimeout } from "./_timeout.ts";

type CacheOp = "get" | "set" | "delete";

/**
 * A cache store of your own (Django's cache API shape: `get`, `set`, `delete`) as the
 * shared cache of `cache: { store }`, with the same policy as `redisCache`: asked on
 * every check, bounded, skipped for a second after it fails, a key whose delete failed
 * deleted before it is trusted again.
 *
 * @example
 * ```ts
 * import { createMaintenance, MemoryStore } from "@x/maintenance";
 * import { sharedCache } from "@x/maintenance/redis";
 * const map = new Map<string, string>();
 * const mm = createMaintenance({
 *   store: new MemoryStore(),
 *   cache: {
 *     ttlMs: 5000,
 *     store: sharedCache({
 *       get: (k) => Promise.resolve(map.get(k) ?? null),
 *       set: (k, v) => Promise.resolve(void map.set(k, v)),
 *       delete: (k) => Promise.resolve(void map.delete(k)),
 *     }),
 *   },
 * });
 * ```
 */
export function sharedCache(store: CacheStore): CacheStore {
  if (
    typeof store?.get !== "function" || typeof store.set !== "function" ||
    typeof store.delete !== "function"
  ) {
    throw new TypeError(
      "sharedCache takes a store with get(), set() and delete() (Django's cache API)",
    );
  }
  return Object.assign(Object.create(store), {
    [LAYER]: (context: LayerContext) => sharedLayer(store, context),
  });
}

/** The layer of one controller's cache over `store`. */
function sharedLayer(store: CacheStore, context: LayerContext): Layer {
  const { key, ttlMs, timeoutMs, now, report } = context;
  /** The operation whose failure streak is on. */
  let failed: CacheOp | undefined;
  /** While failing, when to ask again (ms since epoch). */
  let retryAt = -Infinity;
  /** A write could not delete the key: delete it before trusting the cache. */
  let deletePending = false;

  function fail(error: unknown, op: CacheOp): void {
    retryAt = now() + RETRY_MS;
    if (failed !== undefined) return;
    failed = op;
    report(error);
  }

  function ok(op: CacheOp): void {
    if (failed === op) failed = undefined;
  }

  /** A hit (text), a miss to fill after the store read (`null`), or `undefined`. */
  async function ask(ms: number): Promise<string | null | undefined> {
    let hit: string | null | undefined;
    try {
      if (deletePending) {
        // The key may hold a state older than this process's last write.
        await withTimeout(() => store.delete(key), ms, `cache delete ${key}`);
        deletePending = false;
        ok("delete");
        return null;
      }
      hit = await withTimeout(() => store.get(key), ms, `cache get ${key}`);
      ok("get");
    } catch (e) {
      fail(e, deletePending ? "delete" : "get");
      return undefined;
    }
    if (hit === null || hit === undefined) return null;
    try {
      checkState(hit, `cache key ${key}`);
      return hit;
    } catch (e) {
      fail(e, "get"); // a miss: the store's state overwrites it
      return null;
    }
  }

  function remove(): Promise<void> {
    return withTimeout(
      () => store.delete(key),
      timeoutMs,
      `cache delete ${key}`,
    )
      .then(() => {
        deletePending = false;
        ok("delete");
      }, (e) => {
        deletePending = true;
        fail(e, "delete");
      });
  }

  return {
    get failing() {
      return failed !== undefined;
    },
    async read(readStore, current) {
      const started = performance.now();
      let fill = false;
      // While failing, asked once per RETRY_MS.
      const t = now();
      if (failed === undefined || t >= retryAt) {
        if (failed !== undefined) retryAt = t + RETRY_MS;
        const hit = await ask(Math.max(1, Math.floor(timeoutMs / 2)));
        if (typeof hit === "string") return hit;
        fill = hit === null;
      }
      const left = timeoutMs - (performance.now() - started);
      const text = await readStore(Math.max(1, Math.floor(left)));
      // Not after a write through this process: the key it deleted would get the old state.
      if (fill && current()) {
        const ttl = ttlMs === Infinity
          ? null
          : Math.max(1, Math.ceil(ttlMs / 1000));
        Promise.resolve()
          .then(() => store.set(key, text ?? "0", ttl))
          .then(() => ok("set"), (e) => fail(e, "set"));
      }
      return text;
    },
    async written() {
      await remove();
      // Another process's store read, in flight during this write, may put the old
      // state back: delete once more after such a read has ended.
      context.later(remove, timeoutMs + 250);
    },
    clockBack() {
      retryAt = -Infinity;
    },
  };
}
