/**
 * The maintenance state in Cloudflare Workers KV or R2, over the Worker's own binding:
 * no `@cloudflare/workers-types`, no AWS SDK, no `node:` module, no `nodejs_compat`.
 * The bindings are taken by their shape ({@linkcode KvNamespaceLike},
 * {@linkcode R2BucketLike}), so `env.STATE` from wrangler's types fits as it is.
 *
 * A read is one `get` (a missing key reads as off; a value larger than 64 KiB is a
 * {@linkcode StoreError}), a write one `put`. Each isolate reads at most once per cache
 * TTL (`cache.ttlMs`, 1 s by default); Workers KV itself may take up to a minute to
 * reach every location, R2 is strongly consistent. A missing binding (`env.STATE`
 * undefined: not in wrangler.toml, or named otherwise) fails each read and write with a
 * {@linkcode StoreError} (`NO_BINDING`), a store failure the controller's `onError`
 * hears; a value that is not a binding is a `TypeError` at once.
 *
 * Make the controller once per isolate, never per request, and never around a
 * module-level binding that each request overwrites. With the `env` a request brings,
 * make the app (and its controller) on the isolate's first request:
 *
 * @example Made on the isolate's first request, from its `env`
 * ```ts
 * import { type ExecutionContext, Hono } from "hono";
 * import { createMaintenance } from "@x/maintenance";
 * import { type KvNamespaceLike, WorkersKvStore } from "@x/maintenance/cloudflare";
 *
 * type Env = { STATE: KvNamespaceLike }; // [[kv_namespaces]] binding = "STATE"
 * function createApp(env: Env): Hono<{ Bindings: Env }> {
 *   const mm = createMaintenance({ store: new WorkersKvStore(env.STATE) });
 *   const app = new Hono<{ Bindings: Env }>();
 *   app.use(mm.middleware());
 *   app.get("/", (c) => c.text("hello"));
 *   return app;
 * }
 * let app: Hono<{ Bindings: Env }> | undefined; // set once, never replaced
 * export default {
 *   fetch: (req: Request, env: Env, ctx: ExecutionContext) =>
 *     (app ??= createApp(env)).fetch(req, env, ctx),
 * };
 * ```
 *
 * Or, where the Worker can import its bindings (`import { env } from
 * "cloudflare:workers"`, workerd since 2025; not type-checked here, as only a Worker
 * resolves that module), at the top level:
 *
 * ```ts ignore
 * import { env } from "cloudflare:workers";
 * import { createMaintenance } from "@x/maintenance";
 * import { R2Store } from "@x/maintenance/cloudflare";
 *
 * // [[r2_buckets]] binding = "BUCKET" in wrangler.toml
 * const mm = createMaintenance({ store: new R2Store(env.BUCKET) });
 * ```
 *
 * @module
 */
import { checkOptions } from "../src/_options.ts";
import { callStore, checkSize, MAX_BYTES, tooLargeError } from "./_call.ts";
import { StoreError } from "./_store_error.ts";
import type { StateStore } from "./_types.ts";

/** The key (KV) or object key (R2) used when none is given. */
const DEFAULT_KEY = "maintenance_mode_state.txt";
const KNOWN = ["key"];
const KV_HINT =
  "a Workers KV namespace binding, such as new WorkersKvStore(env.STATE)";
const R2_HINT = "an R2 bucket binding, such as new R2Store(env.BUCKET)";

/**
 * What {@linkcode WorkersKvStore} uses of a Workers KV namespace binding (the
 * `KVNamespace` of `@cloudflare/workers-types` has these and more).
 *
 * @example
 * ```ts
 * import type { KvNamespaceLike } from "@x/maintenance/cloudflare";
 * const map = new Map<string, string>();
 * const kv: KvNamespaceLike = {
 *   get: (key) => Promise.resolve(map.get(key) ?? null),
 *   put: (key, value) => { map.set(key, value); return Promise.resolve(); },
 * };
 * ```
 */
export interface KvNamespaceLike {
  /** The value as text, or `null` when the key does not exist. */
  get(key: string, type: "text"): Promise<string | null>;
  /** Sets the value. */
  put(key: string, value: string): Promise<unknown>;
}

/**
 * What {@linkcode R2Store} uses of an R2 object with its body (`R2ObjectBody`).
 *
 * @example
 * ```ts
 * import type { R2ObjectBodyLike } from "@x/maintenance/cloudflare";
 * const object: R2ObjectBodyLike = { size: 1, text: () => Promise.resolve("1") };
 * ```
 */
export interface R2ObjectBodyLike {
  /** The object's size in bytes. */
  readonly size: number;
  /** The whole body as text. */
  text(): Promise<string>;
}

/**
 * What {@linkcode R2Store} uses of an R2 bucket binding (the `R2Bucket` of
 * `@cloudflare/workers-types` has these and more).
 *
 * @example
 * ```ts
 * import type { R2BucketLike } from "@x/maintenance/cloudflare";
 * const map = new Map<string, string>();
 * const bucket: R2BucketLike = {
 *   get(key) {
 *     const text = map.get(key);
 *     return Promise.resolve(
 *       text === undefined ? null : { size: text.length, text: () => Promise.resolve(text) },
 *     );
 *   },
 *   put(key, value) {
 *     map.set(key, value);
 *     return Promise.resolve(null);
 *   },
 * };
 * ```
 */
export interface R2BucketLike {
  /** The object with its body, or `null` when there is none. */
  get(key: string): Promise<R2ObjectBodyLike | null>;
  /** Replaces the object. */
  put(
    key: string,
    value: string,
    options?: {
      httpMetadata?: { contentType?: string; cacheControl?: string };
    },
  ): Promise<unknown>;
}

/**
 * Options for {@linkcode WorkersKvStore} and {@linkcode R2Store}.
 *
 * @example
 * ```ts
 * import type { CloudflareStoreOptions } from "@x/maintenance/cloudflare";
 * const options: CloudflareStoreOptions = { key: "prod/maintenance_mode_state.txt" };
 * ```
 */
export interface CloudflareStoreOptions {
  /** The KV key or R2 object key; default `maintenance_mode_state.txt`. */
  key?: string;
}

/** The checked key, or a `TypeError` naming the store and what to write. */
function checkKey(
  what: string,
  options: CloudflareStoreOptions,
  maxBytes: number,
): string {
  checkOptions(options, what, KNOWN);
  const { key = DEFAULT_KEY } = options;
  if (typeof key !== "string" || key === "") {
    throw new TypeError(
      `${what} key must be a non-empty string, such as "${DEFAULT_KEY}"`,
    );
  }
  if (new TextEncoder().encode(key).byteLength > maxBytes) {
    throw new TypeError(
      `${what} key is longer than ${maxBytes} bytes, the most ${
        what === "R2Store" ? "R2" : "Workers KV"
      } takes`,
    );
  }
  return key;
}

/**
 * A `TypeError` unless `binding` has `get` and `put` methods, or is missing (`undefined`
 * or `null`: a binding not configured, or misnamed), which `missing` reports at each
 * read and write instead, as a store failure (the controller's `onError` hears it).
 */
function checkBinding(what: string, binding: unknown, hint: string): void {
  if (binding === undefined || binding === null) return;
  const b = binding as { get?: unknown; put?: unknown };
  if (typeof b.get !== "function" || typeof b.put !== "function") {
    throw new TypeError(
      `${what} needs ${hint} (got ${
        typeof binding === "object"
          ? "an object without get and put"
          : typeof binding
      }); check the binding's name in wrangler.toml and in env`,
    );
  }
}

/** The error for a missing binding, at a read or write. */
function missing(what: string, hint: string, binding: unknown): StoreError {
  return new StoreError(
    `${what} has no binding (got ${
      String(binding)
    }): it needs ${hint}; check the ` +
      "binding's name in wrangler.toml and in env",
    "NO_BINDING",
  );
}

/**
 * Keeps the state in one Workers KV key. A read is one `get(key, "text")`, a missing
 * key reading as `null` (off), a value larger than 64 KiB a {@linkcode StoreError}
 * (`EFBIG`); a write is one `put`. KV may take up to a minute to show a write in
 * every location; `wrangler kv key put --binding STATE maintenance_mode_state.txt 1`
 * switches it on from a shell (`0` off, or a JSON state).
 *
 * @example
 * ```ts
 * import { createMaintenance } from "@x/maintenance";
 * import { type KvNamespaceLike, WorkersKvStore } from "@x/maintenance/cloudflare";
 *
 * declare const env: { STATE: KvNamespaceLike }; // the Worker's bindings
 * const mm = createMaintenance({
 *   store: new WorkersKvStore(env.STATE, { key: "prod/maintenance_mode_state.txt" }),
 * });
 * ```
 */
export class WorkersKvStore implements StateStore {
  /** `kv:key`, for messages. */
  readonly description: string;
  #kv: KvNamespaceLike;
  #key: string;

  /** A store for `key` (default `maintenance_mode_state.txt`) in the namespace. */
  constructor(
    namespace: KvNamespaceLike,
    options: CloudflareStoreOptions = {},
  ) {
    checkBinding("WorkersKvStore", namespace, KV_HINT);
    this.#key = checkKey("WorkersKvStore", options, 512);
    this.#kv = namespace;
    this.description = `kv:${this.#key}`;
  }

  /** The key's text, or `null` when the key does not exist. */
  read(signal?: AbortSignal): Promise<string | null> {
    return callStore("read", this.description, signal, async () => {
      const text = await this.#binding().get(this.#key, "text");
      if (text === null || text === undefined) return null;
      checkSize(text, this.description);
      return text;
    });
  }

  /** Replaces the key's text. */
  write(text: string, signal?: AbortSignal): Promise<void> {
    return callStore("write", this.description, signal, async () => {
      await this.#binding().put(this.#key, text);
    });
  }

  #binding(): KvNamespaceLike {
    if (this.#kv === undefined || this.#kv === null) {
      throw missing("WorkersKvStore", KV_HINT, this.#kv);
    }
    return this.#kv;
  }
}

/**
 * Keeps the state in one R2 object, over the Worker's R2 bucket binding (not the S3
 * API: no AWS SDK, no `nodejs_compat`). A read is one `get`, a missing object reading
 * as `null` (off), one larger than 64 KiB a {@linkcode StoreError} (`EFBIG`, by its
 * `size`: the body is not read); a write is one `put` (`Content-Type:
 * application/json`, `Cache-Control: no-store`). R2 shows a write to every reader at
 * once.
 *
 * @example
 * ```ts
 * import { createMaintenance } from "@x/maintenance";
 * import { type R2BucketLike, R2Store } from "@x/maintenance/cloudflare";
 *
 * declare const env: { BUCKET: R2BucketLike }; // the Worker's bindings
 * const mm = createMaintenance({ store: new R2Store(env.BUCKET) });
 * ```
 */
export class R2Store implements StateStore {
  /** `r2:key`, for messages. */
  readonly description: string;
  #bucket: R2BucketLike;
  #key: string;

  /** A store for the object `key` (default `maintenance_mode_state.txt`) in the bucket. */
  constructor(bucket: R2BucketLike, options: CloudflareStoreOptions = {}) {
    checkBinding("R2Store", bucket, R2_HINT);
    this.#key = checkKey("R2Store", options, 1024);
    this.#bucket = bucket;
    this.description = `r2:${this.#key}`;
  }

  /** The object's text, or `null` when the object does not exist. */
  read(signal?: AbortSignal): Promise<string | null> {
    return callStore("read", this.description, signal, async () => {
      const object = await this.#binding().get(this.#key);
      if (object === null || object === undefined) return null;
      if (typeof object.size === "number" && object.size > MAX_BYTES) {
        // The body is a stream: leave it unread.
        (object as { body?: { cancel?(): Promise<void> } }).body?.cancel?.()
          ?.catch(() => {});
        throw tooLargeError(this.description, object.size);
      }
      return await object.text();
    });
  }

  /** Replaces the object's text. */
  write(text: string, signal?: AbortSignal): Promise<void> {
    return callStore("write", this.description, signal, async () => {
      await this.#binding().put(this.#key, text, {
        // A custom domain or cache in front of the bucket must not serve an old state.
        httpMetadata: {
          contentType: "application/json",
          cacheControl: "no-store",
        },
      });
    });
  }

  #binding(): R2BucketLike {
    if (this.#bucket === undefined || this.#bucket === null) {
      throw missing("R2Store", R2_HINT, this.#bucket);
    }
    return this.#bucket;
  }
}
