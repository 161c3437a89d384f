/**
 * Shared pieces of the benchmark (scripts/bench.ts): which runtime this is, an HTTP
 * server on a free loopback port under Deno or Bun, interleaved timed rounds, medians,
 * and child processes with their output. Only Web and `node:` APIs, so it runs under
 * Deno and Bun alike.
 *
 * @module
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import process from "node:process";

/** The runtime running this script. */
export type RuntimeName = "deno" | "bun";

interface DenoLike {
  version: { deno: string; v8: string; typescript: string };
  serve(
    options: {
      port: number;
      hostname: string;
      onListen?: (addr: { port: number }) => void;
    },
    handler: (req: Request, info: unknown) => Response | Promise<Response>,
  ): { addr: { port: number }; shutdown(): Promise<void> };
}

interface BunLike {
  version: string;
  serve(options: {
    port: number;
    hostname: string;
    fetch: (req: Request, server: unknown) => Response | Promise<Response>;
  }): { port: number; stop(closeActive?: boolean): void | Promise<void> };
}

const g = globalThis as { Deno?: DenoLike; Bun?: BunLike };

/**
 * The runtime running this script.
 *
 * @example
 * ```ts
 * runtime(); // "deno"
 * ```
 */
export function runtime(): RuntimeName {
  if (g.Bun) return "bun";
  if (g.Deno) return "deno";
  throw new Error("run the benchmark with Deno (deno task bench) or Bun");
}

/**
 * The runtime's version line, such as `deno 2.9.6 (v8 15.0)` or `bun 1.4.5`.
 *
 * @example
 * ```ts
 * console.log(runtimeVersion());
 * ```
 */
export function runtimeVersion(): string {
  if (g.Bun) return `bun ${g.Bun.version}`;
  const v = g.Deno!.version;
  return `deno ${v.deno} (v8 ${v.v8})`;
}

/** A running HTTP server from {@linkcode serve}. */
export interface Served {
  /** The port it listens on (127.0.0.1). */
  port: number;
  /** `http://127.0.0.1:PORT`. */
  url: string;
  /** Stops it. */
  stop(): Promise<void>;
}

/**
 * Serves a fetch handler on 127.0.0.1 and a free port with the runtime's own server
 * (`Deno.serve` or `Bun.serve`), passing it what that server passes (Deno's `info`,
 * Bun's `server`) as the second argument.
 *
 * @example
 * ```ts
 * const s = await serve(() => new Response("ok"));
 * await (await fetch(s.url)).text(); // "ok"
 * await s.stop();
 * ```
 */
export function serve(
  handler: (req: Request, info: unknown) => Response | Promise<Response>,
): Promise<Served> {
  if (g.Bun) {
    const server = g.Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch: handler,
    });
    return Promise.resolve({
      port: server.port,
      url: `http://127.0.0.1:${server.port}`,
      stop: async () => {
        await server.stop(true);
      },
    });
  }
  return new Promise((resolve) => {
    const server = g.Deno!.serve({
      port: 0,
      hostname: "127.0.0.1",
      onListen: ({ port }) =>
        resolve({
          port,
          url: `http://127.0.0.1:${port}`,
          stop: () => server.shutdown(),
        }),
    }, handler);
  });
}

/**
 * The median of some numbers (the mean of the middle two for an even count).
 *
 * @example
 * ```ts
 * median([3, 1, 2]); // 2
 * ```
 */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * Per-variant figures from interleaved rounds, with load that comes and goes taken
 * out: each round's figures are divided by that round's geometric mean over all
 * variants, the median of those is taken per variant, and scaled back by the median
 * round mean. A ratio of two results is then the median ratio of the two within a
 * round, and a round that the whole machine ran slow in counts no more than any other.
 *
 * @example
 * ```ts
 * roundMedians({ a: [10, 20, 10], b: [20, 40, 20] }); // { a: ~10.6, b: ~21.2 }, a/b = 0.5
 * ```
 */
export function roundMedians<K extends string>(
  results: Record<K, number[]>,
): Record<K, number> {
  const names = Object.keys(results) as K[];
  const rounds = Math.min(...names.map((n) => results[n].length));
  const means: number[] = [];
  for (let r = 0; r < rounds; r++) {
    let logSum = 0;
    for (const n of names) logSum += Math.log(results[n][r]);
    means.push(Math.exp(logSum / names.length));
  }
  const scale = median(means);
  return Object.fromEntries(names.map((n) => [
    n,
    median(results[n].slice(0, rounds).map((x, r) => x / means[r])) * scale,
  ])) as Record<K, number>;
}

/**
 * Runs `rounds` interleaved rounds of every variant (each round runs each variant
 * once, in a new random order, so no variant always runs first or right after the
 * same one) and returns each variant's results in round order.
 *
 * @example
 * ```ts
 * const r = await interleave({ a: () => 1, b: () => 2 }, 3); // { a: [1,1,1], b: [2,2,2] }
 * ```
 */
export async function interleave<K extends string>(
  variants: Record<K, () => number | Promise<number>>,
  rounds: number,
): Promise<Record<K, number[]>> {
  const names = Object.keys(variants) as K[];
  const out = Object.fromEntries(
    names.map((n) => [n, [] as number[]]),
  ) as Record<
    K,
    number[]
  >;
  for (let r = 0; r < rounds; r++) {
    const order = [...names];
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    for (const name of order) {
      out[name].push(await variants[name]());
    }
  }
  return out;
}

/**
 * Whether a command is on PATH.
 *
 * @example
 * ```ts
 * hasCommand("wrk"); // true when installed
 * ```
 */
export function hasCommand(cmd: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" })
    .status === 0;
}

/** The output of a finished child process. */
export interface RunResult {
  /** Exit code (null when killed by a signal). */
  code: number | null;
  /** Everything it wrote to stdout. */
  stdout: string;
  /** Everything it wrote to stderr. */
  stderr: string;
}

/**
 * Runs a command to its end (killed after `timeoutMs`) and collects its output.
 *
 * @example
 * ```ts
 * const r = await run("wrk", ["--version"]);
 * ```
 */
export function run(
  cmd: string,
  args: string[],
  options: { env?: Record<string, string>; timeoutMs?: number; cwd?: string } =
    {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: options.cwd,
      env: options.env ? { ...process.env, ...options.env } : undefined,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Uint8Array | string) => stdout += String(d));
    child.stderr.on("data", (d: Uint8Array | string) => stderr += String(d));
    const timer = setTimeout(
      () => child.kill("SIGKILL"),
      options.timeoutMs ?? 60_000,
    );
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * Ends a child process (SIGTERM, then SIGKILL after `graceMs`) and waits for it.
 *
 * @example
 * ```ts
 * await stopChild(child);
 * ```
 */
export async function stopChild(
  child: ChildProcess,
  graceMs = 2000,
): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise<void>((resolve) =>
    child.once("exit", () => resolve())
  );
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await gone;
  clearTimeout(timer);
}

/**
 * Waits `ms` milliseconds.
 *
 * @example
 * ```ts
 * await sleep(10);
 * ```
 */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A number with thousands separators and no decimals, for the table.
 *
 * @example
 * ```ts
 * fmtInt(123456.7); // "123,457"
 * ```
 */
export function fmtInt(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "-";
}

/**
 * Renders rows as a plain-text table with a header rule.
 *
 * @example
 * ```ts
 * console.log(table([["a", "b"], ["1", "2"]]));
 * ```
 */
export function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) =>
    Math.max(...rows.map((r) => (r[i] ?? "").length))
  );
  const line = (r: string[]) =>
    r.map((c, i) => i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))
      .join("  ");
  return [
    line(rows[0]),
    widths.map((w) => "-".repeat(w)).join("  "),
    ...rows.slice(1).map(line),
  ].join("\n");
}
