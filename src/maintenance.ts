/**
 * The controller: owns the store and its cache, switches maintenance on and off, and
 * makes the middleware. `createMaintenance()` is the seed's get/set_maintenance_mode.
 *
 * @module
 */
import { FileStore } from "../stores/file.ts";
import type { StateStore } from "../stores/_types.ts";
import type { BypassCookie, BypassHandler } from "./_bypass.ts";
import { type CacheOptions, LAYER, StateCache } from "./_cache.ts";
import {
  createMiddleware,
  type MaintenanceMiddleware,
  type MiddlewareOptions,
} from "./middleware.ts";
import { register } from "./_internal.ts";
import { checkOptions, checkTypes } from "./_options.ts";
import {
  isActive,
  type MaintenanceState,
  parseState,
  serializeState,
} from "./_state.ts";
import { disabledState, enabledState, type EnableOptions } from "./_enable.ts";
import { StoreError } from "../stores/_store_error.ts";
import { withTimeout } from "./_timeout.ts";
import { logError } from "./_log_error.ts";
import { onCloudflareWorkers } from "./_on_workers.ts";

/**
 * Options of {@linkcode createMaintenance}.
 *
 * @example
 * ```ts
 * import { createMaintenance, FileStore } from "@x/maintenance";
 * const mm = createMaintenance({
 *   store: new FileStore("/var/run/myapp/maintenance_mode_state.txt"),
 *   cache: { ttlMs: 2000 },
 *   onError: (e) => console.error("maintenance store:", e.message),
 * });
 * ```
 */
export interface MaintenanceOptions {
  /** Where the state lives. Default: `new FileStore("maintenance_mode_state.txt")`. */
  store?: StateStore;
  /**
   * Read-through cache (MAINTENANCE_MODE_CACHE*). Default `{ ttlMs: 1000 }` in this
   * process; `false` reads the store on every request (as Django without a cache).
   */
  cache?: CacheOptions | false;
  /** Bound on every store and cache read, ms. Default 1000. */
  timeoutMs?: number;
  /** State before any successful read when the store fails (STATE_BACKEND_FALLBACK_VALUE). Default false (off). */
  fallback?: boolean;
  /** Told once per failure streak of the store or cache. Default: `console.error`. */
  onError?: (error: Error) => void;
  /**
   * Told on every instance when the state it serves changes (a write, a poll, a push;
   * not the first read): for logs, metrics, a CDN purge. Never awaited by a request;
   * what it throws or rejects goes to `onError`.
   */
  onChange?: (state: MaintenanceState, previous: MaintenanceState) => unknown;
  /** Clock, ms since epoch, for tests. Default `Date.now`. */
  now?: () => number;
  /**
   * The secret bypass link's cookie: `bypassCookie(options)` from
   * `@x/maintenance/bypass`. Without it, a state's secret lets no one through.
   */
  bypass?: BypassCookie;
}

/**
 * The maintenance controller.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { createMaintenance, MemoryStore } from "@x/maintenance";
 * const mm = createMaintenance({ store: new MemoryStore() });
 * const app = new Hono();
 * app.use(mm.middleware({ ignorePaths: ["/healthz"] }));
 * await mm.enable({ message: "Back soon" });
 * await mm.isEnabled(); // true
 * ```
 */
export interface Maintenance {
  /** Whether maintenance is in force now (get_maintenance_mode). */
  isEnabled(): Promise<boolean>;
  /** The current state, through the cache. */
  getState(): Promise<MaintenanceState>;
  /**
   * Switches maintenance on (set_maintenance_mode(True)); returns the state written.
   * Writes (`enable`, `disable`, `setState`, the admin routes) run one at a time in
   * call order, so `enable(); disable()` ends off; a write that never settles holds up
   * the next for 10 × `timeoutMs` at most. A write that fails makes the next check
   * read the store again: it may have landed anyway.
   */
  enable(options?: EnableOptions): Promise<MaintenanceState>;
  /**
   * Switches maintenance off (set_maintenance_mode(False)), recording who and why;
   * returns the state written.
   */
  disable(
    options?: Pick<EnableOptions, "by" | "note">,
  ): Promise<MaintenanceState>;
  /**
   * Runs `fn` in maintenance: switches on with `options`, runs `fn`, and writes back
   * the state it found in the store, however `fn` ends; returns what `fn` returns. A
   * state someone else wrote meanwhile is left as it is (`onError` hears so). When
   * the last write fails, it throws a `StoreError` saying what to run by hand.
   */
  during<T>(
    fn: () => T | Promise<T>,
    options?: EnableOptions,
  ): Promise<T>;
  /** Writes a whole state (validated); returns it. In call order, as `enable`. */
  setState(state: MaintenanceState): Promise<MaintenanceState>;
  /** The Hono middleware. */
  middleware(options?: MiddlewareOptions): MaintenanceMiddleware;
}

const KNOWN = [
  "store",
  "cache",
  "timeoutMs",
  "fallback",
  "onError",
  "onChange",
  "now",
  "bypass",
];

/** Keys of the `cache` option. */
const CACHE_KNOWN = ["key", "ttlMs", "store"];

/**
 * Creates the maintenance controller. Options are validated here, once.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { createMaintenance, FileStore } from "@x/maintenance";
 * const mm = createMaintenance({ store: new FileStore("maintenance_mode_state.txt") });
 * const app = new Hono();
 * app.get("/healthz", (c) => c.text("ok")); // registered before: never in maintenance
 * app.use(mm.middleware({ ignorePaths: [/^\/status/] }));
 * await mm.enable({ message: "Back at 14:00", retryAfter: 600 });
 * ```
 */
export function createMaintenance(
  options: MaintenanceOptions = {},
): Maintenance {
  checkOptions(
    options,
    "createMaintenance",
    KNOWN,
    {},
    "; middleware options such as ignorePaths go to mm.middleware({...})",
  );
  // Only a store left out gets the default file: `store: null` (a store that failed to
  // be made) must not quietly switch the app to a local file no one else reads.
  if (options.store === undefined && onCloudflareWorkers()) {
    throw new TypeError(
      "pass a store: a Cloudflare Worker has no file system for the default " +
        "FileStore (see the README's Cloudflare Workers section)",
    );
  }
  const store = options.store === undefined ? new FileStore() : options.store;
  if (typeof store?.read !== "function" || typeof store?.write !== "function") {
    throw new TypeError(
      "store must have read() and write(), e.g. new FileStore(path)" +
        (store === null ? "; leave it out for the default file store" : ""),
    );
  }
  const timeoutMs = options.timeoutMs ?? 1000;
  if (!Number.isFinite(timeoutMs) || timeoutMs < 1 || timeoutMs > 60_000) {
    throw new RangeError("timeoutMs must be from 1 to 60000 milliseconds");
  }
  const cacheOpt = options.cache === undefined
    ? { ttlMs: 1000 }
    : options.cache;
  if (cacheOpt !== false) {
    if (cacheOpt === null || typeof cacheOpt !== "object") {
      throw new TypeError(
        "cache must be an object such as { ttlMs: 1000 }, or false",
      );
    }
    checkOptions(cacheOpt, "cache", CACHE_KNOWN);
    const ttl = cacheOpt.ttlMs;
    if (
      ttl !== undefined && ttl !== null && (!Number.isFinite(ttl) || ttl < 0)
    ) {
      throw new RangeError(
        "cache.ttlMs must be a number of milliseconds >= 0, or null (forever)",
      );
    }
    if (
      cacheOpt.key !== undefined &&
      (typeof cacheOpt.key !== "string" || cacheOpt.key === "")
    ) {
      throw new TypeError("cache.key must be a non-empty string");
    }
    const s = cacheOpt.store;
    // The shared-cache policy comes with the store, from @x/maintenance/redis.
    if (
      s !== undefined &&
      typeof (s as { [LAYER]?: unknown })[LAYER] !== "function"
    ) {
      throw new TypeError(
        "cache.store must come from redisCache(client), or sharedCache(store) for a " +
          "store of your own (both from @x/maintenance/redis)",
      );
    }
  }
  checkTypes(options, {
    fallback: "boolean",
    onError: "function",
    onChange: "function",
    now: "function",
  }, {
    fallback: " (on or off)",
    now: " returning ms since the epoch: () => Date.now(), not Date.now()",
  });
  const now = options.now ?? Date.now;
  const bypass = options.bypass as BypassHandler | undefined;
  if (bypass !== undefined && typeof bypass?.check !== "function") {
    throw new TypeError(
      "bypass takes bypassCookie({ ... }) from @x/maintenance/bypass",
    );
  }
  const onError = options.onError ?? logError;
  const cache = new StateCache({
    store,
    cache: cacheOpt,
    timeoutMs,
    fallback: { enabled: options.fallback ?? false },
    onError,
    now,
    onChange: options.onChange,
  });

  // Writes run one at a time, in the order they were called: `enable(); disable()`
  // ends off, and the state this process serves is the one the store kept, even when
  // a store (S3) could land or acknowledge two overlapping writes in either order.
  // A write that never settles (a hung NFS mount under a FileStore, a custom store with
  // no timeout) holds up the next one for 10 × timeoutMs at most, not for ever.
  const writeWaitMs = 10 * timeoutMs;
  let writes: Promise<unknown> = Promise.resolve();
  function queued<T>(job: () => Promise<T>): Promise<T> {
    const before = writes;
    const run = withTimeout(() => before, writeWaitMs, "the write before")
      .catch(() => {})
      .then(job);
    writes = run.catch(() => {});
    return run;
  }

  /** The store's own state, not a cached copy up to a TTL old. */
  async function read(): Promise<MaintenanceState> {
    return parseState(
      await withTimeout((signal) => store.read(signal), timeoutMs, "read"),
    );
  }

  async function write(state: MaintenanceState): Promise<MaintenanceState> {
    const written: MaintenanceState = {
      ...state,
      updatedAt: new Date(now()).toISOString(),
    };
    const text = serializeState(written);
    try {
      await store.write(text);
    } catch (e) {
      // A write that failed may still have landed (a timeout after S3 took it): the
      // copy held here is no longer known to be the store's, so read it again.
      cache.invalidate();
      throw e;
    }
    await cache.written(text);
    return written;
  }

  function setState(state: MaintenanceState): Promise<MaintenanceState> {
    return queued(() => write(state));
  }

  const internals = { cache, bypass, now, onError, setState };
  const mm: Maintenance = {
    async isEnabled() {
      return isActive(await cache.get(), now());
    },
    async getState() {
      return (await cache.get()).state;
    },
    enable(opts: EnableOptions = {}) {
      return queued(async () => write(await enabledState(opts, now())));
    },
    disable(opts = {}) {
      return queued(() => write(disabledState(opts)));
    },
    async during(fn, opts = {}) {
      let found = { enabled: false } as MaintenanceState;
      // In the write queue: the state found is the one after the writes before.
      const mine = await queued(async () => {
        found = await read();
        return write(await enabledState(opts, now()));
      });
      try {
        return await fn();
      } finally {
        // Set back, unless someone switched it meanwhile: theirs is left as it is.
        const left = await queued(async () => {
          if (serializeState(await read()) !== serializeState(mine)) {
            return true;
          }
          await write({ ...found, updatedBy: opts.by ?? found.updatedBy });
          return false;
        }).catch((e) => {
          throw new StoreError(
            `could not set back the maintenance state after the job (${e.message}); ` +
              (found.enabled
                ? `write it back by hand: ${serializeState(found)}`
                : "switch it off by hand: maintenance off"),
            "RESTORE",
            { cause: e },
          );
        });
        if (left) {
          onError(
            new Error(
              "the maintenance state changed while during() ran: left as it is, not set back",
            ),
          );
        }
      }
    },
    setState,
    middleware(mwOptions?: MiddlewareOptions) {
      return createMiddleware(internals, mwOptions);
    },
  };
  register(mm, internals);
  return mm;
}

/**
 * The one-line form: a controller's middleware, with controller and middleware
 * options in one object.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { FileStore, maintenance } from "@x/maintenance";
 * const app = new Hono();
 * app.use(maintenance({ store: new FileStore(), ignorePaths: ["/healthz"] }));
 * ```
 */
export function maintenance(
  options: MaintenanceOptions & MiddlewareOptions = {},
): MaintenanceMiddleware {
  if (
    options === null || typeof options !== "object" || Array.isArray(options)
  ) {
    throw new TypeError(
      "maintenance takes an options object, such as { ignorePaths: ['/x'] }",
    );
  }
  // Controller options to the controller, the rest to the middleware (which names
  // any unknown one).
  const ctl: Record<string, unknown> = {};
  const mw: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(options)) {
    if (KNOWN.includes(k)) {
      if (v !== undefined) ctl[k] = v;
    } else mw[k] = v;
  }
  return createMaintenance(ctl).middleware(mw);
}
