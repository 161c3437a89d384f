/**
 * Store and cache settings from flags and environment variables, shared by the CLI and
 * the demo. Loads `stores/s3.ts` (and so the AWS SDK) by dynamic import, only when S3 is
 * configured, and the `redis` package only when `MAINTENANCE_REDIS_URL` is set. Not part
 * of `mod.ts`.
 *
 * | Variable | Meaning |
 * |---|---|
 * | `MAINTENANCE_S3_URL` | `s3://bucket/key`: the state in one S3 object (`--s3`) |
 * | `MAINTENANCE_S3_ENDPOINT` | an S3-compatible endpoint (MinIO, R2, ...): path-style |
 * | `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN` | as the AWS CLI |
 * | `MAINTENANCE_S3_TIMEOUT_MS` | bound on each S3 call, default 1000 |
 * | `MAINTENANCE_STATE_FILE` | a state file instead (`--file`) |
 * | `MAINTENANCE_CACHE_TTL_MS` | cache TTL in ms, or `forever`; default 1000 |
 * | `MAINTENANCE_CACHE_KEY` | cache key, default `maintenance_mode_state` |
 * | `MAINTENANCE_REDIS_URL` | a Redis cache shared by every server, with push: the demo subscribes, the CLI deletes the key and publishes |
 *
 * @module
 */
import { parseS3Url } from "../stores/_s3_url.ts";
import { DEFAULT_STATE_FILE, FileStore } from "../stores/file.ts";
import { redisCache } from "../stores/redis.ts";
import { pushChannel, pushMessage } from "./_shared.ts";
import type { StateStore } from "../stores/_types.ts";
import type { CacheOptions } from "./_cache.ts";
import { withTimeout } from "./_timeout.ts";

/**
 * A setting is wrong or half given; the message names the flag or variable and the fix.
 * The CLI exits 2 on it.
 *
 * @example
 * ```ts
 * import { ConfigError } from "./_env_config.ts";
 * throw new ConfigError("MAINTENANCE_S3_URL must look like s3://bucket/key");
 * ```
 */
export class ConfigError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/** Reads an environment variable on any runtime; undefined when unset or not allowed. */
export type EnvReader = (name: string) => string | undefined;

/**
 * The process environment, on Deno, Bun or Node (undefined where reading is not allowed).
 *
 * @example
 * ```ts
 * import { processEnv } from "./_env_config.ts";
 * processEnv("PORT") ?? "8000";
 * ```
 */
export function processEnv(name: string): string | undefined {
  try {
    return strictProcessEnv(name);
  } catch {
    return undefined;
  }
}

/**
 * Like {@linkcode processEnv}, but a variable that cannot be read (Deno without
 * `--allow-env` for it, and no terminal to ask) throws {@linkcode ConfigError} naming
 * it, instead of reading as unset: the CLI must not switch a local file because it
 * could not see `MAINTENANCE_S3_URL`, nor skip the shared cache because it could not see
 * `MAINTENANCE_REDIS_URL`.
 *
 * @example
 * ```ts
 * import { storeFromEnv, strictProcessEnv } from "./_env_config.ts";
 * const store = await storeFromEnv({}, strictProcessEnv);
 * ```
 */
export function strictProcessEnv(name: string): string | undefined {
  let v: string | undefined;
  try {
    const g = globalThis as {
      process?: { env?: Record<string, string | undefined> };
    };
    v = g.process?.env?.[name];
  } catch (e) {
    throw new ConfigError(
      `cannot read the environment variable ${name} (${
        (e as Error).message
      }); allow reading the environment (deno run --allow-env; ` +
        "deno task maintenance does)",
    );
  }
  return v === "" ? undefined : v;
}

/** Where the state lives, as flags give it. */
export interface StoreFlags {
  /** `--file PATH`. */
  file?: string;
  /** `--s3 s3://bucket/key`. */
  s3?: string;
}

/**
 * Picks the store: `--s3` / `MAINTENANCE_S3_URL` (with `MAINTENANCE_S3_ENDPOINT`, region
 * and credentials from `AWS_*`), else `--file` / `MAINTENANCE_STATE_FILE`, else
 * `maintenance_mode_state.txt` in the working directory. Flags beat variables. Throws
 * {@linkcode ConfigError} naming the flag or variable when a setting is wrong, half given
 * (one AWS key without the other, an endpoint without a URL) or contradictory.
 *
 * @example
 * ```ts
 * import { storeFromEnv } from "./_env_config.ts";
 * const store = await storeFromEnv({ file: "state.txt" });
 * ```
 */
export async function storeFromEnv(
  flags: StoreFlags = {},
  env: EnvReader = processEnv,
): Promise<StateStore> {
  if (flags.file !== undefined && flags.s3 !== undefined) {
    throw new ConfigError("give either --file or --s3, not both");
  }
  // Flags beat the environment; in the environment, one store must be chosen.
  if (flags.file !== undefined) return fileStore(flags.file, "--file");
  if (flags.s3 !== undefined) return await s3Store(flags.s3, "--s3", env);
  const s3Url = env("MAINTENANCE_S3_URL");
  const file = env("MAINTENANCE_STATE_FILE");
  if (s3Url !== undefined && file !== undefined) {
    throw new ConfigError(
      "MAINTENANCE_S3_URL and MAINTENANCE_STATE_FILE are both set; unset one " +
        "(S3 for many servers, a file for one)",
    );
  }
  if (s3Url !== undefined) {
    return await s3Store(s3Url, "MAINTENANCE_S3_URL", env);
  }
  if (env("MAINTENANCE_S3_ENDPOINT") !== undefined) {
    throw new ConfigError(
      "MAINTENANCE_S3_ENDPOINT is set but MAINTENANCE_S3_URL is not; set " +
        "MAINTENANCE_S3_URL=s3://bucket/key (or pass --s3), or unset the endpoint",
    );
  }
  return fileStore(file ?? DEFAULT_STATE_FILE, "MAINTENANCE_STATE_FILE");
}

function fileStore(path: string, where: string): StateStore {
  try {
    return new FileStore(path);
  } catch (e) {
    throw new ConfigError(`${where}: ${(e as Error).message}`);
  }
}

/**
 * Loads a module that needs an optional peer package; a missing package is a
 * ConfigError that says how to install it, not the runtime's "Cannot find package".
 */
async function withOptional<T>(
  load: () => Promise<T>,
  pkg: string,
  why: string,
): Promise<T> {
  try {
    return await load();
  } catch (e) {
    const err = e as { code?: unknown; message?: unknown };
    const text = String(err?.message ?? e);
    if (
      text.includes(pkg) &&
      (err?.code === "ERR_MODULE_NOT_FOUND" || /cannot find/i.test(text))
    ) {
      throw new ConfigError(
        `${why} needs the optional package ${pkg}, which is not installed: ` +
          `npm install ${pkg} (bun add ${pkg}; deno add npm:${pkg})`,
      );
    }
    throw e;
  }
}

async function s3Store(
  s3Url: string,
  where: string,
  env: EnvReader,
): Promise<StateStore> {
  const { S3Store } = await withOptional(
    () => import("../stores/s3.ts"),
    "@aws-sdk/client-s3",
    `${where} (state in S3)`,
  );
  let target: { bucket: string; key: string };
  try {
    target = parseS3Url(s3Url);
  } catch (e) {
    throw new ConfigError(`${where}: ${(e as Error).message}`);
  }
  const endpoint = env("MAINTENANCE_S3_ENDPOINT");
  if (endpoint !== undefined) {
    let u: URL | undefined;
    try {
      u = new URL(endpoint);
    } catch {
      u = undefined;
    }
    if (!u || (u.protocol !== "http:" && u.protocol !== "https:")) {
      throw new ConfigError(
        `MAINTENANCE_S3_ENDPOINT ${
          JSON.stringify(endpoint)
        } is not an http:// or ` +
          "https:// URL; write e.g. http://127.0.0.1:9000 (MinIO) or " +
          "https://ACCOUNT_ID.r2.cloudflarestorage.com (R2)",
      );
    }
  }
  const keyId = env("AWS_ACCESS_KEY_ID");
  const secret = env("AWS_SECRET_ACCESS_KEY");
  const token = env("AWS_SESSION_TOKEN");
  if ((keyId === undefined) !== (secret === undefined)) {
    throw new ConfigError(
      keyId === undefined
        ? "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not; set both or neither"
        : "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not; set both or neither",
    );
  }
  if (token !== undefined && keyId === undefined) {
    throw new ConfigError(
      "AWS_SESSION_TOKEN is set but AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are " +
        "not; a session token goes with both",
    );
  }
  const regionVar = env("AWS_REGION") !== undefined
    ? "AWS_REGION"
    : "AWS_DEFAULT_REGION";
  const region = env(regionVar)?.trim() ||
    (endpoint !== undefined ? "us-east-1" : undefined);
  if (region !== undefined && !/^[a-z0-9][a-z0-9-]*[a-z0-9]$/.test(region)) {
    throw new ConfigError(
      `${regionVar} ${
        JSON.stringify(region)
      } is not a region name; write e.g. eu-west-1` +
        " (or auto for R2)",
    );
  }
  const timeout = env("MAINTENANCE_S3_TIMEOUT_MS");
  let timeoutMs: number | undefined;
  if (timeout !== undefined) {
    timeoutMs = Number(timeout);
    if (
      !/^\d+$/.test(timeout.trim()) || !Number.isInteger(timeoutMs) ||
      timeoutMs < 1 || timeoutMs > 60_000
    ) {
      throw new ConfigError(
        `MAINTENANCE_S3_TIMEOUT_MS must be a whole number from 1 to 60000 (got ${timeout})`,
      );
    }
  }
  try {
    return new S3Store({
      bucket: target.bucket,
      key: target.key,
      endpoint,
      region,
      forcePathStyle: endpoint !== undefined ? true : undefined,
      credentials: keyId !== undefined && secret !== undefined
        ? { accessKeyId: keyId, secretAccessKey: secret, sessionToken: token }
        : undefined,
      timeoutMs,
    });
  } catch (e) {
    throw new ConfigError(`${where}: ${(e as Error).message}`);
  }
}

/**
 * A whole number from the environment, with a default; throws {@linkcode ConfigError}
 * naming the variable when it is not one.
 *
 * @example
 * ```ts
 * import { intFromEnv } from "./_env_config.ts";
 * const port = intFromEnv("PORT", 8000, 0, 65535);
 * ```
 */
export function intFromEnv(
  name: string,
  fallback: number,
  min: number,
  max: number,
  env: EnvReader = processEnv,
): number {
  const raw = env(name);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(
      `${name} must be a whole number from ${min} to ${max} (got ${raw})`,
    );
  }
  return n;
}

/** The default cache key, as the seed's MAINTENANCE_MODE_CACHE_KEY. */
const DEFAULT_CACHE_KEY = "maintenance_mode_state";

/**
 * Cache settings from the environment, checked but not yet connected.
 *
 * @example
 * ```ts
 * import type { CacheSettings } from "./_env_config.ts";
 * const settings: CacheSettings = {
 *   ttlMs: 1000,
 *   key: "maintenance_mode_state",
 *   redisUrl: "redis://127.0.0.1:6379",
 * };
 * ```
 */
export interface CacheSettings {
  /** `MAINTENANCE_CACHE_TTL_MS`: ms, or `null` for `forever`. Default 1000. */
  ttlMs: number | null;
  /** `MAINTENANCE_CACHE_KEY`; default `maintenance_mode_state`. */
  key: string;
  /** `MAINTENANCE_REDIS_URL`: a Redis cache shared by every server, when set. */
  redisUrl: string | undefined;
}

/**
 * Reads and checks `MAINTENANCE_CACHE_TTL_MS` (whole ms from 0 to 86400000, or
 * `forever`), `MAINTENANCE_CACHE_KEY` and `MAINTENANCE_REDIS_URL` (`redis://` or
 * `rediss://`). Connects to nothing. Throws {@linkcode ConfigError} naming the variable.
 *
 * @example
 * ```ts
 * import { cacheSettingsFromEnv } from "./_env_config.ts";
 * const { ttlMs, redisUrl } = cacheSettingsFromEnv();
 * ```
 */
export function cacheSettingsFromEnv(
  env: EnvReader = processEnv,
): CacheSettings {
  const rawTtl = env("MAINTENANCE_CACHE_TTL_MS");
  let ttlMs: number | null = null;
  if (rawTtl?.trim().toLowerCase() !== "forever") {
    try {
      ttlMs = intFromEnv("MAINTENANCE_CACHE_TTL_MS", 1000, 0, 86_400_000, env);
    } catch (e) {
      throw new ConfigError(
        `${(e as Error).message.replace(/ \(got/, ", or forever (got")}`,
      );
    }
  }
  const key = env("MAINTENANCE_CACHE_KEY") ?? DEFAULT_CACHE_KEY;
  if (key.trim() !== key || /[\s\p{Cc}]/u.test(key)) {
    throw new ConfigError(
      `MAINTENANCE_CACHE_KEY ${
        JSON.stringify(key)
      } has spaces or control characters; ` +
        `use a plain key such as myapp:${DEFAULT_CACHE_KEY}`,
    );
  }
  const redisUrl = env("MAINTENANCE_REDIS_URL");
  if (redisUrl !== undefined) {
    let u: URL | undefined;
    try {
      u = new URL(redisUrl);
    } catch {
      u = undefined;
    }
    if (
      !u || (u.protocol !== "redis:" && u.protocol !== "rediss:") ||
      u.hostname === ""
    ) {
      throw new ConfigError(
        "MAINTENANCE_REDIS_URL must look like redis://127.0.0.1:6379 " +
          "(or rediss://user:password@host:6380/0 for TLS)",
      );
    }
    // The path is the database number; node-redis refuses anything else only when it
    // connects, which for the CLI is after the state was written.
    if (!/^\/?(\d+)?$/.test(u.pathname)) {
      throw new ConfigError(
        "MAINTENANCE_REDIS_URL must look like redis://127.0.0.1:6379 " +
          "(or rediss://user:password@host:6380/0 for TLS); after the port comes " +
          `only a database number, such as /0 (got ${
            JSON.stringify(u.pathname)
          })`,
      );
    }
  }
  return { ttlMs, key, redisUrl };
}

/**
 * Closes a node-redis client within `timeoutMs`. `close()` waits for the replies to
 * commands already sent, so a Redis that stopped answering would hold it (and the
 * process) forever: past the bound, the client is destroyed.
 */
async function closeRedis(
  client: { close(): Promise<unknown>; destroy(): void },
  timeoutMs: number,
): Promise<void> {
  try {
    await withTimeout(() => client.close(), timeoutMs, "closing Redis");
  } catch {
    destroyRedis(client);
  }
}

function destroyRedis(client: { destroy(): void }): void {
  try {
    client.destroy();
  } catch {
    // already closed
  }
}

/** `redis://host:port` without credentials, for messages. */
function redisWhere(url: string): string {
  const u = new URL(url);
  return `${u.protocol}//${u.host}`;
}

let redisModule: Promise<typeof import("redis")> | undefined;

/** The `redis` package, loaded once. */
function loadRedis(): Promise<typeof import("redis")> {
  return redisModule ??= withOptional(
    () => import("redis"),
    "redis",
    "MAINTENANCE_REDIS_URL (a shared Redis cache)",
  ).catch((e) => {
    redisModule = undefined;
    throw e;
  });
}

/** The CLI's connection, opened before its write (see {@linkcode warmSharedCache}). */
let early:
  | Promise<{ url: string; client: RedisClient } | undefined>
  | undefined;

/**
 * Before the CLI's write, with a Redis cache: loads the `redis` package and connects
 * (hundreds of ms in Deno, the first time), so that {@linkcode invalidateSharedCache}
 * publishes at once after the write, not that long after it. The connection does not
 * keep the process alive until that takes it; failures are said when it connects for
 * real.
 */
export async function warmSharedCache(settings: CacheSettings): Promise<void> {
  const url = settings.redisUrl;
  if (url === undefined) return;
  await (early ??= connectRedis(url, false, 1000).then((client) => {
    client.unref();
    return { url, client };
  }, () => undefined));
}

/** The connection {@linkcode warmSharedCache} opened to `url`, if it is still up. */
async function takeEarly(url: string): Promise<RedisClient | undefined> {
  const pre = await early;
  early = undefined;
  if (pre === undefined) return undefined;
  if (pre.url === url && pre.client.isReady) {
    pre.client.ref();
    return pre.client;
  }
  destroyRedis(pre.client);
  return undefined;
}

type RedisClient = Awaited<ReturnType<typeof connectRedis>>;

/**
 * Opens a node-redis client, failing (not retrying) when the first connection does not
 * succeed within `timeoutMs`. A `persistent` client reconnects after a later loss; its
 * commands fail at once while it is down (no offline queue), which the cache treats as
 * a miss.
 */
async function connectRedis(
  url: string,
  persistent: boolean,
  timeoutMs: number,
) {
  const { createClient } = await loadRedis();
  let ready = false;
  const client = createClient({
    url,
    disableOfflineQueue: true,
    socket: {
      connectTimeout: timeoutMs,
      reconnectStrategy: (retries: number, cause: Error): number | Error =>
        persistent && ready ? Math.min(50 * 2 ** retries, 1000) : cause,
    },
  });
  client.on("error", () => {}); // reported through the cache's onError when a call fails
  client.on("ready", () => {
    ready = true;
  });
  try {
    await withTimeout(
      () => client.connect(),
      timeoutMs,
      `connection to ${redisWhere(url)}`,
    );
  } catch (e) {
    destroyRedis(client);
    throw e;
  }
  return client;
}

/**
 * A cache made from {@linkcode CacheSettings}: in this process, or in Redis.
 *
 * @example
 * ```ts
 * import { cacheFromEnv } from "./_env_config.ts";
 * const envCache: { close(): Promise<void> } = await cacheFromEnv();
 * await envCache.close();
 * ```
 */
export interface EnvCache {
  /** Pass as `createMaintenance({ cache })`. */
  cache: CacheOptions;
  /** Closes the Redis connections (cache and subscriber), if any were opened. */
  close(): Promise<void>;
}

/**
 * The cache the settings ask for: `{ ttlMs }` in this process, or with
 * `MAINTENANCE_REDIS_URL` a Redis cache shared by every server (connected here; the
 * `redis` package is loaded only then), with push unless `push` is false: a second
 * connection subscribes, so the state is kept in process for the TTL and a switch
 * published by any server or the CLI is served at once. `close()` closes both.
 * Throws {@linkcode ConfigError} naming `MAINTENANCE_REDIS_URL` when Redis cannot be
 * reached within `timeoutMs`.
 *
 * @example
 * ```ts
 * import { createMaintenance } from "../mod.ts";
 * import { cacheFromEnv, storeFromEnv } from "./_env_config.ts";
 * const { cache } = await cacheFromEnv();
 * const mm = createMaintenance({ store: await storeFromEnv(), cache });
 * ```
 */
export async function cacheFromEnv(
  settings: CacheSettings = cacheSettingsFromEnv(),
  timeoutMs = 2000,
  push = true,
): Promise<EnvCache> {
  const { ttlMs, key, redisUrl } = settings;
  if (redisUrl === undefined) {
    return { cache: { ttlMs, key }, close: () => Promise.resolve() };
  }
  let client: RedisClient;
  let subscriber: RedisClient | undefined;
  try {
    client = await connectRedis(redisUrl, true, timeoutMs);
    if (push) {
      try {
        subscriber = await connectRedis(redisUrl, true, timeoutMs);
      } catch (e) {
        await closeRedis(client, timeoutMs);
        throw e;
      }
    }
  } catch (e) {
    throw new ConfigError(
      `MAINTENANCE_REDIS_URL: cannot connect to ${redisWhere(redisUrl)}: ${
        (e as Error).message
      }; check the URL and that Redis is running`,
    );
  }
  return {
    cache: { ttlMs, key, store: redisCache(client, { subscriber }) },
    close: async () => {
      await Promise.all(
        [client, subscriber].map((c) =>
          c?.isOpen ? closeRedis(c, timeoutMs) : undefined
        ),
      );
    },
  };
}

/**
 * After a write outside a running app (the CLI), deletes the shared cache key in the
 * Redis of `MAINTENANCE_REDIS_URL` and publishes the write on `<key>:written`, so every
 * server reads the new state from the store: a subscribed one at once (push), the
 * others at their next request instead of when the key expires. Does both a second
 * time `againAfterMs` later (default 1250: an app's store read is bounded by its
 * `timeoutMs`, default 1000), because a server whose store read began just before the
 * write puts the old state back into the cache when that read ends. Does nothing
 * without Redis; returns whether the key was deleted. Throws an `Error` saying that the
 * state was written but the key was not deleted, and what to do.
 *
 * @example
 * ```ts
 * import { cacheSettingsFromEnv, invalidateSharedCache } from "./_env_config.ts";
 * const settings = cacheSettingsFromEnv(); // before the write: bad settings change nothing
 * // ... store.write(...) ...
 * await invalidateSharedCache(settings);
 * ```
 */
export async function invalidateSharedCache(
  settings: CacheSettings,
  options: { timeoutMs?: number; againAfterMs?: number } = {},
): Promise<boolean> {
  const { timeoutMs = 2000, againAfterMs = 1250 } = options;
  const { redisUrl, key } = settings;
  if (redisUrl === undefined) return false;
  try {
    const client = await takeEarly(redisUrl) ??
      await connectRedis(redisUrl, false, timeoutMs);
    const channel = pushChannel(key);
    const message = pushMessage(`cli:${crypto.randomUUID()}`);
    // Sent together on one connection: DEL runs first, then the subscribers re-read.
    const tell = () =>
      withTimeout(
        () => Promise.all([client.del(key), client.publish(channel, message)]),
        timeoutMs,
        `DEL ${key}`,
      );
    let deleted = false;
    try {
      await tell();
      if (againAfterMs > 0) {
        await new Promise((resolve) => setTimeout(resolve, againAfterMs));
        await tell();
      }
      deleted = true;
    } finally {
      // After a DEL that got no answer, close() would wait for it forever.
      if (deleted) await closeRedis(client, timeoutMs);
      else destroyRedis(client);
    }
    return true;
  } catch (e) {
    // redisCache keeps no entry longer than an hour, "forever" included.
    const when = settings.ttlMs === null
      ? "expires, at most an hour after it was set (redisCache's bound for " +
        "MAINTENANCE_CACHE_TTL_MS forever)"
      : `expires, after MAINTENANCE_CACHE_TTL_MS (${settings.ttlMs} ms, at least 1 s, at most 1 h)`;
    throw new Error(
      `the state was written, but the Redis cache key "${key}" at ${
        redisWhere(redisUrl)
      } (MAINTENANCE_REDIS_URL) could not be deleted: ${
        (e as Error).message
      }; servers that share that cache see the change only when the key ${when}; ` +
        `run the command again, or delete the key: redis-cli DEL ${key}`,
      { cause: e },
    );
  }
}
