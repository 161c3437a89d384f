/**
 * The two storage interfaces: where the state lives, and where it is cached.
 * Nothing here knows about Hono.
 *
 * @module
 */

/**
 * Where the maintenance state lives: a file, an S3 object, memory, or your own.
 *
 * @example
 * ```ts
 * import type { StateStore } from "@x/maintenance";
 * class KvStore implements StateStore {
 *   #value: string | null = null;
 *   read(): Promise<string | null> { return Promise.resolve(this.#value); }
 *   write(text: string): Promise<void> { this.#value = text; return Promise.resolve(); }
 * }
 * ```
 */
export interface StateStore {
  /** The raw text stored, or `null` when there is none (which means off). */
  read(signal?: AbortSignal): Promise<string | null>;
  /** Replaces the stored text as one atomic step. */
  write(text: string, signal?: AbortSignal): Promise<void>;
  /** A short human description for messages, such as the file path or `s3://bucket/key`. */
  readonly description?: string;
  /**
   * Optional, for a store that can watch its state (Deno KV): calls `changed` whenever
   * the state may have changed, by any writer, and `onError` when watching fails. The
   * cache then reads the state at once instead of at the end of its TTL.
   */
  watch?(changed: () => void, onError: (error: unknown) => void): void;
}

/**
 * A cache shared by processes, in the shape of Django's cache API
 * (`redisCache` from `@x/maintenance/redis` makes one over Redis).
 *
 * @example
 * ```ts
 * import type { CacheStore } from "@x/maintenance";
 * const map = new Map<string, string>();
 * const cache: CacheStore = {
 *   get: (k) => Promise.resolve(map.get(k) ?? null),
 *   set: (k, v) => { map.set(k, v); return Promise.resolve(); },
 *   delete: (k) => { map.delete(k); return Promise.resolve(); },
 * };
 * ```
 */
export interface CacheStore {
  /** The cached text, or `null`/`undefined` on a miss. */
  get(key: string): Promise<string | null | undefined>;
  /** Stores text for `ttlSeconds` seconds, or forever when `null`. */
  set(key: string, value: string, ttlSeconds: number | null): Promise<void>;
  /** Removes the key. */
  delete(key: string): Promise<void>;
}
