/**
 * A {@linkcode CacheStore} over a Redis client you already have: node-redis (v4 and
 * later) or ioredis. Only the client's shape is used; this module imports no Redis
 * package.
 *
 * @module
 */
import { StoreError } from "./_store_error.ts";
import type { CacheStore } from "./_types.ts";

/**
 * The part of a node-redis (`redis` / `@redis/client` v4 and later) client this adapter
 * uses: `set` takes an options object.
 *
 * @example
 * ```ts
 * import type { NodeRedisLikeClient } from "@x/maintenance";
 * const fake: NodeRedisLikeClient = {
 *   get: () => Promise.resolve(null),
 *   set: () => Promise.resolve("OK"),
 *   del: () => Promise.resolve(1),
 * };
 * ```
 */
export interface NodeRedisLikeClient {
  /** `GET key`: the value, or `null`. */
  get(key: string): Promise<unknown>;
  /** `SET key value [EX s | PX ms]`. */
  set(
    key: string,
    value: string,
    options?: { EX?: number; PX?: number },
  ): Promise<unknown>;
  /** `DEL key`. */
  del(key: string): Promise<unknown>;
}

/**
 * The part of an ioredis client this adapter uses: `set` takes the expiry as arguments
 * (`"EX", seconds` or `"PX", milliseconds`).
 *
 * @example
 * ```ts
 * import type { IoRedisLikeClient } from "@x/maintenance";
 * const fake: IoRedisLikeClient = {
 *   status: "ready",
 *   get: () => Promise.resolve(null),
 *   set: () => Promise.resolve("OK"),
 *   del: () => Promise.resolve(1),
 * };
 * ```
 */
export interface IoRedisLikeClient {
  /** ioredis's connection status (`"ready"`, ...); its presence marks the ioredis style. */
  readonly status: string;
  /** `GET key`: the value, or `null`. */
  get(key: string): Promise<unknown>;
  /** `SET key value`. */
  set(key: string, value: string): Promise<unknown>;
  /** `SET key value EX seconds` / `SET key value PX milliseconds`. */
  set(
    key: string,
    value: string,
    mode: "EX" | "PX",
    ttl: number,
  ): Promise<unknown>;
  /** `DEL key`. */
  del(key: string): Promise<unknown>;
}

/**
 * A node-redis or an ioredis client (or anything shaped like one).
 *
 * @example
 * ```ts
 * import type { RedisLikeClient } from "@x/maintenance";
 * function useCache(client: RedisLikeClient): void {}
 * ```
 */
export type RedisLikeClient = NodeRedisLikeClient | IoRedisLikeClient;

/**
 * Options for {@linkcode redisCache}.
 *
 * @example
 * ```ts
 * import type { RedisCacheOptions } from "@x/maintenance";
 * const options: RedisCacheOptions = { prefix: "myapp:", style: "ioredis" };
 * ```
 */
export interface RedisCacheOptions {
  /** Prepended to every key, such as `"myapp:"`; default none. */
  prefix?: string;
  /**
   * How the client's `set` takes an expiry. Default: detected: a client with a string
   * `status` and no `isOpen` is ioredis, anything else node-redis.
   */
  style?: "node-redis" | "ioredis";
}

function detectStyle(client: RedisLikeClient): "node-redis" | "ioredis" {
  const c = client as { status?: unknown; isOpen?: unknown };
  if ("isOpen" in client && typeof c.isOpen === "boolean") return "node-redis";
  return typeof c.status === "string" ? "ioredis" : "node-redis";
}

const decoder = new TextDecoder();

function toText(reply: unknown): string | null {
  if (reply === null || reply === undefined) return null;
  if (typeof reply === "string") return reply;
  if (reply instanceof Uint8Array) return decoder.decode(reply);
  return String(reply);
}

function explain(op: string, key: string, e: unknown): StoreError {
  const err = (e ?? {}) as {
    code?: unknown;
    name?: unknown;
    message?: unknown;
  };
  const code = typeof err.code === "string"
    ? err.code
    : typeof err.name === "string" && err.name !== "Error"
    ? err.name
    : "REDIS";
  const detail = String(err.message ?? e);
  let fix: string;
  if (
    code === "ClientClosedError" ||
    /client is closed|connection is closed/i.test(detail)
  ) {
    fix =
      "the Redis client is not connected; call `await client.connect()` first " +
      "(node-redis), or check the connection";
  } else if (
    code === "ECONNREFUSED" || code === "ENOTFOUND" || code === "ETIMEDOUT"
  ) {
    fix =
      `cannot reach Redis (${code}); check the Redis URL and that the server is running`;
  } else if (/NOAUTH|WRONGPASS/.test(detail)) {
    fix =
      `Redis refused the credentials (${detail}); check the password in the Redis URL`;
  } else {
    fix = detail;
  }
  return new StoreError(`cannot ${op} Redis cache key "${key}": ${fix}`, code, {
    cause: e,
  });
}

/**
 * A {@linkcode CacheStore} over a connected node-redis or ioredis client, as Django's
 * Redis cache: `ttlSeconds` of `null` stores without expiry, `0` or less deletes the key,
 * whole seconds use `EX`, fractions `PX`. Errors are `StoreError`s naming the key.
 *
 * @example
 * ```ts
 * import { createClient } from "redis";
 * import { createMaintenance, FileStore, redisCache } from "@x/maintenance";
 *
 * const client = await createClient({ url: "redis://127.0.0.1:6379" }).connect();
 * const mm = createMaintenance({
 *   store: new FileStore("maintenance_mode_state.txt"),
 *   cache: { store: redisCache(client, { prefix: "myapp:" }), ttlMs: 5000 },
 * });
 * ```
 * @example ioredis
 * ```ts
 * import { type IoRedisLikeClient, redisCache } from "@x/maintenance";
 * declare const redis: IoRedisLikeClient; // new Redis("redis://127.0.0.1:6379") from ioredis
 * const cache = redisCache(redis);
 * await cache.set("maintenance_mode", "1", 60);
 * ```
 */
export function redisCache(
  client: RedisLikeClient,
  options: RedisCacheOptions = {},
): CacheStore {
  if (
    client === null || typeof client !== "object" ||
    typeof client.get !== "function" ||
    typeof client.set !== "function" || typeof client.del !== "function"
  ) {
    throw new TypeError(
      "redisCache needs a connected Redis client with get/set/del, such as " +
        "await createClient({ url }).connect() from node-redis, or new Redis(url) from ioredis",
    );
  }
  const prefix = options.prefix ?? "";
  if (typeof prefix !== "string") {
    throw new TypeError(
      'redisCache option prefix must be a string, such as "myapp:"',
    );
  }
  const style = options.style ?? detectStyle(client);
  if (style !== "node-redis" && style !== "ioredis") {
    throw new TypeError(
      `redisCache option style must be "node-redis" or "ioredis", got ${
        String(style)
      }`,
    );
  }

  function setWithTtl(
    key: string,
    value: string,
    ttlSeconds: number | null,
  ): Promise<unknown> {
    if (ttlSeconds === null) return client.set(key, value);
    const whole = Number.isInteger(ttlSeconds);
    const amount = whole
      ? ttlSeconds
      : Math.max(1, Math.ceil(ttlSeconds * 1000));
    if (style === "ioredis") {
      return (client as IoRedisLikeClient).set(
        key,
        value,
        whole ? "EX" : "PX",
        amount,
      );
    }
    // { EX } / { PX } work from node-redis v4 to v6 (v5+ also take { expiration }).
    return (client as NodeRedisLikeClient).set(
      key,
      value,
      whole ? { EX: amount } : { PX: amount },
    );
  }

  return {
    async get(key: string): Promise<string | null> {
      const k = prefix + key;
      try {
        return toText(await client.get(k));
      } catch (e) {
        throw explain("get", k, e);
      }
    },
    async set(
      key: string,
      value: string,
      ttlSeconds: number | null,
    ): Promise<void> {
      const k = prefix + key;
      if (
        ttlSeconds !== null &&
        (typeof ttlSeconds !== "number" || Number.isNaN(ttlSeconds))
      ) {
        throw new RangeError(
          `redisCache ttlSeconds must be a number of seconds or null (forever), ` +
            `got ${String(ttlSeconds)}`,
        );
      }
      try {
        if (ttlSeconds !== null && ttlSeconds <= 0) await client.del(k);
        else if (ttlSeconds === Infinity) await client.set(k, value);
        else await setWithTtl(k, value, ttlSeconds);
      } catch (e) {
        throw explain("set", k, e);
      }
    },
    async delete(key: string): Promise<void> {
      const k = prefix + key;
      try {
        await client.del(k);
      } catch (e) {
        throw explain("delete", k, e);
      }
    },
  };
}
