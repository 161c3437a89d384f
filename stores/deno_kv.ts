/**
 * The maintenance state in Deno KV, over the `Deno.Kv` you open: on Deno Deploy
 * `await Deno.openKv()`, locally `await Deno.openKv("state.sqlite")` (with
 * `--unstable-kv`), elsewhere any object of the same shape ({@linkcode DenoKvLike}),
 * such as the `@deno/kv` package's. No dependency on Deno's global types: the kv is
 * taken by its shape.
 *
 * A read is one `get` (a missing key reads as off; a value larger than 64 KiB, or one
 * that is not a string, is a {@linkcode StoreError}), a write one `set`, which Deno KV
 * commits atomically. And the store watches its key (`kv.watch()`): a switch written by
 * any instance is served at once, while each instance keeps the state in process
 * between switches (`cache.ttlMs`, the poll that stays as the safety net). A
 * watch that fails is reported to `onError` once per failure streak and restarted
 * after a delay; closing the kv ends it quietly.
 *
 * Deno's local (SQLite) backend tells a watch only of writes made in the same process;
 * a write by another process is seen at the next TTL poll (see `docs/deno_kv.md`). On
 * Deno Deploy every instance's watch sees every write.
 *
 * A watch keeps the process alive until the kv is closed (`kv.close()`), as Deno's
 * own `kv.watch()` does; a server runs anyway, a script closes its kv or passes
 * `{ watch: false }`.
 *
 * @example On Deno Deploy
 * ```ts ignore
 * import { Hono } from "hono";
 * import { createMaintenance } from "@x/maintenance";
 * import { DenoKvStore } from "@x/maintenance/deno-kv";
 *
 * const kv = await Deno.openKv();
 * const mm = createMaintenance({
 *   store: new DenoKvStore(kv),
 *   cache: { ttlMs: 60_000 }, // the watch brings switches; the poll is the safety net
 * });
 * const app = new Hono();
 * app.use(mm.middleware());
 * app.get("/", (c) => c.text("hello"));
 * Deno.serve(app.fetch);
 * ```
 *
 * @module
 */
import { checkOptions } from "../src/_options.ts";
import { unrefTimeout } from "../src/_timeout.ts";
import { callStore, checkSize, storeError } from "./_call.ts";
import { StoreError } from "./_store_error.ts";
import type { StateStore } from "./_types.ts";

/**
 * One part of a Deno KV key (`Deno.KvKeyPart`, symbols aside).
 *
 * @example
 * ```ts
 * import type { DenoKvKeyPart } from "@x/maintenance/deno-kv";
 * const part: DenoKvKeyPart = "maintenance_mode_state";
 * ```
 */
export type DenoKvKeyPart = Uint8Array | string | number | bigint | boolean;

/**
 * A Deno KV key (`Deno.KvKey`): an array of parts.
 *
 * @example
 * ```ts
 * import type { DenoKvKey } from "@x/maintenance/deno-kv";
 * const key: DenoKvKey = ["myapp", "prod", "maintenance"];
 * ```
 */
export type DenoKvKey = readonly DenoKvKeyPart[];

/**
 * What {@linkcode DenoKvStore} uses of an entry (`Deno.KvEntryMaybe`).
 *
 * @example
 * ```ts
 * import type { DenoKvEntryLike } from "@x/maintenance/deno-kv";
 * const missing: DenoKvEntryLike = { value: null, versionstamp: null };
 * ```
 */
export interface DenoKvEntryLike {
  /** The value, `null` when the key does not exist. */
  readonly value: unknown;
  /** The version of the value, `null` when the key does not exist. */
  readonly versionstamp: string | null;
}

/**
 * What {@linkcode DenoKvStore} uses of a `Deno.Kv` (which has these and more):
 * `Deno.openKv()` gives one as it is.
 *
 * @example
 * ```ts ignore
 * import type { DenoKvLike } from "@x/maintenance/deno-kv";
 * const kv: DenoKvLike = await Deno.openKv();
 * ```
 */
export interface DenoKvLike {
  /** The entry for `key` (value `null` when there is none). */
  get(key: DenoKvKey): Promise<DenoKvEntryLike>;
  /** Sets the value, atomically. */
  set(key: DenoKvKey, value: string): Promise<unknown>;
  /**
   * A stream that gives the entries of `keys` at once, then each time one of them
   * changes; it ends when the kv is closed.
   */
  watch(keys: readonly DenoKvKey[]): ReadableStream<readonly DenoKvEntryLike[]>;
}

/**
 * Options for {@linkcode DenoKvStore}.
 *
 * @example
 * ```ts
 * import type { DenoKvStoreOptions } from "@x/maintenance/deno-kv";
 * const options: DenoKvStoreOptions = { key: ["prod", "maintenance_mode_state"] };
 * ```
 */
export interface DenoKvStoreOptions {
  /** The key (an array, as every Deno KV key); default `["maintenance_mode_state"]`. */
  key?: DenoKvKey;
  /**
   * Watch the key, so a switch is served at once (default `true`). `false`: the
   * state is read once per cache TTL only, and nothing keeps the process alive.
   */
  watch?: boolean;
}

/** The key used when none is given. */
const DEFAULT_KEY: DenoKvKey = ["maintenance_mode_state"];
/** The first delay before a failed watch is started again, ms; it doubles up to the next. */
const WATCH_RETRY_MS = 1000;
const WATCH_RETRY_MAX_MS = 30_000;
const KNOWN = ["key", "watch"];

/** A key part as Deno prints it, for the description. */
function showPart(part: DenoKvKeyPart): string {
  if (typeof part === "string") return JSON.stringify(part);
  if (typeof part === "bigint") return `${part}n`;
  if (part instanceof Uint8Array) return `Uint8Array(${part.byteLength})`;
  return String(part);
}

/** The checked key, or a `TypeError` saying what to write. */
function checkKey(key: unknown): DenoKvKey {
  if (typeof key === "string") {
    throw new TypeError(
      `DenoKvStore key must be an array (a Deno.KvKey), such as ${
        JSON.stringify([key])
      }`,
    );
  }
  const fits = (p: unknown) =>
    ["string", "number", "bigint", "boolean"].includes(typeof p) ||
    p instanceof Uint8Array;
  if (!Array.isArray(key) || key.length === 0 || !key.every(fits)) {
    throw new TypeError(
      'DenoKvStore key must be a non-empty array of strings, numbers, bigints, booleans or Uint8Arrays (a Deno.KvKey), such as ["maintenance_mode_state"]',
    );
  }
  return Object.freeze([...key]);
}

/** A `TypeError` unless `kv` has the methods the store uses. */
function checkKv(kv: unknown, watch: boolean): void {
  if (kv instanceof Promise) {
    throw new TypeError(
      "DenoKvStore needs an open Deno.Kv, not a Promise: write new DenoKvStore(await Deno.openKv())",
    );
  }
  const k = (kv ?? {}) as Record<string, unknown>;
  const lacks = ["get", "set", ...(watch ? ["watch"] : [])].filter((m) =>
    typeof k[m] !== "function"
  );
  if (kv === null || typeof kv !== "object" || lacks.length > 0) {
    throw new TypeError(
      `DenoKvStore needs a Deno.Kv, such as new DenoKvStore(await Deno.openKv()) (got ${
        kv === null || typeof kv !== "object"
          ? String(kv)
          : `an object without ${lacks.join(" and ")}`
      })`,
    );
  }
}

/**
 * What a closed kv throws: `Deno.errors.BadResource` (Deno), "Cannot call '.watch'
 * after '.close' is called" (the `@deno/kv` package).
 */
function isClosed(e: unknown): boolean {
  const err = (e ?? {}) as { name?: unknown; message?: unknown };
  return err.name === "BadResource" ||
    /after '\.close' is called/.test(String(err.message));
}

/** What to add to a failed call's message: a closed kv, or a write that may not have landed. */
function advice(e: unknown, op: "read" | "write"): string {
  return isClosed(e)
    ? "; the Deno.Kv is closed: keep it open while the app serves"
    : op === "write"
    ? "; the state may be unchanged: read it to see"
    : "";
}

/**
 * Keeps the state in one Deno KV key, as a string: the same text a
 * `FileStore` keeps (`1`, `0`, or a JSON state). A read is one `get`, a
 * missing key reading as `null` (off); a write one `set`. It watches the key
 * (`kv.watch([key])`) and tells the cache of each change, so the controller serves a
 * switch at once while it reads the store only once per TTL between switches.
 *
 * @example
 * ```ts ignore
 * import { createMaintenance } from "@x/maintenance";
 * import { DenoKvStore } from "@x/maintenance/deno-kv";
 *
 * const kv = await Deno.openKv();
 * const mm = createMaintenance({
 *   store: new DenoKvStore(kv, { key: ["prod", "maintenance_mode_state"] }),
 *   cache: { ttlMs: 60_000 },
 * });
 * await mm.enable({ message: "Back at 14:00" }); // every instance: 503 at once
 * ```
 */
export class DenoKvStore implements StateStore {
  /** `deno-kv:[...key]`, for messages. */
  readonly description: string;
  #kv: DenoKvLike;
  #key: DenoKvKey;
  #watch: boolean;
  /** Reads started: a watch (re)started after one tells the cache to read again. */
  #reads = 0;

  /**
   * A store for `key` (default `["maintenance_mode_state"]`) in `kv`, watching it
   * unless `watch: false`.
   */
  constructor(kv: DenoKvLike, options: DenoKvStoreOptions = {}) {
    checkOptions(options, "DenoKvStore", KNOWN);
    if (options.watch !== undefined && typeof options.watch !== "boolean") {
      throw new TypeError("DenoKvStore watch must be true or false");
    }
    this.#watch = options.watch ?? true;
    checkKv(kv, this.#watch);
    this.#key = checkKey(options.key ?? DEFAULT_KEY);
    this.#kv = kv;
    this.description = `deno-kv:[${this.#key.map(showPart).join(",")}]`;
  }

  /** The key's text, or `null` when the key does not exist. */
  read(signal?: AbortSignal): Promise<string | null> {
    this.#reads++;
    return callStore("read", this.description, signal, async () => {
      const { value } = await this.#kv.get(this.#key);
      if (value === null || value === undefined) return null;
      if (typeof value !== "string") {
        throw new StoreError(
          `cannot read maintenance state ${this.description}: the value is ${
            value instanceof Uint8Array
              ? "a Uint8Array"
              : Array.isArray(value)
              ? "an array"
              : typeof value === "object"
              ? "an object"
              : `a ${typeof value}`
          }, not the state's text; write it with mm.enable() / mm.disable(), or set ` +
            `a string ("1", "0" or a JSON state)`,
          "CORRUPT",
        );
      }
      checkSize(value, this.description);
      return value;
    }, (e) => advice(e, "read"));
  }

  /** Replaces the key's text (one `set`: atomic). */
  write(text: string, signal?: AbortSignal): Promise<void> {
    return callStore("write", this.description, signal, async () => {
      await this.#kv.set(this.#key, text);
    }, (e) => advice(e, "write"));
  }

  /**
   * Calls `changed` each time the key changes (by any writer this kv sees), until the
   * kv is closed. The watch's first answer is the value at that moment: it calls
   * `changed` only when the store was read before (a watch started again after a
   * failure, which may have missed a change). A watch that fails or ends while the kv
   * is open is reported to `onError` (once per failure streak) and started again
   * after a delay (1 s, doubling up to 30 s). With `watch: false`, does nothing.
   */
  watch(changed: () => void, onError: (error: unknown) => void): void {
    if (!this.#watch) return;
    const what = `cannot watch maintenance state ${this.description}`;
    let delay = WATCH_RETRY_MS;
    let reported = false;
    const tell = (fn: () => void) => {
      try {
        fn();
      } catch (e) {
        try {
          onError(e);
        } catch {
          // an onError that throws must not end the watch
        }
      }
    };
    const fail = (e: unknown) => {
      if (!reported) {
        reported = true;
        const advice =
          `; watching again in ${delay / 1000} s (until then the ` +
          "cache TTL polls the store)";
        tell(() => onError(storeError(what, e, advice)));
      }
      unrefTimeout(start, delay);
      delay = Math.min(delay * 2, WATCH_RETRY_MAX_MS);
    };
    const start = () => {
      let stream: ReadableStream<readonly DenoKvEntryLike[]>;
      try {
        stream = this.#kv.watch([this.#key]);
      } catch (e) {
        if (!isClosed(e)) fail(e); // a closed kv: stop quietly
        return;
      }
      this.#follow(stream, changed, () => {
        reported = false; // the watch answers: its failure streak is over
        delay = WATCH_RETRY_MS;
      }, tell).then(
        () => {
          // The stream ended: a closed kv ends its watches, and throws at the next.
          let probe: ReadableStream<unknown>;
          try {
            probe = this.#kv.watch([this.#key]);
          } catch (e) {
            if (!isClosed(e)) fail(e);
            return;
          }
          probe.cancel().catch(() => {});
          fail(new Error("the stream ended while the kv is open"));
        },
        (e: unknown) => {
          if (!isClosed(e)) fail(e);
        },
      );
    };
    start();
  }

  /**
   * Reads `stream` to its end, calling `changed` for each new versionstamp after the
   * first answer (and for the first when the store was read before); `answered` at
   * the first answer.
   */
  async #follow(
    stream: ReadableStream<readonly DenoKvEntryLike[]>,
    changed: () => void,
    answered: () => void,
    tell: (fn: () => void) => void,
  ): Promise<void> {
    let first = true;
    let stamp: string | null | undefined;
    for await (const entries of stream) {
      const next = entries[0]?.versionstamp ?? null;
      if (first) {
        first = false;
        answered();
        if (this.#reads > 0) tell(changed);
      } else if (next !== stamp) tell(changed);
      stamp = next;
    }
  }
}
