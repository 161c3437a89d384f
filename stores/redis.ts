/**
 * A cache shared by every instance of an app, in Redis: `redisCache(client)` over a
 * node-redis (v4 and later) or ioredis client you have connected. A switch through any
 * instance (or the CLI with `MAINTENANCE_REDIS_URL`) deletes the shared key, so every
 * instance reads the new state at its next check; the others are Redis hits, not store
 * reads. This module imports no Redis package.
 *
 * Entries are written in an envelope of their own with an expiry inside,
 * `{"x-maintenance":1,"exp":<ms since epoch>,"v":"<state>"}`, and live at most one hour
 * (also with `ttlMs: null`); anything else under the key, or an envelope past its
 * expiry, is a miss, and the store decides. Still, whoever can write to this Redis can
 * write an envelope: write access to the cache is write access to maintenance.
 *
 * @example
 * ```ts
 * import { createClient } from "redis";
 * import { createMaintenance, FileStore } from "@x/maintenance";
 * import { redisCache } from "@x/maintenance/redis";
 *
 * const client = await createClient({ url: "redis://127.0.0.1:6379" }).connect();
 * const mm = createMaintenance({
 *   store: new FileStore("maintenance_mode_state.txt"),
 *   cache: { store: redisCache(client), ttlMs: 5000 },
 * });
 * ```
 *
 * @module
 */
import { checkOptions } from "../src/_options.ts";
import { sharedCache } from "../src/_shared.ts";
import { StoreError } from "./_store_error.ts";
import type { CacheStore } from "./_types.ts";

/**
 * The part of a Redis client that {@linkcode redisCache} uses. A node-redis client (v4
 * and later: `set(key, value, { EX })`) and an ioredis one (`set(key, value, "EX", n)`)
 * both fit; ioredis is told apart by its `status` and the lack of node-redis's `isOpen`.
 *
 * @example
 * ```ts
 * import { redisCache, type RedisLikeClient } from "@x/maintenance/redis";
 * declare const redis: RedisLikeClient; // new Redis("redis://127.0.0.1:6379") from ioredis
 * const cache = redisCache(redis);
 * ```
 */
export interface RedisLikeClient {
  /** `GET key`: the value, or `null`. */
  get(key: string): Promise<unknown>;
  /** `SET key value`; called with an expiry in the client's own style. */
  set(key: string, value: string): Promise<unknown>;
  /** `DEL key`. */
  del(key: string): Promise<unknown>;
  /** node-redis: whether the client is connected. */
  readonly isOpen?: unknown;
  /** ioredis: the connection status (`"ready"`, ...). */
  readonly status?: unknown;
}

/**
 * Options for {@linkcode redisCache}.
 *
 * @example
 * ```ts
 * import {
 *   redisCache,
 *   type RedisCacheOptions,
 *   type RedisLikeClient,
 * } from "@x/maintenance/redis";
 * declare const client: RedisLikeClient;
 * const options: RedisCacheOptions = { prefix: "myapp:" };
 * const cache = redisCache(client, options);
 * ```
 */
export interface RedisCacheOptions {
  /** Put before every key, such as `"myapp:"`, for apps sharing one Redis; default none. */
  prefix?: string;
}

/** The longest an entry lives, in seconds, whatever the TTL asked (`null` too). */
const MAX_TTL_S = 3600;
/** Clock skew between servers allowed for an envelope's expiry, in ms. */
const SKEW_MS = 60_000;

/**
 * The state text in an envelope of ours that has not expired, else `null` (a miss):
 * a value without it (written by someone else), an expired one, or one whose expiry is
 * further away than any entry of ours lives.
 */
function unwrap(reply: string, now: number): string | null {
  let e: { "x-maintenance"?: unknown; exp?: unknown; v?: unknown } | null;
  try {
    e = JSON.parse(reply);
  } catch {
    return null;
  }
  return e !== null && typeof e === "object" && e["x-maintenance"] === 1 &&
      typeof e.exp === "number" && typeof e.v === "string" && now < e.exp &&
      e.exp <= now + MAX_TTL_S * 1000 + SKEW_MS
    ? e.v
    : null;
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
  let fix = detail;
  if (
    code === "ClientClosedError" ||
    /client is closed|connection is closed/i.test(detail)
  ) {
    fix =
      "the Redis client is not connected; call `await client.connect()` first " +
      "(node-redis), or check the connection";
  } else if (/^(ECONNREFUSED|ENOTFOUND|ETIMEDOUT)$/.test(code)) {
    fix =
      `cannot reach Redis (${code}); check the Redis URL and that the server is ` +
      "running";
  } else if (/NOAUTH|WRONGPASS/.test(detail)) {
    fix =
      `Redis refused the credentials (${detail}); check the password in the ` +
      "Redis URL";
  }
  return new StoreError(`cannot ${op} Redis cache key "${key}": ${fix}`, code, {
    cause: e,
  });
}

/**
 * A shared cache over a connected node-redis or ioredis client. Each value is stored in
 * an envelope with its expiry, `{"x-maintenance":1,"exp":<ms>,"v":"<state>"}`, and with
 * Redis's own expiry as well (whole seconds use `EX`, fractions `PX`); `get` answers
 * `null` (a miss: the store decides) for anything else under the key and for an expired
 * envelope, so a value planted without expiry cannot stand in for the store. No entry
 * lives longer than one hour: `ttlSeconds` of `null` (the cache's `ttlMs: null`) or
 * more than 3600 means one hour, after which one store read fills it again. `0` or less
 * deletes the key. Errors are `StoreError`s naming the key. Pass it as `cache.store` to
 * `createMaintenance`.
 *
 * @example
 * ```ts
 * import { createClient } from "redis";
 * import { createMaintenance, FileStore } from "@x/maintenance";
 * import { redisCache } from "@x/maintenance/redis";
 *
 * const client = await createClient({ url: "redis://127.0.0.1:6379" }).connect();
 * const mm = createMaintenance({
 *   store: new FileStore("maintenance_mode_state.txt"),
 *   cache: { store: redisCache(client, { prefix: "myapp:" }), ttlMs: 5000 },
 * });
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
  checkOptions(options, "redisCache", ["prefix"]);
  const prefix = options.prefix ?? "";
  if (typeof prefix !== "string") {
    throw new TypeError(
      'redisCache option prefix must be a string, such as "myapp:"',
    );
  }
  const ioredis = typeof client.isOpen !== "boolean" &&
    typeof client.status === "string";
  const loose = client as unknown as {
    set(key: string, value: string, ...expiry: unknown[]): Promise<unknown>;
  };

  async function call(
    op: string,
    key: string,
    run: (k: string) => Promise<unknown>,
  ): Promise<unknown> {
    try {
      return await run(prefix + key);
    } catch (e) {
      throw explain(op, prefix + key, e);
    }
  }

  return sharedCache({
    async get(key) {
      const reply = await call("get", key, (k) => client.get(k));
      if (reply === null || reply === undefined) return null;
      return unwrap(
        reply instanceof Uint8Array
          ? new TextDecoder().decode(reply)
          : String(reply),
        Date.now(),
      );
    },
    async set(key, value, ttlSeconds) {
      if (
        ttlSeconds !== null &&
        (typeof ttlSeconds !== "number" || Number.isNaN(ttlSeconds))
      ) {
        throw new RangeError(
          "redisCache ttlSeconds must be a number of seconds or null (forever), " +
            `got ${String(ttlSeconds)}`,
        );
      }
      await call("set", key, (k) => {
        if (ttlSeconds !== null && ttlSeconds <= 0) return client.del(k);
        const ttl = Math.min(ttlSeconds ?? MAX_TTL_S, MAX_TTL_S);
        const whole = Number.isInteger(ttl);
        const mode = whole ? "EX" : "PX";
        const amount = whole ? ttl : Math.ceil(ttl * 1000);
        const envelope = JSON.stringify({
          "x-maintenance": 1,
          exp: Date.now() + (whole ? amount * 1000 : amount),
          v: value,
        });
        // node-redis v4 to v6 take { EX } / { PX }; ioredis takes "EX", n.
        return ioredis
          ? loose.set(k, envelope, mode, amount)
          : loose.set(k, envelope, { [mode]: amount });
      });
    },
    async delete(key) {
      await call("delete", key, (k) => client.del(k));
    },
  });
}

export { sharedCache };
