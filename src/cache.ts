/**
 * The read-through state cache: TTL in process or in a shared {@linkcode CacheStore},
 * single-flight reads, every read bounded by a timeout, the last known state served
 * when the store fails, and the error reported once per failure streak.
 *
 * @module
 */
import { StoreError } from "../stores/store_error.ts";
import type { CacheStore, StateStore } from "../stores/types.ts";
import { type MaintenanceState, parseState, StateParseError } from "./state.ts";
import { type Snapshot, toSnapshot } from "./snapshot.ts";
import { withTimeout } from "./timeout.ts";

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
  #retryAt = -Infinity;
  #cacheFailing = false;
  /** When a failing shared cache is asked again (ms since epoch); skipped until then. */
  #cacheRetryAt = -Infinity;
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
    this.#hotAllowed = options.now === Date.now && this.#cached &&
      this.#shared === undefined && this.#ttlMs !== 0;
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
    return now < this.#freshUntil ? this.#snap : undefined;
  }

  /** The state, reading through the cache and store as needed. Never rejects. */
  get(): Snapshot | Promise<Snapshot> {
    const now = this.#now();
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
    let useShared = false;
    if (shared && this.#cacheUsable()) {
      useShared = true;
      let hit: string | null | undefined;
      try {
        hit = await withTimeout(
          () => shared.get(this.#key),
          Math.max(1, Math.floor(this.#timeoutMs / 2)),
          `cache get ${this.#key}`,
        );
        this.#cacheFailing = false;
      } catch (e) {
        // A cache that is down is a miss: fall back to the store.
        useShared = false;
        this.#reportCache(e);
      }
      if (hit !== null && hit !== undefined) {
        checkState(hit, `cache key ${this.#key}`); // corrupt: an error, not a state
        return hit;
      }
    }
    const left = this.#timeoutMs - (performance.now() - started);
    const text = await withTimeout(
      (signal) => this.#store.read(signal),
      Math.max(1, Math.floor(left)),
      `read of maintenance state from ${this.#store.description ?? "store"}`,
    );
    // Corrupt text is an error: the last good state is kept.
    checkState(text, this.#store.description ?? "the state store");
    // A write through this process since the read began has deleted the key; putting
    // what this read saw back would serve the old state to every process for a TTL.
    if (shared && useShared && generation === this.#generation) {
      const ttl = this.#ttlMs === null
        ? null
        : Math.max(1, Math.ceil(this.#ttlMs / 1000));
      shared.set(this.#key, text ?? "0", ttl).then(
        () => {
          this.#cacheFailing = false;
        },
        (e) => this.#reportCache(e),
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
    if (!this.#failing) {
      this.#failing = true;
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

  #reportCache(error: unknown): void {
    this.#cacheRetryAt = this.#now() + RETRY_MS;
    if (this.#cacheFailing) return;
    this.#cacheFailing = true;
    this.#report(error);
  }

  /**
   * Records a state this process just wrote: it is served at once, and a shared cache
   * entry is deleted so every process reads the store next.
   */
  async written(text: string): Promise<void> {
    this.#generation++;
    this.#inflight = undefined;
    this.#failing = false;
    this.#accept(text, this.#now());
    if (this.#shared) {
      await withTimeout(
        () => this.#shared!.delete(this.#key),
        this.#timeoutMs,
        `cache delete ${this.#key}`,
      ).catch((e) => this.#reportCache(e));
      // Another process whose store read was in flight during this write may put the
      // old state back into the shared cache; delete once more after such a read ends.
      const shared = this.#shared;
      const key = this.#key;
      unrefTimer(setTimeout(() => {
        shared.delete(key).catch((e) => this.#reportCache(e));
      }, this.#timeoutMs + 250));
    }
  }

  /** Forgets the in-process copy, so the next check reads through. */
  invalidate(): void {
    this.#freshUntil = -Infinity;
    this.#cool();
  }
}
