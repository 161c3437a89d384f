/**
 * The shared cache (a {@linkcode CacheStore}, e.g. over Redis) between the in-process
 * cache and the store: optional, so it lives beside the core, reached through
 * `@x/maintenance/redis` (`redisCache(client)`, or `sharedCache(store)` for a store of
 * your own). The core sees only the {@linkcode Layer} a shared cache carries.
 *
 * Its contract, after the core cache's: asked on every check (as Django does); a miss
 * reads the store and fills the key for `ttlMs`; a cache that fails is a miss, reported
 * once per streak. Each mechanism and the fault it handles:
 * - half of `timeoutMs` for the cache, the store the rest: a Redis that hangs;
 * - skipped for `RETRY_MS` after it fails, while the core keeps a local copy: a Redis
 *   down or hanging, so the store is not read per request;
 * - its streak ended only by the kind of operation that failed: a READONLY replica that
 *   reads but cannot write; an operation begun during a streak that fails after it
 *   ended is part of it (told once): a connection that comes back after another;
 * - a key whose delete failed is deleted before the cache is trusted again: a write
 *   while Redis was down;
 * - a second delete after a write: another process's read, in flight during the write,
 *   putting the old state back;
 * - a corrupt value is a miss: the store's state overwrites it.
 *
 * **Push** (a {@linkcode PushBus}: Redis pub/sub, `redisCache(client, { subscriber })`).
 * Every write through a controller deletes the key and publishes
 * `{"x-maintenance":1,"written":"<writer id>"}` on `<key>:written` (the CLI does the
 * same), at once and again with the second delete. While the subscription is up the
 * layer `pushes`: each instance keeps a state in process for `ttlMs` (no Redis round
 * trip per check; the layer is asked once per TTL) and a message of ours makes it read
 * the **store** again at once (`reread`), skipping the key, which may still hold the
 * old state. The message carries no state: whoever can publish can only make instances
 * read the store. Mechanisms and faults:
 * - anything on the channel that is not our message, or is this layer's own, is
 *   ignored: another app's traffic, our own echo;
 * - one re-read at a time, and one more if messages came during it: a burst (or a flood)
 *   of messages costs at most one store read in flight per instance;
 * - the subscription confirmed (and every reconnect, after the client re-subscribed):
 *   a re-read of the store, since messages sent while it was away are lost (a state
 *   read before the first confirmation is kept for the TTL until that re-read); while
 *   down, the client is also checked once per `RETRY_MS`, should a `ready` be missed;
 * - the key filled from such a read, best effort: a failure there starts no streak
 *   (the cache's connection may come back after the subscriber's);
 * - **the subscription down** (a Redis restart, a dropped connection, a subscribe that
 *   failed): the layer counts as failing, so no state is served longer than the TTL and
 *   a switch is still seen quickly: the in-process copy read under push is dropped at
 *   once (a re-read), and until the client is ready and re-subscribed, each instance
 *   keeps its copy for at most `RETRY_MS` and asks Redis at most once per `RETRY_MS`
 *   (the store when Redis fails). So while push is down, a switch is served within
 *   `RETRY_MS` + one read, and Redis sees one GET per second per instance, not one per
 *   request (as without a subscriber) nor none for a whole TTL. `onError` hears once
 *   per streak: the subscription and the cache share one;
 * - a subscriber closed by its owner (`end`) stops push without an error: polling;
 * - a connection that dies silently (no event) is not noticed: the TTL bounds it.
 */
import type { CacheStore } from "../stores/_types.ts";
import {
  checkState,
  LAYER,
  type Layer,
  type LayerContext,
  RETRY_MS,
} from "./_cache.ts";
import { withTimeout } from "./_timeout.ts";

type CacheOp = "get" | "set" | "delete" | "publish" | "subscribe";

/** What a push channel (Redis pub/sub) tells the layer that listens to it. */
export interface PushHandlers {
  /** A message arrived on the channel (any text: the layer checks it is ours). */
  message(text: string): void;
  /** Subscribed: at first, and again after every reconnect (re-subscribed). */
  up(): void;
  /** The subscription is lost (or could not be made); `undefined`: closed by its owner. */
  down(error: unknown): void;
}

/** The channel between the instances of a fleet, for push. */
export interface PushBus {
  /** Publishes `message` on the channel. */
  publish(message: string): Promise<unknown>;
  /** Subscribes, when there is a subscriber; retries on its own until it is up. */
  listen?(handlers: PushHandlers): void;
}

/** The channel for the cache key `key` (with its prefix). */
export function pushChannel(key: string): string {
  return `${key}:written`;
}

/** The message a write publishes; `from` names the writer (its own echo is ignored). */
export function pushMessage(from: string): string {
  return JSON.stringify({ "x-maintenance": 1, written: from });
}

/** The writer named by a message of ours, else `undefined` (not ours: ignored). */
export function pushSender(text: string): string | undefined {
  if (text.length > 256) return undefined;
  let m: { "x-maintenance"?: unknown; written?: unknown } | null;
  try {
    m = JSON.parse(text);
  } catch {
    return undefined;
  }
  return m !== null && typeof m === "object" && m["x-maintenance"] === 1 &&
      typeof m.written === "string"
    ? m.written
    : undefined;
}

/**
 * A cache store of your own (Django's cache API shape: `get`, `set`, `delete`) as the
 * shared cache of `cache: { store }`, with the same policy as `redisCache`: asked on
 * every check, bounded, skipped for a second after it fails, a key whose delete failed
 * deleted before it is trusted again.
 *
 * @example
 * ```ts
 * import { createMaintenance, MemoryStore } from "@x/maintenance";
 * import { sharedCache } from "@x/maintenance/redis";
 * const map = new Map<string, string>();
 * const mm = createMaintenance({
 *   store: new MemoryStore(),
 *   cache: {
 *     ttlMs: 5000,
 *     store: sharedCache({
 *       get: (k) => Promise.resolve(map.get(k) ?? null),
 *       set: (k, v) => Promise.resolve(void map.set(k, v)),
 *       delete: (k) => Promise.resolve(void map.delete(k)),
 *     }),
 *   },
 * });
 * ```
 */
export function sharedCache(store: CacheStore): CacheStore {
  return withPush(store, undefined);
}

/** `sharedCache(store)` that also publishes writes on `bus` (and listens to it). */
export function withPush(
  store: CacheStore,
  bus: ((context: LayerContext) => PushBus) | undefined,
): CacheStore {
  if (
    typeof store?.get !== "function" || typeof store.set !== "function" ||
    typeof store.delete !== "function"
  ) {
    throw new TypeError(
      "sharedCache takes a store with get(), set() and delete() (Django's cache API)",
    );
  }
  return Object.assign(Object.create(store), {
    [LAYER]: (context: LayerContext) =>
      sharedLayer(store, context, bus?.(context)),
  });
}

/** The layer of one controller's cache over `store`. */
function sharedLayer(
  store: CacheStore,
  context: LayerContext,
  bus: PushBus | undefined,
): Layer {
  const { key, ttlMs, timeoutMs, now, report } = context;
  /** The operation whose failure streak is on. */
  let failed: CacheOp | undefined;
  /** While failing, when to ask again (ms since epoch). */
  let retryAt = -Infinity;
  /** A write could not delete the key: delete it before trusting the cache. */
  let deletePending = false;
  /** This layer, in the messages it publishes: made at the first (Workers allow no
   * random values at module scope, where an app may create its controller). */
  let id: string | undefined;
  /** Push: subscribing (trusted until it fails), subscribed, or lost. */
  let subscription: "starting" | "up" | "down" = "starting";
  /** The next read goes to the store: a message or a reconnect said it changed. */
  let direct = false;
  /** When the last re-read was asked (performance.now()); -Infinity: none under way. */
  let rereadAsked = -Infinity;

  /** Streaks ended so far: an operation begun during one is part of it. */
  let ended = 0;

  /** `op` failed; `since`: the streaks ended when it began (told only if none since). */
  function fail(error: unknown, op: CacheOp, since = ended): void {
    retryAt = now() + RETRY_MS;
    if (failed !== undefined) return;
    failed = op;
    if (error !== undefined && since === ended) report(error);
  }

  function ok(op: CacheOp): void {
    if (failed !== op) return;
    failed = undefined;
    ended++;
  }

  /** The store changed elsewhere: read it again now, one re-read at a time. */
  function changed(): void {
    direct = true;
    const t = performance.now();
    // A re-read under way asks again when it ends (unless the core never ran it).
    if (t - rereadAsked < timeoutMs) return;
    rereadAsked = t;
    context.reread();
  }

  bus?.listen?.({
    message(text) {
      const from = pushSender(text);
      if (from !== undefined && from !== id) changed();
    },
    up() {
      subscription = "up";
      ok("subscribe");
      changed(); // messages sent while it was away are lost
    },
    down(error) {
      if (subscription === "down") return;
      subscription = "down";
      fail(error, "subscribe");
      // States read under push were kept for the TTL: read again, now polling.
      context.reread();
    },
  });

  /** A hit (text), a miss to fill after the store read (`null`), or `undefined`. */
  async function ask(ms: number): Promise<string | null | undefined> {
    let hit: string | null | undefined;
    const since = ended;
    try {
      if (deletePending) {
        // The key may hold a state older than this process's last write.
        await withTimeout(() => store.delete(key), ms, `cache delete ${key}`);
        deletePending = false;
        ok("delete");
        return null;
      }
      hit = await withTimeout(() => store.get(key), ms, `cache get ${key}`);
      ok("get");
    } catch (e) {
      fail(e, deletePending ? "delete" : "get", since);
      return undefined;
    }
    if (hit === null || hit === undefined) return null;
    try {
      checkState(hit, `cache key ${key}`);
      return hit;
    } catch (e) {
      fail(e, "get"); // a miss: the store's state overwrites it
      return null;
    }
  }

  /** Fills the key; `quiet`: a failure is no streak (best effort, after a push). */
  function fill(text: string | null, quiet = false): void {
    const ttl = ttlMs === Infinity
      ? null
      : Math.max(1, Math.ceil(ttlMs / 1000));
    const since = ended;
    Promise.resolve()
      .then(() => store.set(key, text ?? "0", ttl))
      .then(() => ok("set"), (e) => quiet || fail(e, "set", since));
  }

  function remove(): Promise<void> {
    const since = ended;
    return withTimeout(
      () => store.delete(key),
      timeoutMs,
      `cache delete ${key}`,
    )
      .then(() => {
        deletePending = false;
        ok("delete");
      }, (e) => {
        deletePending = true;
        fail(e, "delete", since);
      });
  }

  function publish(): Promise<void> {
    if (bus === undefined) return Promise.resolve();
    const since = ended;
    return withTimeout(
      () => bus.publish(pushMessage(id ??= crypto.randomUUID())),
      timeoutMs,
      `publish on ${pushChannel(key)}`,
    ).then(() => ok("publish"), (e) => fail(e, "publish", since));
  }

  /** The store's text, skipping the key: after a message or a reconnect. */
  async function readDirect(
    readStore: (ms: number) => Promise<string | null>,
    current: () => boolean,
  ): Promise<string | null> {
    direct = false;
    try {
      const text = await readStore(timeoutMs);
      // The state read after the message is the new one: the key gets it too, if it
      // can (the cache's connection may come back after the subscriber's).
      if (current() && !deletePending && failed === undefined) fill(text, true);
      return text;
    } finally {
      rereadAsked = -Infinity;
      if (direct) changed(); // a message came during the read
    }
  }

  return {
    get failing() {
      return failed !== undefined;
    },
    get pushes() {
      return bus?.listen !== undefined && subscription !== "down" &&
        failed === undefined;
    },
    async read(readStore, current) {
      if (direct) return await readDirect(readStore, current);
      const started = performance.now();
      let fillIt = false;
      // While failing, asked once per RETRY_MS.
      const t = now();
      if (failed === undefined || t >= retryAt) {
        if (failed !== undefined) retryAt = t + RETRY_MS;
        const hit = await ask(Math.max(1, Math.floor(timeoutMs / 2)));
        if (typeof hit === "string") return hit;
        fillIt = hit === null;
      }
      const left = timeoutMs - (performance.now() - started);
      const text = await readStore(Math.max(1, Math.floor(left)));
      // Not after a write through this process: the key it deleted would get the old state.
      if (fillIt && current()) fill(text);
      return text;
    },
    async written() {
      // Every instance reads the store next: the ones polling the key (deleted), and
      // the subscribed ones (told). Sent together on one connection: DEL runs first.
      await Promise.all([remove(), publish()]);
      // Another process's store read, in flight during this write, may put the old
      // state back: delete once more after such a read has ended, and tell again.
      context.later(() => {
        remove();
        publish();
      }, timeoutMs + 250);
    },
    clockBack() {
      retryAt = -Infinity;
    },
  };
}
