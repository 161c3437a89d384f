/**
 * The read-through state cache. Its contract:
 *
 * - **TTL in process.** A state read is served for `ttlMs` without another read
 *   (`ttlMs: null`: until this process writes; `cache: false` or `ttlMs: 0`: every check
 *   reads the store).
 * - **Single flight.** One store read at a time per process, however many requests
 *   wait for it: one store read per TTL per process.
 * - **Bounded.** Every read, shared cache and store together, ends within `timeoutMs`.
 * - **Stale if error.** While the store fails (an error, a timeout, text that is not a
 *   state), the last good state (else `fallback`) is served at once, and `onError`
 *   hears once per failure streak; the streak ends when the store answers or takes a
 *   write.
 * - **Retries on a timer.** While the store fails it is tried every {@linkcode RETRY_MS}
 *   on a timer of its own, unref'd so it never keeps a process alive; a request that
 *   finds a try due starts it too (Cloudflare Workers drop timers between requests).
 *   So an idle instance recovers as fast as a busy one.
 * - **Bound.** A state written after an outage is served by every instance within
 *   TTL + {@linkcode RETRY_MS} + one read, whether or not requests arrive in between.
 *   (On Workers, where the timer may not outlive a request, the first request after
 *   the outage starts the try and is served the last state.)
 * - **Writes.** After a write through this process (`written()`) its state is served at
 *   once, and a shared key is deleted so every process reads the store next.
 * - **Shared cache** (optional, `cache.store` from `@x/maintenance/redis`): a
 *   {@linkcode Layer} between this cache and the store, with a contract of its own
 *   (`src/_shared.ts`); while it fails, a local copy is kept for `RETRY_MS`.
 * - **Push.** A store that watches (`watch`, Deno KV) or a layer that pushes (Redis
 *   pub/sub) says when the state changed elsewhere: the store is read again at once,
 *   superseding a read in flight, and the TTL is only the safety net between changes.
 * - **onChange** hears each change of the state served (not the first read), on a timer
 *   of its own: never awaited by a request, its errors go to `onError`.
 *
 * Every other mechanism, and the fault it handles:
 * - clock-free hot path (`current()`): the benchmark; a fresh state costs a field read
 *   and a counter, its end set by a timer (real clock, in-process TTL, not on Workers);
 * - the clock read every `HOT_CHECK_EVERY` hot answers: a busy event loop
 *   that runs the expiry timer late;
 * - a hung read not joined by more: a hung mount or dead connection that ignores its
 *   abort signal, where each retry would pile up another stuck read;
 * - the write generation: a read that began before a write and ends after it;
 * - the clock check: a wall clock stepping back (NTP, a resumed VM);
 * - the same snapshot for the same text: the page and per-state objects made for a
 *   state are reused after every re-read;
 *
 * @module
 */
import { StoreError } from "../stores/_store_error.ts";
import type { CacheStore, StateStore } from "../stores/_types.ts";
import {
  type MaintenanceState,
  parseState,
  type Snapshot,
  StateParseError,
  toSnapshot,
} from "./_state.ts";
import { TimeoutError, unrefTimeout, withTimeout } from "./_timeout.ts";
import { onCloudflareWorkers } from "./_on_workers.ts";

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
  /** Cache settings; `false`/undefined reads the store for every check (single flight). */
  cache?: CacheOptions | false;
  /** Bound on each read (shared cache and store together), ms. */
  timeoutMs: number;
  /** State served before any successful read, when the store fails. */
  fallback: MaintenanceState;
  /** Told once per failure streak. */
  onError: (error: Error) => void;
  /** Clock, ms since the epoch; `Date.now` turns the clock-free hot path on. */
  now: () => number;
  /** Told when the state served changes. */
  onChange?: (state: MaintenanceState, previous: MaintenanceState) => unknown;
}

/** How long a failing store (or shared cache) is left alone between tries, ms. */
export const RETRY_MS = 1000;

/** Hot answers between two clock reads: how far a late expiry timer can stretch a TTL. */
const HOT_CHECK_EVERY = 2048;

type Timer = ReturnType<typeof setTimeout>;

/** Where a shared cache keeps its {@linkcode Layer} factory (see `sharedCache`). */
export const LAYER: unique symbol = Symbol.for("x-maintenance.layer");

/** What a shared cache's layer is told of the cache it serves. */
export interface LayerContext {
  /** The cache key. */
  readonly key: string;
  /** How long a read state is served, ms (Infinity: until a write). */
  readonly ttlMs: number;
  /** Bound on one read, ms (the layer's share and the store's together). */
  readonly timeoutMs: number;
  /** Clock, ms since the epoch. */
  readonly now: () => number;
  /** Tells `onError`. */
  readonly report: (error: unknown) => void;
  /** Runs `fn` in `ms` without keeping the process alive. */
  readonly later: (fn: () => void, ms: number) => void;
  /** The state changed elsewhere (or the layer reconnected): read it again now. */
  readonly reread: () => void;
}

/** A cache store that carries its layer (`sharedCache(store)`, `redisCache(client)`). */
type SharedStore = CacheStore & {
  [LAYER]?: (context: LayerContext) => Layer;
};

/** A shared cache between this cache and the store (`src/_shared.ts`). */
export interface Layer {
  /** It fails: the cache keeps a local copy for a while instead of asking it per check. */
  readonly failing: boolean;
  /**
   * It pushes changes (`reread`): the cache keeps each state for `ttlMs` in process and
   * asks the layer only then, instead of on every check.
   */
  readonly pushes?: boolean;
  /**
   * The state's text: from the shared cache, else from `readStore` (within the time
   * left), filling the cache when `current()` says no write came meanwhile.
   */
  read(
    readStore: (ms: number) => Promise<string | null>,
    current: () => boolean,
  ): Promise<string | null>;
  /** After a write of `text` through this process: the key is deleted (and pushed). */
  written(text: string): Promise<void>;
  /** The wall clock stepped back. */
  clockBack(): void;
}

/**
 * Throws when `text` is not a state, with a message that names where it came from, so
 * `onError` says which file, object or cache key to fix.
 */
export function checkState(text: string | null, where: string): void {
  try {
    parseState(text);
  } catch (e) {
    if (!(e instanceof StateParseError)) throw e;
    throw new StoreError(
      `${where}: ${e.message}; the last good state (or the fallback) is served ` +
        "until a valid one is written (maintenance on / maintenance off)",
      "CORRUPT",
      { cause: e },
    );
  }
}

/** The read-through cache over a state store; its contract is at the head of this file. */
export class StateCache {
  readonly #store: StateStore;
  readonly #layer: Layer | undefined;
  /** How long a read state is served, ms: 0 without a cache, Infinity for `null`. */
  readonly #ttlMs: number;
  readonly #timeoutMs: number;
  readonly #onError: (error: Error) => void;
  readonly #now: () => number;
  readonly #fallback: Snapshot;
  readonly #onChange: StateCacheOptions["onChange"];
  /** Whether `current()` may answer without a clock read; see the head of the file. */
  readonly #hotAllowed: boolean;

  /** The state served: the last good one, or the fallback. */
  #snap: Snapshot | undefined;
  /** The text `#snap` was made from. */
  #text: string | null | undefined;
  /** Until when `#snap` is served without a read (ms since epoch); while failing, the next try. */
  #freshUntil = -Infinity;
  /** `#snap` is fresh and a timer (or `ttlMs: null`) ends that: no clock read needed. */
  #hot = false;
  /** Hot answers left before the clock is read again. */
  #hotLeft = 0;
  /** Ends `#hot` at `#freshUntil`; while the store fails, runs the next try. */
  #timer: Timer | undefined;
  #inflight: Promise<Snapshot> | undefined;
  /** The last read failed: serve `#snap` and try again at `#freshUntil`. */
  #failing = false;
  /** The store's failure streak has been reported. */
  #reported = false;
  /** Bumped by every write: a read that began before it is ignored. */
  #generation = 0;
  /** A store read given up at its timeout that has not settled yet. */
  #hungRead: Promise<unknown> | undefined;
  /** The latest clock reading, to notice the clock stepping back. */
  #lastNow = -Infinity;
  /** Creates the cache; see {@linkcode StateCacheOptions}. */
  constructor(options: StateCacheOptions) {
    const cache = options.cache || undefined;
    this.#store = options.store;
    this.#ttlMs = cache === undefined
      ? 0
      : cache.ttlMs === null
      ? Infinity
      : cache.ttlMs ?? 1000;
    this.#timeoutMs = options.timeoutMs;
    this.#onError = options.onError;
    this.#now = options.now;
    this.#layer = (cache?.store as SharedStore | undefined)?.[LAYER]?.({
      key: cache?.key ?? "maintenance_mode_state",
      ttlMs: this.#ttlMs,
      timeoutMs: this.#timeoutMs,
      now: this.#now,
      report: (e) => this.#report(e),
      later: unrefTimeout,
      reread: () => this.#reread(),
    });
    this.#fallback = toSnapshot(options.fallback);
    this.#onChange = options.onChange;
    // A test clock moves without timers; a shared cache that does not push is asked on
    // every check; Workers drop a request's timers, so nothing would end a hot state.
    this.#hotAllowed = options.now === Date.now && this.#local() &&
      this.#ttlMs > 0 && !onCloudflareWorkers();
    this.#store.watch?.(() => this.#reread(), (e) => this.#report(e));
  }

  /** Whether states are kept in process for the TTL (no layer, or one that pushes). */
  #local(): boolean {
    return this.#layer === undefined || this.#layer.pushes === true;
  }

  /** The state changed elsewhere: read it now, superseding a read in flight. */
  #reread(): void {
    this.#generation++;
    this.#inflight = undefined;
    this.invalidate();
    this.#refresh();
  }

  /**
   * The state while it is fresh, else `undefined` (then call
   * {@linkcode StateCache.get}). No I/O; with the real clock and a fresh in-process
   * copy, no clock read either.
   */
  current(): Snapshot | undefined {
    if (this.#hot && --this.#hotLeft > 0) return this.#snap;
    return this.#fresh(this.#now());
  }

  /** The state: the fresh copy, or a read bounded by `timeoutMs`. Never rejects. */
  get(): Promise<Snapshot> {
    const snap = this.#fresh(this.#now());
    if (snap !== undefined) return Promise.resolve(snap);
    if (!this.#failing) return this.#refresh();
    // A try is due and its timer is late or was dropped: try now, and serve the last
    // state at once, so a store that is down or hangs holds up no request.
    this.#refresh();
    return Promise.resolve(this.#snap ?? this.#fallback);
  }

  /**
   * Records a state this process just wrote: it is served at once, and a shared cache
   * entry is deleted so every process reads the store next.
   */
  async written(text: string): Promise<void> {
    this.#generation++;
    this.#inflight = undefined;
    this.#reported = false; // the store took a write: it works
    this.#accept(text, true);
    await this.#layer?.written(text);
  }

  /** Forgets the in-process copy, so the next check reads through. */
  invalidate(): void {
    this.#freshUntil = -Infinity;
    this.#hot = false;
  }

  /** `#snap` if it is fresh at `now`, else `undefined`. */
  #fresh(now: number): Snapshot | undefined {
    if (now < this.#lastNow) {
      // The clock stepped back: a period counted on it would last as long as the step.
      if (this.#freshUntil !== Infinity) this.#freshUntil = -Infinity;
      this.#layer?.clockBack();
    }
    this.#lastNow = now;
    if (now >= this.#freshUntil) {
      this.#hot = false;
      return undefined;
    }
    this.#hotLeft = HOT_CHECK_EVERY;
    return this.#snap;
  }

  /** Serves `snap` for `ms` without a read, and arms the timer that ends that. */
  #keep(snap: Snapshot, ms: number): void {
    this.#snap = snap;
    this.#freshUntil = this.#now() + ms;
    this.#hot = this.#hotAllowed;
    this.#hotLeft = HOT_CHECK_EVERY;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (ms === Infinity || !(this.#hot || this.#failing)) return;
    this.#timer = unrefTimeout(() => {
      this.#timer = undefined;
      this.#hot = false;
      if (this.#failing) this.#refresh();
    }, ms);
  }

  /** A good read (or a `write`) of `text`. */
  #accept(text: string | null, write?: boolean): void {
    this.#failing = false;
    // Before the first read, a write changes what was served: the fallback.
    const prev = this.#snap ?? (write ? this.#fallback : undefined);
    const snap = text === this.#text && prev !== undefined
      ? prev
      : toSnapshot(parseState(text));
    this.#text = text;
    // A working shared cache is asked on every check; while it fails, a copy is kept
    // here for a while, so the store is not read on every request instead.
    this.#keep(
      snap,
      this.#local()
        ? this.#ttlMs
        : this.#layer!.failing
        ? Math.min(this.#ttlMs, RETRY_MS)
        : 0,
    );
    const onChange = this.#onChange;
    if (
      onChange && prev &&
      JSON.stringify(snap.state) !== JSON.stringify(prev.state)
    ) {
      setTimeout(() => {
        try {
          Promise.resolve(onChange(snap.state, prev.state)).catch((e) =>
            this.#report(e)
          );
        } catch (e) {
          this.#report(e);
        }
      });
    }
  }

  /** A failed read: the last state (or the fallback) is served until the next try. */
  #fail(error: unknown): void {
    this.#failing = true;
    this.#keep(this.#snap ?? this.#fallback, RETRY_MS);
    if (this.#reported) return;
    this.#reported = true;
    this.#report(error);
  }

  #refresh(): Promise<Snapshot> {
    if (this.#inflight !== undefined) return this.#inflight;
    const generation = this.#generation;
    const p: Promise<Snapshot> = this.#load(generation).then(
      (text) => {
        if (generation === this.#generation) this.#accept(text);
      },
      (error: unknown) => {
        if (generation === this.#generation) this.#fail(error);
      },
    ).then(() => {
      if (this.#inflight === p) this.#inflight = undefined;
      return this.#snap ?? this.#fallback;
    });
    this.#inflight = p;
    return p;
  }

  /** Reads the state's text: through the shared cache when there is one. */
  #load(generation: number): Promise<string | null> {
    const readStore = (ms: number) => this.#read(ms);
    return this.#layer === undefined
      ? readStore(this.#timeoutMs)
      : this.#layer.read(readStore, () => generation === this.#generation);
  }

  /** Reads the store within `ms`; corrupt text is an error. */
  async #read(ms: number): Promise<string | null> {
    const what = `read of maintenance state from ${
      this.#store.description ?? "store"
    }`;
    if (this.#hungRead !== undefined) {
      throw new StoreError(
        `${what} is still waiting on the previous read (${this.#timeoutMs} ms); ` +
          "check that the store is reachable",
        "TIMEOUT",
      );
    }
    let read: Promise<string | null> | undefined;
    let text: string | null;
    try {
      text = await withTimeout(
        (signal) => read = Promise.resolve(this.#store.read(signal)),
        ms,
        what,
      );
    } catch (e) {
      const hung = read;
      if (e instanceof TimeoutError && hung !== undefined) {
        this.#hungRead = hung;
        const settled = () => {
          if (this.#hungRead === hung) this.#hungRead = undefined;
        };
        hung.then(settled, settled);
      }
      throw e;
    }
    checkState(text, this.#store.description ?? "the state store");
    this.#reported = false; // the store answered: its failure streak is over
    return text;
  }

  #report(error: unknown): void {
    try {
      this.#onError(error instanceof Error ? error : new Error(String(error)));
    } catch {
      // an onError that throws must not break a request
    }
  }
}
