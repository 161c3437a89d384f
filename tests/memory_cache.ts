/**
 * A {@linkcode CacheStore} in process memory, with expiry: for tests and single-process apps.
 *
 * @module
 */
import type { CacheStore } from "../stores/_types.ts";

/**
 * Options for {@linkcode MemoryCache}.
 *
 * @example
 * ```ts
 * import type { MemoryCacheOptions } from "./memory_cache.ts";
 * let t = 0;
 * const options: MemoryCacheOptions = { now: () => t };
 * ```
 */
export interface MemoryCacheOptions {
  /** The clock, in milliseconds; default `Date.now`. Tests can pass a fake one. */
  now?: () => number;
}

/**
 * A cache in a `Map`, each entry with its own expiry, as Django's local-memory cache:
 * `ttlSeconds` of `null` keeps the value forever, `0` or less does not keep it at all.
 * Expired entries are dropped when read. Not shared between processes; use
 * `redisCache` for that.
 *
 * @example
 * ```ts
 * import { MemoryCache } from "./memory_cache.ts";
 * const cache = new MemoryCache();
 * await cache.set("maintenance_mode", "1", 60);
 * await cache.get("maintenance_mode"); // "1"
 * await cache.delete("maintenance_mode");
 * ```
 */
export class MemoryCache implements CacheStore {
  #entries = new Map<string, { value: string; expiresAt: number }>();
  #now: () => number;

  /** An empty cache; see {@linkcode MemoryCacheOptions}. */
  constructor(options: MemoryCacheOptions = {}) {
    const now = options.now ?? Date.now;
    if (typeof now !== "function") {
      throw new TypeError(
        "MemoryCache option now must be a function returning milliseconds",
      );
    }
    this.#now = now;
  }

  /** How many entries are held, expired ones not yet dropped included. */
  get size(): number {
    return this.#entries.size;
  }

  /** The value, or `null` when it is missing or expired. */
  get(key: string): Promise<string | null> {
    const entry = this.#entries.get(key);
    if (entry === undefined) return Promise.resolve(null);
    if (entry.expiresAt <= this.#now()) {
      this.#entries.delete(key);
      return Promise.resolve(null);
    }
    return Promise.resolve(entry.value);
  }

  /** Keeps `value` for `ttlSeconds` seconds (fractions allowed), or forever when `null`. */
  set(key: string, value: string, ttlSeconds: number | null): Promise<void> {
    if (
      ttlSeconds !== null &&
      (typeof ttlSeconds !== "number" || Number.isNaN(ttlSeconds))
    ) {
      return Promise.reject(
        new RangeError(
          `MemoryCache ttlSeconds must be a number of seconds or null (forever), ` +
            `got ${String(ttlSeconds)}`,
        ),
      );
    }
    if (ttlSeconds !== null && ttlSeconds <= 0) {
      this.#entries.delete(key);
      return Promise.resolve();
    }
    const expiresAt = ttlSeconds === null
      ? Infinity
      : this.#now() + ttlSeconds * 1000;
    this.#entries.set(key, { value, expiresAt });
    return Promise.resolve();
  }

  /** Removes the key. */
  delete(key: string): Promise<void> {
    this.#entries.delete(key);
    return Promise.resolve();
  }

  /** Removes every entry. */
  clear(): void {
    this.#entries.clear();
  }
}
