/**
 * HTTP load for the benchmark: `wrk` (the Debian package; `scripts/setup.ts --bench`
 * installs it), or, for `--quick` runs, a small `fetch()` loop in this process. Both
 * report how many requests were answered and how much CPU this process (which serves
 * them) spent meanwhile.
 *
 * @module
 */
import process from "node:process";
import { run } from "./bench_util.ts";

/** The HTTP load tools the benchmark knows. */
export type LoadTool = "wrk" | "fetch";

/** What one load run measured. */
export interface LoadResult {
  /** Requests answered. */
  requests: number;
  /** Answers that were not 2xx/3xx. */
  errors: number;
  /** Wall time of the run, ms. */
  wallMs: number;
  /** CPU time this process (the server) used meanwhile, ms. */
  cpuMs: number;
}

/** How to load a URL. */
export interface LoadOptions {
  /** `wrk` or `fetch`. */
  tool: LoadTool;
  /** Concurrent connections. */
  connections: number;
  /** Length of the run, ms (wrk rounds it to whole seconds, at least 1). */
  durationMs: number;
}

function cpuMs(since: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1000;
}

async function wrk(url: string, o: LoadOptions): Promise<LoadResult> {
  const seconds = Math.max(1, Math.round(o.durationMs / 1000));
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const r = await run("wrk", [
    "-t",
    "1",
    "-c",
    String(o.connections),
    "-d",
    `${seconds}s`,
    url,
  ], { timeoutMs: seconds * 1000 + 30_000 });
  const cpu = cpuMs(cpu0);
  const wallMs = performance.now() - t0;
  const m = /(\d+) requests in ([\d.]+)(m?s)/.exec(r.stdout);
  if (r.code !== 0 || m === null) {
    throw new Error(
      `wrk failed (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim()}`,
    );
  }
  const errors = /Non-2xx or 3xx responses: (\d+)/.exec(r.stdout);
  const socket =
    /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/
      .exec(r.stdout);
  return {
    requests: Number(m[1]),
    errors: Number(errors?.[1] ?? 0) +
      (socket ? socket.slice(1).reduce((a, b) => a + Number(b), 0) : 0),
    wallMs: Number(m[2]) * (m[3] === "ms" ? 1 : 1000) || wallMs,
    cpuMs: cpu,
  };
}

async function fetchLoad(url: string, o: LoadOptions): Promise<LoadResult> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const end = t0 + o.durationMs;
  let requests = 0;
  let errors = 0;
  async function worker(): Promise<void> {
    while (performance.now() < end) {
      try {
        const res = await fetch(url);
        await res.arrayBuffer();
        if (res.status >= 400) errors++;
      } catch {
        errors++;
      }
      requests++;
    }
  }
  await Promise.all(Array.from({ length: o.connections }, worker));
  return {
    requests,
    errors,
    wallMs: performance.now() - t0,
    cpuMs: cpuMs(cpu0),
  };
}

/**
 * Loads `url` with the chosen tool and reports what was answered.
 *
 * @example
 * ```ts
 * const r = await load("http://127.0.0.1:8000/", { tool: "wrk", connections: 32, durationMs: 2000 });
 * console.log(r.requests / (r.wallMs / 1000), "requests/s");
 * ```
 */
export function load(url: string, options: LoadOptions): Promise<LoadResult> {
  return options.tool === "wrk" ? wrk(url, options) : fetchLoad(url, options);
}
