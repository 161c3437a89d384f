/**
 * Store reads under load: the state in S3 (s3rver, through the counting proxy of
 * scripts/test_servers.ts, which counts every GET that reaches it), a burst of
 * concurrent HTTP requests against the app with the middleware and its cache, then
 * against the same app with a naive middleware that reads the store on every request.
 *
 * @module
 */
import type { MiddlewareHandler } from "hono";
import { createMaintenance } from "../src/maintenance.ts";
import { MemoryStore } from "../stores/memory.ts";
import { parseState, serializeState } from "../src/_state.ts";
import { S3Store } from "../stores/s3.ts";
import {
  S3RVER_CREDENTIALS,
  type S3rverHandle,
  startCountingProxy,
} from "./test_servers.ts";
import { copyPage, makeApp } from "./bench_apps.ts";
import { load, type LoadTool } from "./bench_load.ts";
import { serve } from "./bench_util.ts";

/** The store results. */
export interface StoreResult {
  /** Requests answered during the cached burst. */
  requests: number;
  /** Concurrent connections. */
  concurrency: number;
  /** The cache TTL, ms. */
  ttl_ms: number;
  /** Length of the cached burst, ms. */
  duration_ms: number;
  /** S3 GETs during the cached burst. */
  store_reads: number;
  /** The goal: duration / TTL + 1 (one process). */
  max_store_reads: number;
  /** S3 GETs during the naive burst (one per request). */
  naive_store_reads: number;
  /** Requests answered during the naive burst. */
  naive_requests: number;
  /** Length of the naive burst, ms. */
  naive_duration_ms: number;
  /** The load tool. */
  tool: LoadTool;
}

function s3Store(endpoint: string, bucket: string, key: string): S3Store {
  return new S3Store({
    bucket,
    key,
    endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: S3RVER_CREDENTIALS,
    timeoutMs: 2000,
  });
}

/**
 * Runs both bursts against s3rver and counts the reads.
 *
 * @example
 * ```ts
 * const s3 = await startS3rver({ bucket: "bench" });
 * const r = await benchStore(s3, { tool: "wrk", connections: 50, durationMs: 2000, ttlMs: 250 });
 * await s3.stop();
 * ```
 */
export async function benchStore(
  s3: S3rverHandle,
  options: {
    tool: LoadTool;
    connections: number;
    durationMs: number;
    ttlMs: number;
  },
): Promise<StoreResult> {
  const key = "bench/store_burst.txt";
  const direct = s3Store(s3.endpoint, s3.bucket, key);
  await direct.write(serializeState({ enabled: false }));
  direct.client.destroy();
  const proxy = await startCountingProxy(s3.endpoint);
  const cachedStore = s3Store(proxy.url, s3.bucket, key);
  const naiveStore = s3Store(proxy.url, s3.bucket, key);
  try {
    // The same routes as every other variant (the page route is not requested here).
    const mmOn = createMaintenance({ store: new MemoryStore() });
    await mmOn.enable();
    const page = await copyPage(mmOn);

    const mm = createMaintenance({
      store: cachedStore,
      cache: { ttlMs: options.ttlMs },
    });
    const naive: MiddlewareHandler = async (c, next) => {
      if (parseState(await naiveStore.read()).enabled) {
        return c.text("maintenance", 503);
      }
      await next();
    };
    const burst = async (mw: MiddlewareHandler) => {
      const server = await serve(makeApp(page, mw).fetch);
      try {
        proxy.reset();
        const r = await load(server.url + "/", {
          tool: options.tool,
          connections: options.connections,
          durationMs: options.durationMs,
        });
        if (r.errors > 0) throw new Error(`store burst: ${r.errors} errors`);
        return { ...r, reads: proxy.counts.get };
      } finally {
        await server.stop();
      }
    };
    const cached = await burst(mm.middleware() as MiddlewareHandler);
    const naiveRun = await burst(naive);
    return {
      requests: cached.requests,
      concurrency: options.connections,
      ttl_ms: options.ttlMs,
      duration_ms: Math.round(cached.wallMs),
      store_reads: cached.reads,
      max_store_reads: Math.floor(cached.wallMs / options.ttlMs + 1),
      naive_store_reads: naiveRun.reads,
      naive_requests: naiveRun.requests,
      naive_duration_ms: Math.round(naiveRun.wallMs),
      tool: options.tool,
    };
  } finally {
    cachedStore.client.destroy();
    naiveStore.client.destroy();
    await proxy.stop();
  }
}
