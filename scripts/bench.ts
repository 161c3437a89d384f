/**
 * `deno task bench`: what maintenance mode costs an app, measured side by side in one
 * run (in process, over HTTP with wrk, store reads under load, propagation of a CLI
 * flip to several instances), with the goals each figure is held to. Prints readable
 * tables; with `--json`, the last line of output is one JSON object.
 *
 * Usage: deno task bench [--json] [--quick] [--runtime deno|bun] [--check]
 *                        [--only inprocess,http,store,propagation]
 *
 *   --json      end with one JSON line (the results, goals included)
 *   --quick     a few seconds, for a smoke test: short rounds, fetch() instead of wrk,
 *               a state file instead of S3 for propagation; figures are not meaningful
 *   --runtime   run under this runtime (the script re-runs itself under Bun)
 *   --check     exit 1 when a goal is missed
 *   --only      run only these parts (the others are null in the JSON)
 *
 * The full run installs wrk when it is missing (scripts/setup.ts --bench) and takes
 * about two minutes per runtime. Propagation includes push over Redis (needs
 * redis-server on PATH): `propagation.push_*`.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { benchHttp, type HttpResult } from "./bench_http.ts";
import { benchInProcess, type InProcessResult } from "./bench_inprocess.ts";
import type { LoadTool } from "./bench_load.ts";
import {
  benchPropagation,
  benchPush,
  type PropagationResult,
  type PushResult,
} from "./bench_propagation.ts";
import { benchStore, type StoreResult } from "./bench_store.ts";
import {
  fmtInt,
  hasCommand,
  run,
  runtime,
  type RuntimeName,
  runtimeVersion,
  table,
} from "./bench_util.ts";
import { type S3rverHandle, startS3rver } from "./test_servers.ts";

const PARTS = ["inprocess", "http", "store", "propagation"] as const;
type Part = typeof PARTS[number];

const root = new URL("..", import.meta.url).pathname;

function usage(message: string): never {
  console.error(`error: ${message}`);
  console.error(
    "usage: deno task bench [--json] [--quick] [--runtime deno|bun] [--check] " +
      "[--only inprocess,http,store,propagation]",
  );
  process.exit(2);
}

let args;
try {
  args = parseArgs({
    args: process.argv.slice(2),
    options: {
      json: { type: "boolean" },
      quick: { type: "boolean" },
      check: { type: "boolean" },
      runtime: { type: "string" },
      only: { type: "string" },
    },
    strict: true,
  }).values;
} catch (e) {
  usage((e as Error).message);
}

const here = runtime();
if (args.runtime !== undefined && args.runtime !== here) {
  if (args.runtime !== "deno" && args.runtime !== "bun") {
    usage(`--runtime must be deno or bun, not "${args.runtime}"`);
  }
  // Re-run this script under the other runtime, with the same arguments.
  const rest = process.argv.slice(2).filter((a, i, all) =>
    a !== "--runtime" && !a.startsWith("--runtime=") &&
    all[i - 1] !== "--runtime"
  );
  const cmd = args.runtime === "bun"
    ? ["bun", "scripts/bench.ts", ...rest]
    : ["deno", "run", "-A", "scripts/bench.ts", ...rest];
  const child = spawn(cmd[0], cmd.slice(1), { cwd: root, stdio: "inherit" });
  const code = await new Promise<number>((resolve) => {
    child.on("error", (e) => {
      console.error(`error: cannot run ${cmd[0]}: ${e.message}`);
      resolve(1);
    });
    child.on("close", (c) => resolve(c ?? 1));
  });
  process.exit(code);
}

const quick = args.quick === true;

const only = new Set<Part>(
  args.only === undefined ? PARTS : args.only.split(",").map((p) => {
    if (!(PARTS as readonly string[]).includes(p.trim())) {
      usage(`--only takes ${PARTS.join(",")}; "${p}" is not one`);
    }
    return p.trim() as Part;
  }),
);

function progress(text: string): void {
  console.error(`bench: ${text}`);
}

/** wrk for full runs, installed when missing; fetch() for quick ones. */
async function loadTool(): Promise<LoadTool> {
  if (quick) return "fetch";
  if (!hasCommand("wrk")) {
    progress("wrk is missing; installing it (scripts/setup.ts --bench)");
    const [cmd, ...setupArgs] = here === "bun"
      ? ["bun", "scripts/setup.ts", "--bench"]
      : ["deno", "run", "-A", "scripts/setup.ts", "--bench"];
    const r = await run(cmd, setupArgs, { cwd: root, timeoutMs: 600_000 });
    if (r.code !== 0 || !hasCommand("wrk")) {
      console.error(r.stderr);
      throw new Error(
        "wrk is needed for the HTTP figures; install it (apt-get install wrk) or run --quick",
      );
    }
  }
  return "wrk";
}

interface Goal {
  name: string;
  value: number;
  goal: string;
  ok: boolean;
}

const started = performance.now();
const cpuList = cpus();
const meta = {
  runtime: here as RuntimeName,
  version: runtimeVersion(),
  date: new Date().toISOString(),
  cores: cpuList.length,
  cpu: cpuList[0]?.model.trim() ?? "unknown",
  quick,
};
console.log(
  `maintenance benchmark, ${meta.version}, ${meta.cores} cores (${meta.cpu}), ${meta.date}` +
    (quick ? " [quick: figures not meaningful]" : ""),
);

let inprocess: InProcessResult | null = null;
let http: HttpResult | null = null;
let store: StoreResult | null = null;
let propagation: PropagationResult | null = null;
let push: PushResult | null = null;
const tool = only.has("http") || only.has("store") ? await loadTool() : "fetch";

if (only.has("inprocess")) {
  progress("in process (app.fetch in a loop)");
  inprocess = await benchInProcess(
    quick
      ? { rounds: 3, roundMs: 30, warmupMs: 30 }
      : { rounds: 60, roundMs: 50, warmupMs: 300 },
  );
  const r = inprocess;
  console.log(
    `\nIn process (app.fetch in a loop): requests per CPU second; ${r.rounds} interleaved rounds ` +
      `of ${r.round_ms} ms, medians with each round's common level taken out\n`,
  );
  console.log(table([
    ["variant", "req/s", "vs", "ratio"],
    ["bare app (no middleware)", fmtInt(r.bare_rps), "", ""],
    ["no-op middleware (the floor)", fmtInt(r.noop_rps), "", ""],
    [
      "plain-function no-op",
      fmtInt(r.noop_sync_rps),
      "no-op",
      (r.noop_sync_rps / r.noop_rps).toFixed(3),
    ],
    [
      "middleware, off",
      fmtInt(r.off_rps),
      "no-op",
      r.off_ratio.toFixed(3),
    ],
    [
      "middleware, off",
      "",
      "plain no-op",
      r.off_sync_ratio.toFixed(3),
    ],
    [
      "guard, off",
      fmtInt(r.guard_rps),
      "bare",
      r.guard_ratio.toFixed(3),
    ],
    ["no-op + same 503 page", fmtInt(r.noop_page_rps), "", ""],
    [
      "middleware, on (503 page)",
      fmtInt(r.on_rps),
      "no-op page",
      r.on_ratio.toFixed(3),
    ],
    ["bare + same 503 page", fmtInt(r.bare_page_rps), "", ""],
    [
      "guard, on (503 page)",
      fmtInt(r.guard_on_rps),
      "bare page",
      r.guard_on_ratio.toFixed(3),
    ],
  ]));
}

if (only.has("http")) {
  progress(`HTTP (${tool})`);
  http = await benchHttp(
    quick
      ? { tool, connections: 8, roundMs: 200, rounds: 1, warmupMs: 0 }
      : { tool, connections: 32, roundMs: 1000, rounds: 10, warmupMs: 1000 },
  );
  const r = http;
  console.log(
    `\nHTTP (${r.tool}, ${r.connections} connections, ${r.rounds} interleaved rounds of ${r.round_ms} ms): ` +
      "requests per CPU second of the server and per wall second, medians as above\n",
  );
  console.log(table([
    ["variant", "req/CPU-s", "ratio", "req/s", "ratio"],
    [
      "bare app",
      fmtInt(r.bare_rps),
      "",
      fmtInt(r.wall.bare_rps),
      "",
    ],
    ["no-op middleware", fmtInt(r.noop_rps), "", fmtInt(r.wall.noop_rps), ""],
    [
      "middleware, off (vs no-op)",
      fmtInt(r.off_rps),
      r.off_ratio.toFixed(3),
      fmtInt(r.wall.off_rps),
      r.wall.off_ratio.toFixed(3),
    ],
    [
      "guard, off (vs bare)",
      fmtInt(r.guard_rps),
      r.guard_ratio.toFixed(3),
      fmtInt(r.wall.guard_rps),
      r.wall.guard_ratio.toFixed(3),
    ],
  ]));
}

let s3: S3rverHandle | undefined;
let tmp: string | undefined;
try {
  if (only.has("store") || (only.has("propagation") && !quick)) {
    progress("starting s3rver");
    s3 = await startS3rver({ bucket: "bench" });
  }
  if (only.has("store")) {
    progress("store reads under a burst");
    store = await benchStore(
      s3!,
      quick
        ? { tool, connections: 8, durationMs: 400, ttlMs: 100 }
        : { tool, connections: 50, durationMs: 3000, ttlMs: 250 },
    );
    const r = store;
    console.log(
      `\nStore reads (S3 GETs counted at a proxy in front of s3rver), ${r.concurrency} connections\n`,
    );
    console.log(table([
      ["middleware", "requests", "ms", "S3 GETs", "goal"],
      [
        `cached (TTL ${r.ttl_ms} ms)`,
        fmtInt(r.requests),
        fmtInt(r.duration_ms),
        fmtInt(r.store_reads),
        `<= ${r.max_store_reads}`,
      ],
      [
        "naive (reads every request)",
        fmtInt(r.naive_requests),
        fmtInt(r.naive_duration_ms),
        fmtInt(r.naive_store_reads),
        "",
      ],
    ]));
  }
  if (only.has("propagation")) {
    progress("propagation of a CLI flip");
    if (quick) {
      tmp = mkdtempSync(join(tmpdir(), "x-maintenance-bench-"));
    }
    propagation = await benchPropagation(
      here,
      quick
        ? { kind: "file", path: join(tmp!, "state.txt") }
        : { kind: "s3", s3: s3!, key: "bench/propagation.txt" },
      quick
        ? { instances: 2, ttlMs: 200, trials: 1 }
        : { instances: 3, ttlMs: 500, trials: 3 },
    );
    const r = propagation;
    console.log(
      `\nPropagation: ${r.instances} demo processes (${r.store} store, cache TTL ${r.ttl_ms} ms); ` +
        `CLI flip (took ${r.cli_ms} ms) until every instance answers 503\n`,
    );
    console.log(table([
      ["", "slowest instance, ms", "goal"],
      ["on, per trial", r.trials_ms.join(", "), ""],
      ["on, max", String(r.max_ms), `<= ${r.max_allowed_ms}`],
      ["off, max", String(r.off_max_ms), ""],
    ]));
    progress("propagation with push over Redis");
    push = await benchPush(
      here,
      quick
        ? { instances: 2, ttlMs: 30_000, trials: 1, burstMs: 300 }
        : { instances: 3, ttlMs: 30_000, trials: 7, burstMs: 5000 },
    );
    const p = push;
    console.log(
      `\nPush: ${p.instances} demo processes (state file, Redis push, cache TTL ` +
        `${p.ttl_ms} ms); CLI flip until every instance answers 503, from the CLI's ` +
        "write\n",
    );
    console.log(table([
      ["", "slowest instance, ms", "goal"],
      ["on, per trial", p.trials_ms.join(", "), ""],
      ["on, median", String(p.median_ms), ""],
      ["on, max", String(p.max_ms), `<= ${p.max_allowed_ms}`],
      ["off, max", String(p.off_max_ms), ""],
      [
        `Redis reads (GET, GETRANGE), ${fmtInt(p.burst_requests)} requests in ${
          fmtInt(p.burst_ms)
        } ms`,
        String(p.redis_reads),
        `<= ${p.max_redis_reads}`,
      ],
    ]));
  }
} finally {
  await s3?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
}

const goals: Goal[] = [];
if (inprocess) {
  goals.push(
    {
      name: "inprocess.off_ratio",
      value: inprocess.off_ratio,
      goal: ">= 0.95",
      ok: inprocess.off_ratio >= 0.95,
    },
    {
      name: "inprocess.on_ratio",
      value: inprocess.on_ratio,
      goal: ">= 0.90",
      ok: inprocess.on_ratio >= 0.9,
    },
    {
      name: "inprocess.guard_ratio",
      value: inprocess.guard_ratio,
      goal: ">= 0.97",
      ok: inprocess.guard_ratio >= 0.97,
    },
  );
}
if (http) {
  goals.push({
    name: "http.off_ratio",
    value: http.off_ratio,
    goal: ">= 0.97",
    ok: http.off_ratio >= 0.97,
  });
}
if (store) {
  goals.push({
    name: "store.store_reads",
    value: store.store_reads,
    goal: `<= ${store.max_store_reads}`,
    ok: store.store_reads <= store.max_store_reads,
  });
}
if (propagation) {
  goals.push({
    name: "propagation.max_ms",
    value: propagation.max_ms,
    goal: `<= ${propagation.max_allowed_ms}`,
    ok: propagation.max_ms <= propagation.max_allowed_ms,
  });
}
if (push) {
  goals.push(
    {
      name: "propagation.push_max_ms",
      value: push.max_ms,
      goal: `<= ${push.max_allowed_ms}`,
      ok: push.max_ms <= push.max_allowed_ms,
    },
    {
      name: "propagation.push_redis_reads",
      value: push.redis_reads,
      goal: `<= ${push.max_redis_reads}`,
      ok: push.redis_reads <= push.max_redis_reads,
    },
  );
}
const seconds = (performance.now() - started) / 1000;
console.log(`\nGoals (${seconds.toFixed(0)} s)\n`);
console.log(table([
  ["figure", "value", "goal", ""],
  ...goals.map((g) => [
    g.name,
    Number.isInteger(g.value) ? String(g.value) : g.value.toFixed(3),
    g.goal,
    g.ok ? "met" : "MISSED",
  ]),
]));

if (args.json) {
  const round = (o: object | null) =>
    o === null
      ? null
      : JSON.parse(JSON.stringify(o, (_k, v) =>
        typeof v === "number" && !Number.isInteger(v)
          ? Math.round(v * 1000) / 1000
          : v));
  console.log(JSON.stringify({
    ...meta,
    seconds: Math.round(seconds),
    inprocess: round(inprocess),
    http: round(http),
    store: round(store),
    propagation: propagation === null ? null : round({
      ...propagation,
      // push_max_ms, push_redis_reads, ...: push over Redis beside the polling figures
      ...(push === null ? {} : Object.fromEntries(
        Object.entries(push).map(([k, v]) => [`push_${k}`, v]),
      )),
    }),
    goals: Object.fromEntries(
      goals.map((g) => [g.name, { value: g.value, goal: g.goal, ok: g.ok }]),
    ),
  }));
}
process.exit(args.check && goals.some((g) => !g.ok) ? 1 : 0);
