/**
 * The read-through state cache: TTL in process or in a shared {@linkcode CacheStore},
 * single-flight reads, every read bounded by a timeout, the last known state served
 * when the store fails, and the error reported once per failure streak.
 *
 * @module
 */
import type { CacheStore, StateStore } from "../stores/types.ts";
import { type MaintenanceState, parseState } from "./state.ts";
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

/** What the read-through cache needs to know. */
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

/** How long a failing store is left alone before the next try, ms. */
const RETRY_MS = 1000;

/**
 * Read-through cache over a state store. {@linkcode StateCache.peek} is the hot path:
 * a fresh in-process state costs a clock read and a comparison.
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
  /** Bumped by every write, so a read that began before a write cannot overwrite it. */
  #generation = 0;

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
    const p = this.#load().then(
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

  async #load(): Promise<string | null> {
    const shared = this.#shared;
    if (shared) {
      let hit: string | null | undefined;
      try {
        hit = await withTimeout(
          () => shared.get(this.#key),
          this.#timeoutMs,
          `cache get ${this.#key}`,
        );
        this.#cacheFailing = false;
      } catch (e) {
        // A cache that is down is a miss: fall back to the store.
        this.#reportCache(e);
      }
      if (hit !== null && hit !== undefined) {
        parseState(hit); // a corrupt cache entry is an error, not a state
        return hit;
      }
    }
    const text = await withTimeout(
      (signal) => this.#store.read(signal),
      this.#timeoutMs,
      `read of maintenance state from ${this.#store.description ?? "store"}`,
    );
    parseState(text); // throws on corrupt text: keep the last good state
    if (shared) {
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
    this.#freshUntil = this.#shared || !this.#cached
      ? -Infinity // shared cache: every check asks it (as Django does); no cache: the store
      : this.#ttlMs === null
      ? Infinity
      : now + this.#ttlMs;
  }

  #recovered(): void {
    this.#failing = false;
  }

  #fail(error: unknown): void {
    const now = this.#now();
    if (!this.#snap) this.#snap = this.#fallback;
    // Serve what we have for a while; the next check after that tries again.
    this.#retryAt = now + RETRY_MS;
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
    }
  }

  /** Forgets the in-process copy, so the next check reads through. */
  invalidate(): void {
    this.#freshUntil = -Infinity;
  }
}
