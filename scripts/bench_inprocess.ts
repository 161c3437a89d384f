/**
 * In-process throughput: `app.fetch` called in a loop, no network, so the cost of what
 * runs before the routes is not hidden by I/O. Variants run in interleaved timed rounds
 * after a warm-up; each reports the median over its rounds of requests per CPU second
 * of this process (on a shared machine, wall time also measures the neighbours).
 *
 * @module
 */
import process from "node:process";
import { createMaintenance } from "../src/maintenance.ts";
import { MemoryStore } from "../stores/memory.ts";
import {
  copyPage,
  type Fetch,
  guardOf,
  makeApp,
  noop,
  noopSync,
  PAGE_PATH,
} from "./bench_apps.ts";
import { interleave, median, roundMedians } from "./bench_util.ts";

/**
 * The in-process results: requests per CPU second, medians over rounds with each
 * round's common level taken out (see `roundMedians`).
 */
export interface InProcessResult {
  /** The app with no middleware. */
  bare_rps: number;
  /** The app with one no-op middleware: the floor. */
  noop_rps: number;
  /** The app with a plain-function no-op (`(c, next) => next()`), for reference. */
  noop_sync_rps: number;
  /** The middleware, maintenance off. */
  off_rps: number;
  /** The middleware, maintenance on (503 page). */
  on_rps: number;
  /** The no-op app answering the same page with the same status. */
  noop_page_rps: number;
  /** The guard around the bare app, maintenance off. */
  guard_rps: number;
  /** The guard, maintenance on (503 page). */
  guard_on_rps: number;
  /** The bare app answering the same page with the same status. */
  bare_page_rps: number;
  /** off_rps / noop_rps. */
  off_ratio: number;
  /** on_rps / noop_page_rps. */
  on_ratio: number;
  /** guard_rps / bare_rps. */
  guard_ratio: number;
  /** guard_on_rps / bare_page_rps. */
  guard_on_ratio: number;
  /** off_rps / noop_sync_rps: against the cheapest no-op, for reference. */
  off_sync_ratio: number;
  /** Plain medians over rounds of each variant's requests per CPU second. */
  raw: Record<string, number>;
  /** Rounds per variant. */
  rounds: number;
  /** Length of one round, ms. */
  round_ms: number;
}

type Name =
  | "bare"
  | "noop"
  | "noop_sync"
  | "off"
  | "guard"
  | "on"
  | "noop_page"
  | "guard_on"
  | "bare_page";

interface Variant {
  fetch: Fetch;
  reqs: Request[];
  status: number;
}

/** What Deno.serve passes as a handler's second argument (Bun passes its server). */
const INFO = Object.freeze({
  remoteAddr: Object.freeze({
    transport: "tcp",
    hostname: "127.0.0.1",
    port: 50000,
  }),
  completed: Promise.resolve(),
});

/**
 * Runs `fetch` over `reqs` for about `ms` (wall time) and returns requests per CPU
 * second of this process: what a request costs, whatever else the machine is doing.
 */
async function timed(
  fetch: Fetch,
  reqs: Request[],
  ms: number,
): Promise<number> {
  const mask = reqs.length - 1; // a power of two
  let n = 0;
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  const end = start + ms;
  do {
    for (let k = 0; k < 64; k++) {
      // As Deno.serve and Bun.serve do: await only what is a promise.
      const r = fetch(reqs[(n + k) & mask], INFO);
      if (r instanceof Promise) await r;
    }
    n += 64;
  } while (performance.now() < end);
  const cpu = process.cpuUsage(cpu0);
  return n / ((cpu.user + cpu.system) / 1e6);
}

/**
 * Builds every variant, checks each answers as it should, warms them up, and measures
 * them in interleaved rounds.
 *
 * @example
 * ```ts
 * const r = await benchInProcess({ rounds: 10, roundMs: 200, warmupMs: 300 });
 * console.log(r.off_ratio);
 * ```
 */
export async function benchInProcess(
  options: { rounds: number; roundMs: number; warmupMs: number },
): Promise<InProcessResult> {
  const mmOff = createMaintenance({
    store: new MemoryStore(),
    onError: () => {},
  });
  const mmOn = createMaintenance({
    store: new MemoryStore(),
    onError: () => {},
  });
  await mmOn.enable({ message: "Back soon" });
  const page = await copyPage(mmOn);

  const bare = makeApp(page);
  const noopApp = makeApp(page, noop);
  const off = makeApp(page, mmOff.middleware());
  const on = makeApp(page, mmOn.middleware());
  const guard = guardOf(mmOff, bare.fetch);
  const guardOn = guardOf(mmOn, bare.fetch);

  const get = (path: string) => new Request(`http://localhost${path}`);
  const appReqs = [get("/"), get("/users/42")];
  const pageReqs = [get(PAGE_PATH), get(PAGE_PATH)];
  const rootReqs = [get("/"), get("/")];
  const variants: Record<Name, Variant> = {
    bare: { fetch: bare.fetch, reqs: appReqs, status: 200 },
    noop: { fetch: noopApp.fetch, reqs: appReqs, status: 200 },
    noop_sync: {
      fetch: makeApp(page, noopSync).fetch,
      reqs: appReqs,
      status: 200,
    },
    off: { fetch: off.fetch, reqs: appReqs, status: 200 },
    guard: { fetch: guard, reqs: appReqs, status: 200 },
    on: { fetch: on.fetch, reqs: rootReqs, status: 503 },
    noop_page: { fetch: noopApp.fetch, reqs: pageReqs, status: 503 },
    guard_on: { fetch: guardOn, reqs: rootReqs, status: 503 },
    bare_page: { fetch: bare.fetch, reqs: pageReqs, status: 503 },
  };
  const settleMs = Math.min(20, options.roundMs / 5);
  /** Checks, warms up and measures some variants, interleaved. */
  async function phase(names: Name[]): Promise<Record<string, number[]>> {
    for (const name of names) {
      const v = variants[name];
      for (const req of v.reqs) {
        const res = await v.fetch(req);
        if (res.status !== v.status) {
          throw new Error(
            `bench variant ${name}: ${req.url} answered ${res.status}, expected ${v.status}`,
          );
        }
        if (v.status === 503 && (await res.text()) !== page.body) {
          throw new Error(`bench variant ${name}: not the same page`);
        }
      }
    }
    for (const name of names) {
      await timed(variants[name].fetch, variants[name].reqs, options.warmupMs);
    }
    return await interleave(
      Object.fromEntries(names.map((name) => [
        name,
        async () => {
          // Untimed first: whatever the previous variant left behind is paid here.
          await timed(variants[name].fetch, variants[name].reqs, settleMs);
          return timed(
            variants[name].fetch,
            variants[name].reqs,
            options.roundMs,
          );
        },
      ])),
      options.rounds,
    );
  }
  // Two phases: maintenance off (as an app runs nearly always: nothing of the "on"
  // code has run yet), then on. They also differ in garbage: a 2 KB page per request.
  const offPhase = await phase(["bare", "noop", "noop_sync", "off", "guard"]);
  const onPhase = await phase(["on", "noop_page", "guard_on", "bare_page"]);
  const m = {
    ...roundMedians(offPhase),
    ...roundMedians(onPhase),
  } as Record<Name, number>;
  const raw = Object.fromEntries(
    Object.entries({ ...offPhase, ...onPhase }).map((
      [k, v],
    ) => [k, Math.round(median(v))]),
  );
  return {
    bare_rps: m.bare,
    noop_rps: m.noop,
    noop_sync_rps: m.noop_sync,
    off_rps: m.off,
    on_rps: m.on,
    noop_page_rps: m.noop_page,
    guard_rps: m.guard,
    guard_on_rps: m.guard_on,
    bare_page_rps: m.bare_page,
    off_ratio: m.off / m.noop,
    on_ratio: m.on / m.noop_page,
    guard_ratio: m.guard / m.bare,
    guard_on_ratio: m.guard_on / m.bare_page,
    off_sync_ratio: m.off / m.noop_sync,
    raw,
    rounds: options.rounds,
    round_ms: options.roundMs,
  };
}
