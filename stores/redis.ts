/**
 * A cache shared by every instance of an app, in Redis: `redisCache(client)` over a
 * node-redis (v4 and later) or ioredis client you have connected. A switch through any
 * instance (or the CLI with `MAINTENANCE_REDIS_URL`) deletes the shared key, so every
 * instance reads the new state at its next check; the others are Redis hits, not store
 * reads. With push, `redisCache(client, { subscriber: client.duplicate() })`, the
 * switch is also published: every instance keeps the state in process for the TTL (no
 * Redis round trip per request) and serves a switch at once. This module imports no
 * Redis package.
 *
 * Entries are written in an envelope of their own with an expiry inside,
 * `{"x-maintenance":1,"exp":<ms since epoch>,"v":"<state>"}`, and live at most one hour
 * (also with `ttlMs: null`); anything else under the key, or an envelope past its
 * expiry, is a miss, and the store decides; a read fetches at most 200 KiB (GETRANGE,
 * where the client has it). Still, whoever can write to this Redis can write an
 * envelope: write access to the cache is write access to maintenance.
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
import { RETRY_MS } from "../src/_cache.ts";
import { checkOptions } from "../src/_options.ts";
import {
  type PushBus,
  pushChannel,
  type PushHandlers,
  sharedCache,
  withPush,
} from "../src/_shared.ts";
import { withTimeout } from "../src/_timeout.ts";
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
  /** node-redis: `GETRANGE key start end`, a bounded read (used when present). */
  getRange?(key: string, start: number, end: number): Promise<unknown>;
  /** ioredis: `GETRANGE key start end`, a bounded read (used when present). */
  getrange?(key: string, start: number, end: number): Promise<unknown>;
  /** `SET key value`; called with an expiry in the client's own style. */
  set(key: string, value: string): Promise<unknown>;
  /** `DEL key`. */
  del(key: string): Promise<unknown>;
  /** `PUBLISH channel message`: after a write, tells the subscribed instances (push). */
  publish?(channel: string, message: string): Promise<unknown>;
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
  /**
   * A second node-redis connection, only for pub/sub (push): with it, each instance
   * keeps the state in process for the whole `ttlMs` (no Redis round trip per
   * request) and serves a switch the moment it is published. Such as
   * `client.duplicate()`; connected here if it is not yet. Its `error` events are
   * heard here (reported through `onError`, once per streak); it reconnects on its own.
   */
  subscriber?: RedisLikeSubscriber;
}

/**
 * The part of a node-redis (v4 and later) client that {@linkcode redisCache} uses for
 * push: `subscribe(channel, listener)` and its connection events. Its own connection
 * (a subscribed one runs no other command): `client.duplicate()`.
 *
 * @example
 * ```ts
 * import { createClient } from "redis";
 * import { redisCache, type RedisLikeSubscriber } from "@x/maintenance/redis";
 *
 * const client = await createClient({ url: "redis://127.0.0.1:6379" }).connect();
 * const subscriber: RedisLikeSubscriber = client.duplicate();
 * const cache = redisCache(client, { subscriber });
 * ```
 */
export interface RedisLikeSubscriber {
  /** `SUBSCRIBE channel`; `listener` gets each message. */
  subscribe(
    channel: string,
    listener: (message: string, channel: string) => unknown,
  ): Promise<unknown>;
  /** Connection events: `ready` (connected and re-subscribed), `error`, `end`. */
  on(event: string, listener: (error?: unknown) => void): unknown;
  /** Whether `connect()` was called; when `false`, it is called here. */
  readonly isOpen?: unknown;
  /** Whether the connection is up. */
  readonly isReady?: unknown;
  /** Connects (node-redis). */
  connect?(): Promise<unknown>;
  /** ioredis: the connection status (not supported for push). */
  readonly status?: unknown;
}

/** The longest an entry lives, in seconds, whatever the TTL asked (`null` too). */
const MAX_TTL_S = 3600;
/** Clock skew between servers allowed for an envelope's expiry, in ms. */
const SKEW_MS = 60_000;
/**
 * The most of a value a read fetches, in bytes: an envelope of the largest state (64
 * KiB of text, each character up to 3 bytes of UTF-8 once escaped) fits. A larger value,
 * planted by someone who can write to this Redis, is cut there, so it is a miss, not
 * hundreds of megabytes read into every instance.
 */
const MAX_READ = 200 * 1024;

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
  return explainAs(`cannot ${op} Redis cache key "${key}"`, e);
}

function explainAs(what: string, e: unknown): StoreError {
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
  return new StoreError(`${what}: ${fix}`, code, { cause: e });
}

/**
 * Listens on `channel` through `sub`: subscribes (connecting it first if it is not),
 * and retries every `RETRY_MS` until that works; then follows its connection: lost on
 * `error`/`end`, back on `ready` (node-redis emits it once it has re-subscribed).
 */
function listen(
  sub: RedisLikeSubscriber,
  channel: string,
  handlers: PushHandlers,
  timeoutMs: number,
  later: (fn: () => void, ms: number) => void,
): void {
  /** Our subscription went through once: from then on the client keeps it. */
  let subscribed = false;
  let up = false;
  const decoder = new TextDecoder();
  function listener(message: unknown): void {
    handlers.message(
      typeof message === "string"
        ? message
        : message instanceof Uint8Array
        ? decoder.decode(message)
        : "",
    );
  }
  function back(): void {
    if (!subscribed || up) return;
    up = true;
    handlers.up();
  }
  /** While down, a check once per `RETRY_MS`, should a `ready` event be missed. */
  function check(): void {
    if (up || closed) return;
    if (subscribed && sub.isReady === true) back();
    else later(check, RETRY_MS);
  }
  let closed = false;
  function lost(error: unknown): void {
    // An error on a connection that is still up (a reply it could not parse) is not
    // a loss: node-redis marks the connection not ready before it tells of one.
    if (!up || sub.isReady === true) return;
    up = false;
    handlers.down(
      explainAs(
        `the Redis subscriber on "${channel}" lost its connection; until it is ` +
          `back, each instance asks Redis (or the store) once per ${RETRY_MS} ms`,
        error ?? new Error("connection closed"),
      ),
    );
    later(check, RETRY_MS);
  }
  sub.on("error", lost);
  sub.on("reconnecting", lost);
  // Closed by its owner (the app shutting down): no longer trusted, not an error.
  sub.on("end", () => {
    closed = true;
    if (up) handlers.down(undefined);
    up = false;
  });
  sub.on("ready", () => {
    closed = false;
    back();
  });
  /** The subscribe under way (a retry waits for it rather than queue another). */
  let attempt: Promise<unknown> | undefined;
  async function start(): Promise<void> {
    try {
      attempt ??= (async () => {
        if (sub.isOpen === false && typeof sub.connect === "function") {
          await sub.connect();
        }
        await sub.subscribe(channel, listener);
      })().finally(() => attempt = undefined);
      const current = attempt;
      await withTimeout(() => current, timeoutMs, `SUBSCRIBE ${channel}`);
    } catch (e) {
      handlers.down(
        explainAs(`cannot subscribe to Redis channel "${channel}"`, e),
      );
      later(start, RETRY_MS);
      return;
    }
    subscribed = true;
    if (sub.isReady === false) return; // "ready" comes once it has re-subscribed
    back();
  }
  start();
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
 * Every write through a controller also publishes on `<prefix><key>:written` (when the
 * client has `publish`). With `subscriber` (push), each instance keeps the state in
 * process for the whole `ttlMs` and reads the store again the moment a write is
 * published; while the subscription is down it polls once a second (contract:
 * `src/_shared.ts`).
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
 *   cache: {
 *     store: redisCache(client, { prefix: "myapp:", subscriber: client.duplicate() }),
 *     ttlMs: 30_000,
 *   },
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
  checkOptions(options, "redisCache", ["prefix", "subscriber"]);
  const prefix = options.prefix ?? "";
  if (typeof prefix !== "string") {
    throw new TypeError(
      'redisCache option prefix must be a string, such as "myapp:"',
    );
  }
  const { subscriber } = options;
  if (subscriber !== undefined) {
    if (
      subscriber === null || typeof subscriber !== "object" ||
      typeof subscriber.subscribe !== "function" ||
      typeof subscriber.on !== "function"
    ) {
      throw new TypeError(
        "redisCache option subscriber must be a node-redis client of its own, such " +
          "as client.duplicate()",
      );
    }
    if ((subscriber as unknown) === client) {
      throw new TypeError(
        "redisCache option subscriber must be its own connection (a subscribed " +
          "connection runs no GET): pass client.duplicate(), not the client",
      );
    }
    if (
      typeof subscriber.isOpen !== "boolean" &&
      typeof subscriber.status === "string"
    ) {
      throw new TypeError(
        "redisCache option subscriber: an ioredis client is not supported for " +
          "push; use a node-redis client (createClient({ url }) from redis)",
      );
    }
    if (typeof client.publish !== "function") {
      throw new TypeError(
        "redisCache with a subscriber needs a client with publish(channel, message), " +
          "as node-redis and ioredis clients have",
      );
    }
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

  const publish = client.publish?.bind(client);
  const bus = publish === undefined ? undefined : (
    { key, timeoutMs, later }: {
      key: string;
      timeoutMs: number;
      later: (fn: () => void, ms: number) => void;
    },
  ): PushBus => {
    const channel = pushChannel(prefix + key);
    return {
      publish: async (message) => {
        try {
          return await publish(channel, message);
        } catch (e) {
          throw explainAs(`cannot publish on Redis channel "${channel}"`, e);
        }
      },
      listen: subscriber === undefined
        ? undefined
        : (handlers) => listen(subscriber, channel, handlers, timeoutMs, later),
    };
  };

  return withPush({
    async get(key) {
      // GETRANGE where the client has it: bounded; a missing key reads as "".
      const reply = await call(
        "get",
        key,
        (k) =>
          client.getRange?.(k, 0, MAX_READ - 1) ??
            client.getrange?.(k, 0, MAX_READ - 1) ?? client.get(k),
      );
      if (reply === null || reply === undefined || reply === "") return null;
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
  }, bus);
}

export { sharedCache };
