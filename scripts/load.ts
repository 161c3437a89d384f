/**
 * A small, bounded HTTP load generator for tests and benchmarks on loopback: `connections`
 * concurrent keep-alive request loops for `durationMs`, at most `maxRequests` requests in
 * all, recording every answer's status and latency and every connection error. It only
 * targets 127.0.0.1, localhost or ::1.
 *
 * As a script it prints a JSON summary:
 *
 * ```sh
 * deno run -A scripts/load.ts http://127.0.0.1:8000/ --connections 64 --seconds 30
 * bun scripts/load.ts http://127.0.0.1:8000/ --connections 8 --seconds 3
 * ```
 *
 * @example
 * ```ts
 * import { runLoad, summarize } from "./load.ts";
 * const result = await runLoad({ url: "http://127.0.0.1:8000/", connections: 8, durationMs: 2000 });
 * console.log(summarize(result));
 * ```
 *
 * @module
 */

/** Options of {@linkcode runLoad}. */
export interface LoadOptions {
  /** The URL to request; its host must be 127.0.0.1, localhost or [::1]. */
  url: string;
  /** Concurrent request loops (each keeps its connection alive). Default 8, at most 256. */
  connections?: number;
  /** How long to run, ms. Default 3000, at most 120000. */
  durationMs?: number;
  /** Stop after this many requests in all. Default 1000000, at most 5000000. */
  maxRequests?: number;
  /** A request that takes longer than this is aborted and counted as an error. Default 10000. */
  requestTimeoutMs?: number;
  /** Request headers. */
  headers?: Record<string, string>;
  /** Stops the run early. */
  signal?: AbortSignal;
}

/** One request: when it started and ended (`performance.now()` ms) and its status (0: error). */
export interface LoadSample {
  /** `performance.now()` when the request was sent. */
  start: number;
  /** `performance.now()` when the whole body had arrived, or the request failed. */
  end: number;
  /** The HTTP status, or 0 when the request failed (connection error or timeout). */
  status: number;
}

/** What {@linkcode runLoad} saw. */
export interface LoadResult {
  /** Requests sent. */
  requests: number;
  /** `performance.now()` at the start and end of the run. */
  startedAt: number;
  /** `performance.now()` when the last loop finished. */
  endedAt: number;
  /** Answers by status code. */
  statuses: Record<string, number>;
  /** Failed requests by error (name and message, shortened). */
  errors: Record<string, number>;
  /** Every request, in the order they finished. */
  samples: LoadSample[];
}

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]"]);

function bounded(
  value: number | undefined,
  fallback: number,
  min: number,
  max: number,
  name: string,
): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new RangeError(
      `${name} must be a whole number from ${min} to ${max}`,
    );
  }
  return v;
}

function errorKey(e: unknown): string {
  const err = e as { name?: unknown; message?: unknown; code?: unknown };
  const name = typeof err?.name === "string" ? err.name : "Error";
  const code = typeof err?.code === "string" ? ` ${err.code}` : "";
  const message = typeof err?.message === "string"
    ? err.message.slice(0, 120)
    : String(e).slice(0, 120);
  return `${name}${code}: ${message}`;
}

/**
 * Runs the load and resolves when every loop has stopped (time, count or signal).
 * Throws `RangeError` for a URL off loopback or out-of-range numbers.
 *
 * @example
 * ```ts
 * import { runLoad } from "./load.ts";
 * const r = await runLoad({ url: "http://127.0.0.1:8000/", connections: 4, durationMs: 1000 });
 * console.log(r.statuses); // { "200": 1234 }
 * ```
 */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const url = new URL(options.url);
  if (
    !LOOPBACK.has(url.hostname) ||
    (url.protocol !== "http:" && url.protocol !== "https:")
  ) {
    throw new RangeError(
      `runLoad only targets http(s) on 127.0.0.1, localhost or [::1], not ${url.href}`,
    );
  }
  const connections = bounded(options.connections, 8, 1, 256, "connections");
  const durationMs = bounded(
    options.durationMs,
    3000,
    1,
    120_000,
    "durationMs",
  );
  const maxRequests = bounded(
    options.maxRequests,
    1_000_000,
    1,
    5_000_000,
    "maxRequests",
  );
  const requestTimeoutMs = bounded(
    options.requestTimeoutMs,
    10_000,
    1,
    120_000,
    "requestTimeoutMs",
  );
  const headers = options.headers ?? {};
  const result: LoadResult = {
    requests: 0,
    startedAt: performance.now(),
    endedAt: 0,
    statuses: {},
    errors: {},
    samples: [],
  };
  const deadline = result.startedAt + durationMs;
  const signal = options.signal;

  async function loop(): Promise<void> {
    while (
      performance.now() < deadline && result.requests < maxRequests &&
      !signal?.aborted
    ) {
      result.requests++;
      const start = performance.now();
      let status = 0;
      try {
        const res = await fetch(url, {
          headers,
          signal: AbortSignal.timeout(requestTimeoutMs),
        });
        await res.arrayBuffer();
        status = res.status;
        result.statuses[status] = (result.statuses[status] ?? 0) + 1;
      } catch (e) {
        const key = errorKey(e);
        result.errors[key] = (result.errors[key] ?? 0) + 1;
      }
      result.samples.push({ start, end: performance.now(), status });
    }
  }

  await Promise.all(Array.from({ length: connections }, loop));
  result.endedAt = performance.now();
  return result;
}

/** Latency percentiles (ms) of samples, and counts. */
export interface LoadSummary {
  /** Requests sent. */
  requests: number;
  /** Requests per second over the run. */
  rps: number;
  /** Answers by status. */
  statuses: Record<string, number>;
  /** Failed requests by error. */
  errors: Record<string, number>;
  /** Latency percentiles and maximum, ms. */
  latencyMs: { p50: number; p90: number; p99: number; max: number };
}

/**
 * Summarizes a run: counts, requests per second and latency percentiles.
 *
 * @example
 * ```ts
 * import { runLoad, summarize } from "./load.ts";
 * console.log(summarize(await runLoad({ url: "http://127.0.0.1:8000/" })));
 * ```
 */
export function summarize(result: LoadResult): LoadSummary {
  const lat = result.samples.map((s) => s.end - s.start).sort((a, b) => a - b);
  const pick = (q: number): number =>
    lat.length === 0 ? 0 : Math.round(
      lat[Math.min(lat.length - 1, Math.floor(q * lat.length))] *
        10,
    ) / 10;
  const seconds = Math.max(0.001, (result.endedAt - result.startedAt) / 1000);
  return {
    requests: result.requests,
    rps: Math.round(result.requests / seconds),
    statuses: result.statuses,
    errors: result.errors,
    latencyMs: {
      p50: pick(0.5),
      p90: pick(0.9),
      p99: pick(0.99),
      max: Math.round((lat.at(-1) ?? 0) * 10) / 10,
    },
  };
}

if (import.meta.main) {
  const { parseArgs } = await import("node:util");
  const g = globalThis as {
    process?: { argv: string[]; exitCode?: number };
  };
  const { values, positionals } = parseArgs({
    args: g.process?.argv.slice(2) ?? [],
    allowPositionals: true,
    options: {
      connections: { type: "string", short: "c" },
      seconds: { type: "string", short: "s" },
      "max-requests": { type: "string" },
    },
  });
  if (positionals.length !== 1) {
    console.error(
      "usage: load.ts URL [--connections N] [--seconds S] [--max-requests N]",
    );
    if (g.process) g.process.exitCode = 2;
  } else {
    const result = await runLoad({
      url: positionals[0],
      connections: values.connections ? Number(values.connections) : undefined,
      durationMs: values.seconds
        ? Math.round(Number(values.seconds) * 1000)
        : undefined,
      maxRequests: values["max-requests"]
        ? Number(values["max-requests"])
        : undefined,
    });
    console.log(JSON.stringify(summarize(result), null, 2));
  }
}
