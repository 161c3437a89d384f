/**
 * The read-through state cache: TTL in process or in a shared {@linkcode CacheStore},
 * single-flight reads, every read bounded by a timeout, the last known state served
 * when the store fails, and the error reported once per failure streak.
 *
 * @module
 */
import { StoreError } from "../stores/_store_error.ts";
import type { CacheStore, StateStore } from "../stores/_types.ts";
import {
  type MaintenanceState,
  parseState,
  StateParseError,
} from "./_state.ts";
import { type Snapshot, toSnapshot } from "./_snapshot.ts";
import { TimeoutError, withTimeout } from "./_timeout.ts";
import { onCloudflareWorkers } from "./_on_workers.ts";

/**
 * How the state is cached, as the seed's MAINTENANCE_MODE_CACHE settings.
 *
 * @example
 * ```ts
 * import type { CacheOptions } from "@x/maintenance";
 * const cache: CacheOptions = { ttlMs: 1000 };
 * ```
 */
export interface CacheOptions {
  /** Cache key in a shared `store` (MAINTENANCE_MODE_CACHE_KEY). Default `maintenance_mode_state`. */
  key?: string;
  /**
   * How long a read state is trusted, in ms (MAINTENANCE_MODE_CACHE_TIMEOUT). `null` caches
   * forever, as the seed's default: then only writes through this process (or, with a
   * shared `store`, through any process) are seen. Default 1000.
   */
  ttlMs?: number | null;
  /** A cache shared by processes (e.g. `redisCache(client)`); default: in this process. */
  store?: CacheStore;
}

/**
 * What the read-through cache needs to know.
 *
 * @example
 * ```ts
 * import { MemoryStore, OFF_STATE, StateCache, type StateCacheOptions } from "@x/maintenance";
 * const options: StateCacheOptions = {
 *   store: new MemoryStore(),
 *   cache: { ttlMs: 1000 },
 *   timeoutMs: 1000,
 *   fallback: OFF_STATE,
 *   onError: (e) => console.error(e.message),
 *   now: Date.now,
 * };
 * const cache = new StateCache(options);
 * ```
 */
export interface StateCacheOptions {
  /** Where the state lives. */
  store: StateStore;
  /** Cache settings; `false`/undefined reads the store for every check (single-flight). */
  cache?: CacheOptions | false;
  /** Bound on each store or cache read, ms. */
  timeoutMs: number;
  /** State served before any successful read, when the store fails. */
  fallback: MaintenanceState;
  /** Told once per failure streak. */
  onError: (error: Error) => void;
  /** Clock, for tests. */
  now: () => number;
}

/**
 * Throws when `text` is not a state, with a message that names where it came from, so
 * `onError` says which file, object or cache key to fix.
 */
function checkState(text: string | null, where: string): void {
  try {
    parseState(text);
  } catch (e) {
    if (!(e instanceof StateParseError)) throw e;
    throw new StoreError(
      `${where}: ${e.message}; until it is fixed the last good state (or the ` +
        "fallback) is served; write a valid state (maintenance on / maintenance off)",
      "CORRUPT",
      { cause: e },
    );
  }
}

/** How long a failing store is left alone before the next try, ms. */
const RETRY_MS = 1000;

/**
 * How many {@linkcode StateCache.hot} answers may go by without reading the clock. The
 * expiry timer normally ends a hot state on time; this bounds how long it can outlive
 * its TTL when a busy event loop runs the timer late (at 1M requests/s, 2 ms).
 */
const HOT_CHECK_EVERY = 2048;

type TimerId = ReturnType<typeof setTimeout>;

/** Lets the process exit while the timer is pending (Deno, Bun, Node). */
function unrefTimer(id: TimerId): void {
  const deno = (globalThis as { Deno?: { unrefTimer?(id: number): void } })
    .Deno;
  if (typeof id === "number") deno?.unrefTimer?.(id);
  else (id as { unref?(): void }).unref?.();
}

/**
 * Read-through cache over a state store. {@linkcode StateCache.hot} is the hot path: a
 * fresh in-process state costs a property read and a counter, no clock read;
 * {@linkcode StateCache.peek} costs a clock read and a comparison.
 *
 * @example
 * ```ts
 * import { MemoryStore, StateCache } from "@x/maintenance";
 * const cache = new StateCache({
 *   store: new MemoryStore("1"),
 *   cache: { ttlMs: 1000 },
 *   timeoutMs: 1000,
 *   fallback: { enabled: false },
 *   onError: console.error,
 *   now: Date.now,
 * });
 * (await cache.get()).enabled; // true
 * ```
 */
export class StateCache {
  #store: StateStore;
  #shared: CacheStore | undefined;
  #key: string;
  #ttlMs: number | null;
  #cached: boolean;
  #timeoutMs: number;
  #onError: (error: Error) => void;
  #now: () => number;

  #snap: Snapshot | undefined;
  #text: string | null | undefined;
  #fallback: Snapshot;
  /** Until when `#snap` is trusted without a read (ms since epoch). */
  #freshUntil = -Infinity;
  #inflight: Promise<Snapshot> | undefined;
  #failing = false;
  /** The store's failure streak has been reported; only a good read of the store itself
   * (or a write to it) ends that streak: a shared-cache hit says nothing of the store. */
  #storeReported = false;
  #retryAt = -Infinity;
  #cacheFailing = false;
  /** Which shared-cache operation failed: only its success ends the failure streak. */
  #cacheFailedOp: "get" | "set" | "delete" | undefined;
  /** When a failing shared cache is asked again (ms since epoch); skipped until then. */
  #cacheRetryAt = -Infinity;
  /** A write's delete of the shared key failed: the key may hold an older state, so it
   * is deleted (and missed) before the shared cache is trusted again. */
  #deletePending = false;
  /** A store read that was given up at its timeout and has not settled yet. */
  #hungRead: Promise<unknown> | undefined;
  /** The latest clock reading, to notice the clock stepping back. */
  #lastNow = -Infinity;
  /** Bumped by every write, so a read that began before a write cannot overwrite it. */
  #generation = 0;
  /** `#snap` while it is fresh, trusted without a clock read; see `hot()`. */
  #hot: Snapshot | undefined;
  /** `hot()` answers left before it reads the clock again. */
  #hotLeft = 0;
  /** Ends `#hot` when the TTL is up. */
  #hotTimer: TimerId | undefined;
  /** Only with the real clock: a test clock moves without timers. */
  #hotAllowed: boolean;

  /** Creates the cache; see {@linkcode StateCacheOptions}. */
  constructor(options: StateCacheOptions) {
    this.#store = options.store;
    const cache = options.cache || undefined;
    this.#cached = cache !== undefined;
    this.#shared = cache?.store;
    this.#key = cache?.key ?? "maintenance_mode_state";
    this.#ttlMs = cache === undefined
      ? 0
      : cache.ttlMs === undefined
      ? 1000
      : cache.ttlMs;
    this.#timeoutMs = options.timeoutMs;
    this.#onError = options.onError;
    this.#now = options.now;
    this.#fallback = toSnapshot(options.fallback);
    // The clock-free hot path relies on a timer to end freshness. Cloudflare Workers
    // drop a request's timers when it ends, so there freshness would outlive the TTL
    // (by up to HOT_CHECK_EVERY requests): read the clock instead.
    this.#hotAllowed = options.now === Date.now && this.#cached &&
      this.#shared === undefined && this.#ttlMs !== 0 && !onCloudflareWorkers();
  }

  /**
   * The state when the in-process copy is fresh, without reading the clock; else
   * `undefined` (call {@linkcode StateCache.peek} or {@linkcode StateCache.get}).
   * A timer ends the fresh period when the TTL is up, and every few thousand calls
   * the clock is read as well, so a late timer cannot stretch it by more than that.
   * Always `undefined` with a test clock, a shared cache, or no cache.
   *
   * @example
   * ```ts
   * import { MemoryStore, StateCache } from "@x/maintenance";
   * const cache = new StateCache({
   *   store: new MemoryStore(), cache: { ttlMs: 1000 }, timeoutMs: 1000,
   *   fallback: { enabled: false }, onError: console.error, now: Date.now,
   * });
   * await cache.get();
   * cache.hot()?.enabled; // false
   * ```
   */
  current(): Snapshot | undefined {
    return this.hot() ?? this.peek(this.#now());
  }

  /** The state while the in-process copy is fresh, without a clock read. */
  hot(): Snapshot | undefined {
    if (this.#hot === undefined || --this.#hotLeft > 0) return this.#hot;
    if (this.#now() < this.#freshUntil) {
      this.#hotLeft = HOT_CHECK_EVERY;
      return this.#hot;
    }
    this.#cool();
    return undefined;
  }

  #cool(): void {
    this.#hot = undefined;
    if (this.#hotTimer !== undefined) {
      clearTimeout(this.#hotTimer);
      this.#hotTimer = undefined;
    }
  }

  #heat(snap: Snapshot, now: number): void {
    this.#cool();
    if (!this.#hotAllowed) return;
    this.#hot = snap;
    this.#hotLeft = HOT_CHECK_EVERY;
    if (this.#ttlMs === null) return; // forever: only a write or invalidate() ends it
    const timer = setTimeout(() => {
      if (this.#hotTimer === timer) {
        this.#hotTimer = undefined;
        this.#hot = undefined;
      }
    }, Math.max(0, this.#freshUntil - now));
    unrefTimer(timer);
    this.#hotTimer = timer;
  }

  /**
   * The state without waiting, when the in-process copy is fresh; else `undefined`
   * (call {@linkcode StateCache.get}).
   */
  peek(now: number): Snapshot | undefined {
    this.#checkClock(now);
    return now < this.#freshUntil ? this.#snap : undefined;
  }

  /**
   * A wall clock that steps back (NTP, a resumed VM) would keep a state "fresh", or a
   * retry waiting, for as long as the step: start those periods again instead.
   */
  #checkClock(now: number): void {
    if (now < this.#lastNow) {
      if (this.#freshUntil !== Infinity) this.#freshUntil = -Infinity;
      this.#retryAt = -Infinity;
      this.#cacheRetryAt = -Infinity;
      this.#cool();
    }
    this.#lastNow = now;
  }

  /** The state, reading through the cache and store as needed. Never rejects. */
  get(): Snapshot | Promise<Snapshot> {
    const now = this.#now();
    this.#checkClock(now);
    if (now < this.#freshUntil && this.#snap) return this.#snap;
    // While the store is failing, serve the last known state at once and retry in
    // the background, so a dead or hanging store does not stall requests.
    if (this.#failing && this.#snap) {
      if (now >= this.#retryAt) {
        this.#retryAt = now + RETRY_MS;
        this.#refresh();
      }
      return this.#snap;
    }
    return this.#refresh();
  }

  /** The last state known, or the fallback. */
  get last(): Snapshot {
    return this.#snap ?? this.#fallback;
  }

  #refresh(): Promise<Snapshot> {
    if (this.#inflight) return this.#inflight;
    const generation = this.#generation;
    const p = this.#load(generation).then(
      (text) => {
        if (generation === this.#generation) this.#accept(text, this.#now());
        this.#recovered();
        return this.last;
      },
      (error: unknown) => {
        this.#fail(error);
        return this.last;
      },
    ).finally(() => {
      if (this.#inflight === p) this.#inflight = undefined;
    });
    this.#inflight = p;
    return p;
  }

  /**
   * Whether to ask the shared cache now: always while it works; while it fails, once per
   * RETRY_MS (the other checks go straight to the store).
   */
  #cacheUsable(): boolean {
    if (!this.#cacheFailing) return true;
    const now = this.#now();
    if (now < this.#cacheRetryAt) return false;
    this.#cacheRetryAt = now + RETRY_MS;
    return true;
  }

  async #load(generation: number): Promise<string | null> {
    const shared = this.#shared;
    // timeoutMs bounds the whole check, cache and store together: a shared cache that
    // hangs gets at most half of it, and the store what is left.
    const started = performance.now();
    const cacheMs = Math.max(1, Math.floor(this.#timeoutMs / 2));
    let useShared = false;
    if (shared && this.#cacheUsable()) {
      useShared = true;
      let hit: string | null | undefined;
      try {
        if (this.#deletePending) {
          // A write here could not delete the key: until it is gone, it may hold an
          // older state; delete it now, and read the store (a miss).
          await withTimeout(
            () => shared.delete(this.#key),
            cacheMs,
            `cache delete ${this.#key}`,
          );
          this.#deletePending = false;
          this.#cacheOk("delete");
        } else {
          hit = await withTimeout(
            () => shared.get(this.#key),
            cacheMs,
            `cache get ${this.#key}`,
          );
          this.#cacheOk("get");
        }
      } catch (e) {
        // A cache that is down is a miss: fall back to the store.
        useShared = false;
        this.#reportCache(e, this.#deletePending ? "delete" : "get");
      }
      if (hit !== null && hit !== undefined) {
        try {
          checkState(hit, `cache key ${this.#key}`);
          return hit;
        } catch (e) {
          // A corrupt value is a miss: the store's state overwrites it below.
          this.#reportCache(e, "get");
        }
      }
    }
    const left = this.#timeoutMs - (performance.now() - started);
    const what = `read of maintenance state from ${
      this.#store.description ?? "store"
    }`;
    if (this.#hungRead !== undefined) {
      // The last read was given up at its timeout and still has not finished (a hung
      // mount, a dead connection): another would only pile up behind it.
      throw new StoreError(
        `${what} is still waiting on the previous read, given up after ` +
          `${this.#timeoutMs} ms; check that the store is reachable`,
        "TIMEOUT",
      );
    }
    let read: Promise<string | null> | undefined;
    let text: string | null;
    try {
      text = await withTimeout(
        (signal) => read = Promise.resolve(this.#store.read(signal)),
        Math.max(1, Math.floor(left)),
        what,
      );
    } catch (e) {
      const hung = read;
      if (e instanceof TimeoutError && hung !== undefined) {
        this.#hungRead = hung;
        const settled = () => {
          if (this.#hungRead === hung) this.#hungRead = undefined;
        };
        hung.then(settled, settled);
      }
      throw e;
    }
    // Corrupt text is an error: the last good state is kept.
    checkState(text, this.#store.description ?? "the state store");
    this.#storeReported = false; // the store answered: its failure streak is over
    // A write through this process since the read began has deleted the key; putting
    // what this read saw back would serve the old state to every process for a TTL.
    if (shared && useShared && generation === this.#generation) {
      const ttl = this.#ttlMs === null
        ? null
        : Math.max(1, Math.ceil(this.#ttlMs / 1000));
      Promise.resolve()
        .then(() => shared.set(this.#key, text ?? "0", ttl))
        .then(
          () => this.#cacheOk("set"),
          (e) => this.#reportCache(e, "set"),
        );
    }
    return text;
  }

  #accept(text: string | null, now: number): void {
    if (text !== this.#text || !this.#snap) {
      this.#snap = toSnapshot(parseState(text));
      this.#text = text;
    }
    this.#freshUntil = !this.#cached
      ? -Infinity // no cache: every check reads the store
      : this.#shared && !this.#cacheFailing
      ? -Infinity // shared cache: every check asks it (as Django does)
      : this.#shared
      ? now + Math.min(this.#ttlMs ?? RETRY_MS, RETRY_MS) // it is down: keep a copy here
      : this.#ttlMs === null
      ? Infinity
      : now + this.#ttlMs;
    this.#heat(this.#snap, now);
  }

  #recovered(): void {
    this.#failing = false;
  }

  #fail(error: unknown): void {
    const now = this.#now();
    if (!this.#snap) this.#snap = this.#fallback;
    // Serve what we have for a while; the next check after that tries again.
    this.#retryAt = now + RETRY_MS;
    this.#cool();
    if (this.#cached && !this.#shared) {
      this.#freshUntil = now + Math.min(RETRY_MS, this.#ttlMs ?? RETRY_MS);
    }
    this.#failing = true;
    // Once per streak: a shared-cache hit in between (other instances filling the key)
    // does not end it, or an instance whose store is down would report the same outage
    // again each time the shared key expires.
    if (!this.#storeReported) {
      this.#storeReported = true;
      this.#report(error);
    }
  }

  #report(error: unknown): void {
    try {
      this.#onError(error instanceof Error ? error : new Error(String(error)));
    } catch {
      // an onError that throws must not break a request
    }
  }

  #reportCache(error: unknown, op: "get" | "set" | "delete"): void {
    this.#cacheRetryAt = this.#now() + RETRY_MS;
    if (this.#cacheFailing) return;
    this.#cacheFailing = true;
    this.#cacheFailedOp = op;
    this.#report(error);
  }

  /** A shared-cache operation worked: that ends a failure streak of the same kind (a
   * cache that reads but cannot write is still failing). */
  #cacheOk(op: "get" | "set" | "delete"): void {
    if (this.#cacheFailing && this.#cacheFailedOp !== op) return;
    this.#cacheFailing = false;
    this.#cacheFailedOp = undefined;
  }

  /**
   * Records a state this process just wrote: it is served at once, and a shared cache
   * entry is deleted so every process reads the store next.
   */
  async written(text: string): Promise<void> {
    this.#generation++;
    this.#inflight = undefined;
    this.#failing = false;
    this.#storeReported = false; // the store took a write: it works
    this.#accept(text, this.#now());
    if (this.#shared) {
      const shared = this.#shared;
      const key = this.#key;
      const remove = () =>
        withTimeout(
          () => shared.delete(key),
          this.#timeoutMs,
          `cache delete ${key}`,
        ).then(
          () => {
            this.#deletePending = false;
            this.#cacheOk("delete");
          },
          (e) => {
            // Until a delete goes through, the key may hold the old state: this process
            // deletes it before it trusts the shared cache again.
            this.#deletePending = true;
            this.#reportCache(e, "delete");
          },
        );
      await remove();
      // Another process whose store read was in flight during this write may put the
      // old state back into the shared cache; delete once more after such a read ends.
      unrefTimer(setTimeout(remove, this.#timeoutMs + 250));
    }
  }

  /** Forgets the in-process copy, so the next check reads through. */
  invalidate(): void {
    this.#freshUntil = -Infinity;
    this.#cool();
  }
}
