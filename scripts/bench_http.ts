/**
 * Throughput over HTTP: each variant served by the runtime's own server (`Deno.serve`
 * or `Bun.serve`) on loopback, loaded by `wrk` in interleaved rounds; medians.
 *
 * Each round reports requests per wall second and per CPU second of the serving
 * process. Ratios use the CPU figure: on a small shared machine a neighbour's load
 * slows whichever variant happens to run, while the CPU the server spends per request
 * is what the variants actually differ in.
 *
 * @module
 */
import { createMaintenance } from "../src/maintenance.ts";
import { MemoryStore } from "../stores/memory.ts";
import { copyPage, guardOf, makeApp, noop } from "./bench_apps.ts";
import { load, type LoadTool } from "./bench_load.ts";
import { interleave, roundMedians, serve, type Served } from "./bench_util.ts";

/** The HTTP results (medians over rounds). */
export interface HttpResult {
  /** The load tool. */
  tool: LoadTool;
  /** Concurrent connections. */
  connections: number;
  /** Length of one round, ms. */
  round_ms: number;
  /** Rounds per variant. */
  rounds: number;
  /** The app with no middleware: requests per CPU second of the server. */
  bare_rps: number;
  /** One no-op middleware. */
  noop_rps: number;
  /** The middleware, maintenance off. */
  off_rps: number;
  /** The guard around the bare app, maintenance off. */
  guard_rps: number;
  /** off_rps / noop_rps. */
  off_ratio: number;
  /** guard_rps / bare_rps. */
  guard_ratio: number;
  /** The same, in requests per wall-clock second. */
  wall: {
    bare_rps: number;
    noop_rps: number;
    off_rps: number;
    guard_rps: number;
    off_ratio: number;
    guard_ratio: number;
  };
  /** Answers that were not 2xx/3xx, or socket errors, over all rounds. */
  errors: number;
}

type Name = "bare" | "noop" | "off" | "guard";

/**
 * Serves every variant and loads each in interleaved rounds.
 *
 * @example
 * ```ts
 * const r = await benchHttp({ tool: "wrk", connections: 32, roundMs: 2000, rounds: 5 });
 * ```
 */
export async function benchHttp(
  options: {
    tool: LoadTool;
    connections: number;
    roundMs: number;
    rounds: number;
    warmupMs: number;
  },
): Promise<HttpResult> {
  const mmOff = createMaintenance({
    store: new MemoryStore(),
    onError: () => {},
  });
  const mmOn = createMaintenance({
    store: new MemoryStore(),
    onError: () => {},
  });
  await mmOn.enable();
  const page = await copyPage(mmOn);
  const bare = makeApp(page);
  const apps: Record<
    Name,
    (req: Request, info: unknown) => Response | Promise<Response>
  > = {
    bare: bare.fetch,
    noop: makeApp(page, noop).fetch,
    off: makeApp(page, mmOff.middleware()).fetch,
    guard: guardOf(mmOff, bare.fetch),
  };
  const servers: Partial<Record<Name, Served>> = {};
  try {
    for (
      const [name, fetch] of Object.entries(apps) as [Name, typeof bare.fetch][]
    ) {
      servers[name] = await serve(fetch);
      const res = await globalThis.fetch(servers[name]!.url + "/");
      await res.arrayBuffer();
      if (res.status !== 200) {
        throw new Error(`http variant ${name} answered ${res.status}`);
      }
    }
    let errors = 0;
    const wall: Record<Name, number[]> = {
      bare: [],
      noop: [],
      off: [],
      guard: [],
    };
    const run = (name: Name, ms: number) => async () => {
      const r = await load(servers[name]!.url + "/", {
        tool: options.tool,
        connections: options.connections,
        durationMs: ms,
      });
      errors += r.errors;
      wall[name].push(r.requests / (r.wallMs / 1000));
      return r.requests / (r.cpuMs / 1000);
    };
    if (options.warmupMs > 0) {
      for (const name of Object.keys(apps) as Name[]) {
        await run(name, options.warmupMs)();
      }
      for (const k of Object.keys(wall) as Name[]) wall[k] = [];
      errors = 0;
    }
    const cpu = await interleave({
      bare: run("bare", options.roundMs),
      noop: run("noop", options.roundMs),
      off: run("off", options.roundMs),
      guard: run("guard", options.roundMs),
    }, options.rounds);
    const w = roundMedians(wall);
    const c = roundMedians(cpu);
    return {
      tool: options.tool,
      connections: options.connections,
      round_ms: options.roundMs,
      rounds: options.rounds,
      bare_rps: c.bare,
      noop_rps: c.noop,
      off_rps: c.off,
      guard_rps: c.guard,
      off_ratio: c.off / c.noop,
      guard_ratio: c.guard / c.bare,
      wall: {
        bare_rps: w.bare,
        noop_rps: w.noop,
        off_rps: w.off,
        guard_rps: w.guard,
        off_ratio: w.off / w.noop,
        guard_ratio: w.guard / w.bare,
      },
      errors,
    };
  } finally {
    for (const s of Object.values(servers)) await s?.stop();
  }
}
