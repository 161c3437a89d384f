/**
 * Store-fault and toggle scenarios run under load, shared by the short versions in
 * `tests/fault_store_test.ts` / `tests/fault_file_test.ts` (`deno task test`) and the
 * long ones in `tests/stress/` (`deno task test:stress`). Each starts real servers on
 * 127.0.0.1 (s3rver, redis-server, the app under `Deno.serve`/`Bun.serve`), drives a
 * bounded load with `scripts/load.ts`, injects the fault while the load runs, and checks
 * every answer: only the intended 200 or 503, no connection error, none slower than the
 * store timeout plus `slackMs`, `onError` told once per failure streak, and the new state
 * picked up after recovery.
 *
 * Not a test file itself (no `_test` suffix): the runner does not pick it up.
 *
 * @module
 */
import { internals } from "../src/_internal.ts";
import { RETRY_MS } from "../src/_cache.ts";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Hono } from "hono";
import { createClient } from "redis";
import { createMaintenance, type Maintenance } from "../src/maintenance.ts";
import { FileStore } from "../stores/file.ts";
import { redisCache } from "../stores/redis.ts";
import { serializeState } from "../src/_state.ts";
import type { StateStore } from "../stores/_types.ts";
import { S3Store } from "../stores/s3.ts";
import {
  type LoadResult,
  type LoadSummary,
  runLoad,
  summarize,
} from "../scripts/load.ts";
import {
  type AppServer,
  type CountingProxy,
  type RedisHandle,
  s3ClientFor,
  type S3rverHandle,
  serveApp,
  startCountingProxy,
  startRedis,
  startS3rver,
} from "../scripts/test_servers.ts";

/** How big a scenario is. */
export interface ScenarioOptions {
  /** Length of the load run, s (the stress tests use 30). */
  seconds: number;
  /** Concurrent connections (the stress tests use 64). */
  connections: number;
  /** The store (and cache) timeout, ms. Default 500. */
  timeoutMs?: number;
  /** How much slower than `timeoutMs` any answer may be, ms. Default 100. */
  slackMs?: number;
  /** In-process cache TTL, ms. Default 200. */
  ttlMs?: number;
}

/** Waits `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `cond` every 20 ms until it is true; throws after `timeoutMs`. */
export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  while (!(await cond())) {
    if (performance.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await sleep(20);
  }
  return performance.now();
}

/** An `onError` that records what it hears, with the time. */
export function errorLog(): {
  errors: { at: number; message: string }[];
  onError: (e: Error) => void;
} {
  const errors: { at: number; message: string }[] = [];
  return {
    errors,
    onError: (e) => errors.push({ at: performance.now(), message: e.message }),
  };
}

function show(samples: LoadResult["samples"], origin: number): string {
  return samples.slice(0, 5).map((s) =>
    `[${(s.start - origin).toFixed(0)}..${
      (s.end - origin).toFixed(0)
    } ms: ${s.status}]`
  ).join(" ");
}

/**
 * Checks every answer of a run: no connection error, only the statuses allowed, none
 * slower than `maxMs`.
 */
export function assertHealthy(
  result: LoadResult,
  maxMs: number,
  allowed: readonly number[] = [200, 503],
): void {
  const summary = summarize(result);
  assert.deepEqual(
    result.errors,
    {},
    `connection errors: ${JSON.stringify(summary)}`,
  );
  for (const status of Object.keys(result.statuses)) {
    assert.ok(
      allowed.includes(Number(status)),
      `unexpected status ${status}: ${JSON.stringify(summary)}`,
    );
  }
  const slow = result.samples.filter((s) => s.end - s.start > maxMs);
  assert.equal(
    slow.length,
    0,
    `${slow.length} answers took longer than ${maxMs} ms: ${
      show(slow, result.startedAt)
    } (${JSON.stringify(summary.latencyMs)})`,
  );
  assert.ok(result.requests > 0, "the load sent no request");
}

/**
 * Checks that every answer in a time window (by `performance.now()`) has `status`, and
 * that the window saw some answers.
 */
export function assertWindow(
  result: LoadResult,
  from: number,
  to: number,
  status: number,
  label: string,
): number {
  const inside = result.samples.filter((s) => s.start >= from && s.end <= to);
  const wrong = inside.filter((s) => s.status !== status);
  assert.equal(
    wrong.length,
    0,
    `${label}: ${wrong.length} of ${inside.length} answers were not ${status}: ${
      show(wrong, result.startedAt)
    }`,
  );
  assert.ok(inside.length > 0, `${label}: no answer in the window`);
  return inside.length;
}

/**
 * Runs the load against `server` while `script` runs; the load stops when the script is
 * done and at least `minMs` have gone by (or after `seconds` + 30 s at the most).
 */
async function loadDuring(
  server: AppServer,
  options: ScenarioOptions,
  script: () => Promise<void>,
): Promise<LoadResult> {
  const stop = new AbortController();
  const load = runLoad({
    url: `${server.url}/`,
    connections: options.connections,
    durationMs: Math.round(options.seconds * 1000) + 30_000,
    signal: stop.signal,
  });
  const minEnd = performance.now() + options.seconds * 1000;
  try {
    await script();
    const left = minEnd - performance.now();
    if (left > 0) await sleep(left);
  } finally {
    stop.abort();
  }
  return await load;
}

function appFor(mm: Maintenance): Hono {
  const app = new Hono();
  app.use(mm.middleware());
  app.get("/", (c) => c.text("ok"));
  return app;
}

async function writeRetrying(
  store: S3Store | FileStore,
  text: string,
): Promise<void> {
  let last: unknown;
  for (let i = 0; i < 20; i++) {
    try {
      await store.write(text);
      return;
    } catch (e) {
      last = e;
      await sleep(100);
    }
  }
  throw last;
}

/**
 * Wraps a store to see, from the outside, which reads the cache got in time: a read that
 * resolves while its signal is not aborted beat the cache's timeout, so the cache took
 * it (and a failure streak is over). Instrumentation only; the reads are the real ones.
 */
export function probeStore(
  store: StateStore,
): StateStore & { goodReads: number[]; failures: string[] } {
  const goodReads: number[] = [];
  const failures: string[] = [];
  return {
    goodReads,
    failures,
    description: store.description,
    async read(signal?: AbortSignal): Promise<string | null> {
      const start = performance.now();
      try {
        const text = await store.read(signal);
        if (!signal?.aborted) goodReads.push(performance.now());
        return text;
      } catch (e) {
        failures.push(
          `${start.toFixed(0)}+${(performance.now() - start).toFixed(0)} ms: ${
            (e as Error).message.slice(0, 160)
          }`,
        );
        throw e;
      }
    },
    write: (text: string, signal?: AbortSignal) => store.write(text, signal),
  };
}

const BUCKET = "maintenance";
const KEY = "fault/maintenance_mode_state.txt";

/**
 * S3 stopped in the middle of the run, then started again on the same port and data:
 * the last known state (off) is served meanwhile, `onError` hears of it once, and a state
 * written after the restart (on) is picked up.
 */
export async function s3StopStartScenario(
  options: ScenarioOptions,
): Promise<LoadSummary> {
  const timeoutMs = options.timeoutMs ?? 500;
  const ttlMs = options.ttlMs ?? 200;
  const slackMs = options.slackMs ?? 100;
  const phaseMs = options.seconds * 1000 / 5;
  const dir = mkdtempSync(join(tmpdir(), "maintenance-fault-s3-"));
  let s3: S3rverHandle | undefined;
  let server: AppServer | undefined;
  const clients: { destroy(): void }[] = [];
  try {
    s3 = await startS3rver({ bucket: BUCKET, directory: dir });
    const { port, endpoint } = s3;
    const writerClient = s3ClientFor(endpoint);
    const appClient = s3ClientFor(endpoint);
    clients.push(writerClient, appClient);
    const writer = new S3Store({
      bucket: BUCKET,
      key: KEY,
      client: writerClient,
      timeoutMs: 5000,
    });
    await writer.write(serializeState({ enabled: false }));
    const log = errorLog();
    const store = probeStore(
      new S3Store({ bucket: BUCKET, key: KEY, client: appClient, timeoutMs }),
    );
    const mm = createMaintenance({
      store,
      cache: { ttlMs },
      timeoutMs,
      onError: log.onError,
    });
    assert.equal(await mm.isEnabled(), false);
    server = await serveApp(appFor(mm).fetch);
    let stoppedAt = 0;
    let noticedAt = 0;
    let restartedAt = 0;
    let writtenAt = 0;
    let writeDoneAt = 0;
    let seenAt = 0;
    const result = await loadDuring(server, options, async () => {
      await sleep(phaseMs);
      stoppedAt = performance.now();
      await s3!.stop();
      noticedAt = await waitFor(
        () => log.errors.length > 0,
        10_000,
        "onError to hear that S3 is down",
      );
      await sleep(Math.max(0, stoppedAt + 2 * phaseMs - performance.now()));
      s3 = await startS3rver({ bucket: BUCKET, directory: dir, port });
      restartedAt = performance.now();
      writtenAt = performance.now();
      await writeRetrying(
        writer,
        serializeState({ enabled: true, message: "after restart" }),
      );
      writeDoneAt = performance.now();
      seenAt = await waitFor(
        async () => (await internals(mm, "test").cache.get()).state.enabled,
        RETRY_MS + timeoutMs + ttlMs + 8000,
        "the state written after the restart to be picked up",
      ).catch((e) => {
        throw new Error(
          `${(e as Error).message}; restarted at ${
            restartedAt.toFixed(0)
          }, last reads failed: ${
            store.failures.slice(-4).join(" | ")
          }; good reads ` +
            `since the restart: ${
              store.goodReads.filter((t) => t >= restartedAt).map((t) =>
                t.toFixed(0)
              ).slice(-4).join(", ") || "none"
            }; write done at ${writeDoneAt.toFixed(0)}`,
        );
      });
      await sleep(Math.max(500, phaseMs / 2));
    });
    assertHealthy(result, timeoutMs + slackMs);
    assertWindow(result, result.startedAt, writtenAt, 200, "before the write");
    assertWindow(
      result,
      noticedAt,
      restartedAt,
      200,
      "while S3 was down (last known state)",
    );
    assertWindow(result, seenAt, result.endedAt, 503, "after the new state");
    assert.ok(
      seenAt - writeDoneAt <= RETRY_MS + timeoutMs + ttlMs + 3000,
      `the new state took ${
        (seenAt - writeDoneAt).toFixed(0)
      } ms to be seen; ` +
        `reads that failed: ${store.failures.slice(-4).join(" | ")}`,
    );
    assert.equal(
      log.errors.length,
      1,
      `onError once per streak, got: ${
        JSON.stringify(log.errors.map((e) => e.message))
      }`,
    );
    assert.match(log.errors[0].message, new RegExp(`s3://${BUCKET}/${KEY}`));
    return summarize(result);
  } finally {
    for (const c of clients) c.destroy();
    await server?.stop();
    await s3?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * S3 behind a fault-injecting proxy that hangs (5 s), then answers 500, then
 * AccessDenied: the last known state (on) is served at once, no answer waits longer than
 * the timeout plus slack, `onError` hears of each streak once, and the state written
 * after recovery (off) is picked up.
 */
export async function s3ProxyFaultScenario(
  options: ScenarioOptions,
): Promise<LoadSummary> {
  const timeoutMs = options.timeoutMs ?? 500;
  const ttlMs = options.ttlMs ?? 200;
  const slackMs = options.slackMs ?? 100;
  const phaseMs = options.seconds * 1000 / 8;
  let s3: S3rverHandle | undefined;
  let proxy: CountingProxy | undefined;
  let server: AppServer | undefined;
  const clients: { destroy(): void }[] = [];
  try {
    s3 = await startS3rver({ bucket: BUCKET });
    proxy = await startCountingProxy(s3.endpoint);
    proxy.hangMs = 5000;
    const writerClient = s3ClientFor(s3.endpoint);
    // One attempt per read: each fault reaches the cache as itself (the SDK's own retries
    // of a 500 could otherwise run into the timeout first).
    const appClient = s3ClientFor(proxy.url, { maxAttempts: 1 });
    clients.push(writerClient, appClient);
    const writer = new S3Store({
      bucket: BUCKET,
      key: KEY,
      client: writerClient,
      timeoutMs: 5000,
    });
    await writer.write(
      serializeState({ enabled: true, message: "before the faults" }),
    );
    const log = errorLog();
    const probe = probeStore(
      new S3Store({ bucket: BUCKET, key: KEY, client: appClient, timeoutMs }),
    );
    const mm = createMaintenance({
      store: probe,
      cache: { ttlMs },
      timeoutMs,
      onError: log.onError,
    });
    assert.equal(await mm.isEnabled(), true);
    server = await serveApp(appFor(mm).fetch);
    const p = proxy;
    const marks: Record<string, number> = {};
    /** Waits until the proxy answered a request in `mode` with `status`. */
    const seen = (statuses: number[], after: number) => () =>
      p.requests.slice(after).some((r) =>
        r.status !== undefined && statuses.includes(r.status)
      );
    const result = await loadDuring(server, options, async () => {
      await sleep(phaseMs);
      for (const mode of ["hang", "error500", "accessDenied"] as const) {
        const from = p.requests.length;
        const errorsBefore = log.errors.length;
        marks[`${mode} from`] = performance.now();
        p.mode = mode;
        await waitFor(
          () => log.errors.length > errorsBefore,
          10_000,
          `onError to hear of the ${mode} fault`,
        );
        if (mode !== "hang") {
          await waitFor(
            seen(mode === "error500" ? [500] : [403], from),
            10_000,
            `the proxy to answer in ${mode} mode`,
          );
        }
        await sleep(
          Math.max(0, marks[`${mode} from`] + phaseMs - performance.now()),
        );
        p.mode = "pass";
        const back = marks[`${mode} to`] = performance.now();
        // Recovered: a read got through in time again (a 200).
        await waitFor(
          () => probe.goodReads.some((t) => t > back),
          RETRY_MS + timeoutMs + 5000,
          `a good read after ${mode}`,
        );
        await sleep(Math.max(300, phaseMs / 2));
      }
      marks.written = performance.now();
      await writer.write(serializeState({ enabled: false }));
      marks.seen = await waitFor(
        async () => !(await internals(mm, "test").cache.get()).state.enabled,
        RETRY_MS + timeoutMs + ttlMs + 3000,
        "the state written after recovery to be picked up",
      );
      await sleep(Math.max(500, phaseMs / 2));
    });
    assertHealthy(result, timeoutMs + slackMs);
    assertWindow(
      result,
      result.startedAt,
      marks.written,
      503,
      "before the write",
    );
    for (const mode of ["hang", "error500", "accessDenied"]) {
      assertWindow(
        result,
        marks[`${mode} from`],
        marks[`${mode} to`],
        503,
        `while S3 was in ${mode} mode (last known state)`,
      );
    }
    assertWindow(
      result,
      marks.seen,
      result.endedAt,
      200,
      "after the new state",
    );
    assert.ok(
      marks.seen - marks.written <= ttlMs + timeoutMs + 3000,
      `the new state took ${(marks.seen - marks.written).toFixed(0)} ms`,
    );
    assert.equal(
      log.errors.length,
      3,
      `onError once per streak (hang, 500, AccessDenied), got: ${
        JSON.stringify(log.errors.map((e) => e.message))
      }`,
    );
    assert.match(log.errors[0].message, /did not (answer|finish) within/);
    assert.match(log.errors[1].message, /500|InternalError|failing/);
    assert.match(log.errors[2].message, /access denied/i);
    return summarize(result);
  } finally {
    for (const c of clients) c.destroy();
    await server?.stop();
    await proxy?.stop();
    await s3?.stop();
  }
}

/**
 * A shared Redis cache that goes away in the middle of the run and comes back: the
 * middleware falls back to the store (a state written meanwhile is picked up), no answer
 * waits longer than the timeout plus slack, `onError` hears of the cache once, and the
 * cache is used again after it comes back.
 */
export async function redisDownScenario(
  options: ScenarioOptions,
): Promise<LoadSummary> {
  const timeoutMs = options.timeoutMs ?? 500;
  const ttlMs = options.ttlMs ?? 1000;
  const slackMs = options.slackMs ?? 100;
  const phaseMs = options.seconds * 1000 / 5;
  const dir = mkdtempSync(join(tmpdir(), "maintenance-fault-redis-"));
  const path = join(dir, "state.txt");
  let redis: RedisHandle | undefined;
  let server: AppServer | undefined;
  const clients: { close(): Promise<unknown>; destroy(): void }[] = [];
  try {
    redis = await startRedis();
    const { port, url } = redis;
    const connect = async () => {
      const client = createClient({
        url,
        socket: { reconnectStrategy: () => 100 },
      });
      client.on("error", () => {}); // reported through onError when a read fails
      await client.connect();
      clients.push(client);
      return client;
    };
    const appRedis = await connect();
    const writerRedis = await connect();
    const key = "fault:maintenance_mode_state";
    await new FileStore(path).write(serializeState({ enabled: false }));
    const log = errorLog();
    const mm = createMaintenance({
      store: new FileStore(path),
      cache: { ttlMs, key, store: redisCache(appRedis) },
      timeoutMs,
      onError: log.onError,
    });
    // The writer shares the cache, so its writes delete the cached entry (while Redis
    // is up); its own cache errors are not the middleware's.
    const writer = createMaintenance({
      store: new FileStore(path),
      cache: { ttlMs, key, store: redisCache(writerRedis) },
      timeoutMs,
      onError: () => {},
    });
    assert.equal(await mm.isEnabled(), false);
    assert.notEqual(await appRedis.get(key), null, "the state is cached");
    server = await serveApp(appFor(mm).fetch);
    const marks: Record<string, number> = {};
    const result = await loadDuring(server, options, async () => {
      await sleep(phaseMs);
      marks.stopped = performance.now();
      await redis!.stop();
      marks.noticed = await waitFor(
        () => log.errors.length > 0,
        10_000,
        "onError to hear that Redis is down",
      );
      await sleep(phaseMs / 2);
      marks.on = performance.now();
      await writer.enable({ message: "written while Redis is down" });
      marks.onSeen = await waitFor(
        async () => (await internals(mm, "test").cache.get()).state.enabled,
        ttlMs + RETRY_MS + timeoutMs + 3000,
        "the store's new state while Redis is down",
      );
      await sleep(Math.max(0, marks.stopped + 2 * phaseMs - performance.now()));
      redis = await startRedis({ port });
      marks.restarted = performance.now();
      await waitFor(
        () => appRedis.isReady && writerRedis.isReady,
        10_000,
        "the Redis clients to reconnect",
      );
      marks.off = performance.now();
      await writer.disable();
      marks.offSeen = await waitFor(
        async () => !(await internals(mm, "test").cache.get()).state.enabled,
        ttlMs + RETRY_MS + timeoutMs + 3000,
        "the state written after Redis came back",
      );
      await waitFor(
        async () => (await appRedis.get(key)) !== null,
        RETRY_MS + ttlMs + 3000,
        "the middleware to fill the Redis cache again",
      );
      await sleep(Math.max(500, phaseMs / 2));
    });
    assertHealthy(result, timeoutMs + slackMs);
    assertWindow(result, result.startedAt, marks.on, 200, "before Redis went");
    assertWindow(
      result,
      marks.onSeen,
      marks.off,
      503,
      "store read while Redis was down",
    );
    assertWindow(
      result,
      marks.offSeen,
      result.endedAt,
      200,
      "after Redis came back",
    );
    assert.equal(
      log.errors.length,
      1,
      `onError once for the cache streak, got: ${
        JSON.stringify(log.errors.map((e) => e.message))
      }`,
    );
    return summarize(result);
  } finally {
    for (const c of clients) {
      await Promise.race([c.close().catch(() => {}), sleep(1000)]);
      try {
        c.destroy();
      } catch {
        // already closed
      }
    }
    await server?.stop();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The state flips every 100 ms (another controller writing the same file, as the CLI
 * would) while the load runs: only 200 and 503, no 5xx, no connection error, both seen,
 * and no read of the file ever fails.
 */
export async function toggleScenario(
  options: ScenarioOptions,
): Promise<LoadSummary> {
  const timeoutMs = options.timeoutMs ?? 500;
  const slackMs = options.slackMs ?? 100;
  const dir = mkdtempSync(join(tmpdir(), "maintenance-toggle-"));
  const path = join(dir, "state.txt");
  let server: AppServer | undefined;
  try {
    const log = errorLog();
    const mm = createMaintenance({
      store: new FileStore(path),
      cache: { ttlMs: options.ttlMs ?? 50 },
      timeoutMs,
      onError: log.onError,
    });
    const toggler = createMaintenance({
      store: new FileStore(path),
      cache: false,
      onError: log.onError,
    });
    server = await serveApp(appFor(mm).fetch);
    let flips = 0;
    const result = await loadDuring(server, options, async () => {
      const end = performance.now() + options.seconds * 1000;
      while (performance.now() < end) {
        if (flips % 2 === 0) await toggler.enable({ message: `flip ${flips}` });
        else await toggler.disable();
        flips++;
        await sleep(100);
      }
    });
    assertHealthy(result, timeoutMs + slackMs);
    assert.ok((result.statuses[200] ?? 0) > 0, "some answers were 200");
    assert.ok((result.statuses[503] ?? 0) > 0, "some answers were 503");
    assert.ok(
      flips >= options.seconds * 5,
      `only ${flips} flips in ${options.seconds} s`,
    );
    assert.deepEqual(log.errors, [], "no read or write failed");
    return summarize(result);
  } finally {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
