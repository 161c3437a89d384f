/**
 * Propagation: several demo processes (scripts/demo.ts) share one state (an S3 object
 * in s3rver, or a file) with an in-process cache; the CLI (main.ts) switches
 * maintenance on, and each instance is polled until it answers 503. The clock starts
 * when the CLI prints its confirmation, which it does right after the write.
 *
 * Push ({@linkcode benchPush}): the same over a state file with a real redis-server
 * (`MAINTENANCE_REDIS_URL`, TTL 30 s): the demos subscribe, the CLI publishes; and the
 * Redis reads (GET, GETRANGE) of a burst of requests between switches, counted by redis-server itself
 * (`INFO commandstats`).
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { createClient } from "redis";
import {
  redisReads,
  S3RVER_CREDENTIALS,
  type S3rverHandle,
  startRedis,
} from "./test_servers.ts";
import { median, type RuntimeName, sleep, stopChild } from "./bench_util.ts";

/** The propagation results. */
export interface PropagationResult {
  /** Demo processes. */
  instances: number;
  /** Their cache TTL, ms. */
  ttl_ms: number;
  /** The slowest instance over all trials: ms from the write to its first 503. */
  max_ms: number;
  /** Per trial, the slowest instance, ms. */
  trials_ms: number[];
  /** The same for switching off (until every instance answers 200 again). */
  off_max_ms: number;
  /** How long the CLI took, start to exit, ms (median). */
  cli_ms: number;
  /** `s3` or `file`. */
  store: "s3" | "file";
  /** The goal: TTL + 250 ms. */
  max_allowed_ms: number;
}

/** Where the shared state lives. */
export type PropagationStore =
  | { kind: "s3"; s3: S3rverHandle; key: string }
  | { kind: "file"; path: string };

const root = new URL("..", import.meta.url).pathname;

/** The environment without any MAINTENANCE_* or AWS_* setting of the caller. */
function cleanEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (
      v === undefined || k.startsWith("MAINTENANCE_") || k.startsWith("AWS_")
    ) {
      continue;
    }
    env[k] = v;
  }
  return env;
}

function storeEnv(store: PropagationStore): Record<string, string> {
  return store.kind === "s3"
    ? {
      MAINTENANCE_S3_ENDPOINT: store.s3.endpoint,
      AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
      AWS_REGION: "us-east-1",
    }
    : {};
}

function storeFlags(store: PropagationStore): string[] {
  return store.kind === "s3"
    ? ["--s3", `s3://${store.s3.bucket}/${store.key}`]
    : ["--file", store.path];
}

function command(rt: RuntimeName, script: string, args: string[]): string[] {
  return rt === "deno"
    ? ["deno", "run", "-A", script, ...args]
    : ["bun", script, ...args];
}

interface Demo {
  child: ChildProcess;
  url: string;
}

async function startDemo(
  rt: RuntimeName,
  store: PropagationStore,
  ttlMs: number,
  extraEnv: Record<string, string> = {},
): Promise<Demo> {
  const [cmd, ...args] = command(rt, "scripts/demo.ts", []);
  const env = {
    ...cleanEnv(),
    ...storeEnv(store),
    PORT: "0",
    HOST: "127.0.0.1",
    MAINTENANCE_CACHE_TTL_MS: String(ttlMs),
    ...(store.kind === "s3"
      ? { MAINTENANCE_S3_URL: `s3://${store.s3.bucket}/${store.key}` }
      : { MAINTENANCE_STATE_FILE: store.path }),
    ...extraEnv,
  };
  const child = spawn(cmd, args, {
    cwd: root,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stderr!.on("data", (d: Uint8Array | string) => {
    err = (err + String(d)).slice(-4000);
  });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`demo did not start within 30 s: ${err}`)),
        30_000,
      );
      child.on("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`demo exited (${code}) before listening: ${err}`));
      });
      child.stdout!.on("data", (d: Uint8Array | string) => {
        out += String(d);
        const m = /demo listening on (http:\/\/127\.0\.0\.1:\d+)\//.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
    });
    child.stdout!.removeAllListeners("data");
    child.stdout!.resume();
    child.removeAllListeners("exit");
    return { child, url };
  } catch (e) {
    await stopChild(child);
    throw e;
  }
}

/** Runs the CLI; resolves with the time its first line of output arrived, and its run time. */
function cli(
  rt: RuntimeName,
  store: PropagationStore,
  verb: "on" | "off",
  extraEnv: Record<string, string> = {},
): Promise<{ printedAt: number; ms: number }> {
  const [cmd, ...args] = command(rt, "main.ts", [verb, ...storeFlags(store)]);
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: root,
      env: { ...cleanEnv(), ...storeEnv(store), ...extraEnv },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let printedAt: number | undefined;
    let err = "";
    child.stdout.on("data", () => printedAt ??= performance.now());
    child.stderr.on("data", (d: Uint8Array | string) => err += String(d));
    child.on("error", reject);
    child.on("close", (code) => {
      if (code !== 0 || printedAt === undefined) {
        reject(
          new Error(`maintenance ${verb} failed (${code}): ${err.trim()}`),
        );
      } else resolve({ printedAt, ms: performance.now() - t0 });
    });
  });
}

/** Polls `url` until it answers `status`; resolves with the time of that answer. */
async function until(
  url: string,
  status: number,
  deadline: number,
  everyMs: number,
): Promise<number> {
  while (performance.now() < deadline) {
    try {
      const res = await fetch(url);
      await res.arrayBuffer();
      const t = performance.now();
      if (res.status === status) return t;
    } catch {
      // not answering right now: try again
    }
    await sleep(everyMs);
  }
  throw new Error(`${url} did not answer ${status} in time`);
}

/**
 * Starts the demos, flips the state with the CLI `trials` times, and times how long
 * the slowest instance takes to follow.
 *
 * @example
 * ```ts
 * const r = await benchPropagation("deno", { kind: "file", path: "/tmp/state.txt" },
 *   { instances: 3, ttlMs: 500, trials: 3 });
 * ```
 */
export async function benchPropagation(
  rt: RuntimeName,
  store: PropagationStore,
  options: {
    instances: number;
    ttlMs: number;
    trials: number;
    pollMs?: number;
  },
): Promise<PropagationResult> {
  const pollMs = options.pollMs ?? 5;
  await cli(rt, store, "off");
  const demos: Demo[] = [];
  try {
    const started = await Promise.allSettled(
      Array.from(
        { length: options.instances },
        () => startDemo(rt, store, options.ttlMs),
      ),
    );
    for (const s of started) if (s.status === "fulfilled") demos.push(s.value);
    const failed = started.find((s) => s.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
    const waitAll = (status: number) =>
      Promise.all(demos.map((d) =>
        until(
          d.url + "/",
          status,
          performance.now() + options.ttlMs + 15_000,
          pollMs,
        )
      ));
    await waitAll(200);
    const trials: number[] = [];
    const offs: number[] = [];
    const cliMs: number[] = [];
    for (let i = 0; i < options.trials; i++) {
      for (
        const [verb, status, into] of [
          ["on", 503, trials],
          ["off", 200, offs],
        ] as const
      ) {
        const seen = waitAll(status);
        const flip = await cli(rt, store, verb);
        cliMs.push(flip.ms);
        const times = await seen;
        into.push(Math.max(0, ...times.map((t) => t - flip.printedAt)));
      }
      // Let the caches settle at a random phase for the next trial.
      await sleep(Math.random() * options.ttlMs);
    }
    return {
      instances: options.instances,
      ttl_ms: options.ttlMs,
      max_ms: Math.round(Math.max(...trials)),
      trials_ms: trials.map(Math.round),
      off_max_ms: Math.round(Math.max(...offs)),
      cli_ms: Math.round(cliMs.sort((a, b) => a - b)[cliMs.length >> 1]),
      store: store.kind,
      max_allowed_ms: options.ttlMs + 250,
    };
  } finally {
    await Promise.all(demos.map((d) => stopChild(d.child)));
  }
}

/** The push results ({@linkcode benchPush}). */
export interface PushResult {
  /** Demo processes. */
  instances: number;
  /** Their cache TTL, ms. */
  ttl_ms: number;
  /** The slowest instance over all trials: ms from the CLI's write to its first 503. */
  max_ms: number;
  /** The median over trials of the slowest instance, ms. */
  median_ms: number;
  /** Per trial, the slowest instance, ms. */
  trials_ms: number[];
  /** The same for switching off (until every instance answers 200 again), max. */
  off_max_ms: number;
  /** Requests in the burst between switches (all instances). */
  burst_requests: number;
  /** How long the burst took, ms. */
  burst_ms: number;
  /** Redis reads (GET, GETRANGE) during the burst (INFO commandstats), all instances together. */
  redis_reads: number;
  /** The goal for `redis_reads`: one per instance per TTL the burst spans. */
  max_redis_reads: number;
  /** The goal for `max_ms`. */
  max_allowed_ms: number;
}

/** How many reads (GET, GETRANGE) redis-server has run. */
async function redisGets(
  admin: { info(section: string): Promise<string> },
): Promise<number> {
  return redisReads(await admin.info("commandstats"));
}

/**
 * Push over Redis: starts redis-server and `instances` demos on a state file with
 * `MAINTENANCE_REDIS_URL` (they subscribe), flips the state with the CLI (it publishes)
 * `trials` times each way, timing the slowest instance from the CLI's write to its
 * first 503 (and 200); then sends requests for `burstMs`, 10 at a time to each
 * instance, and counts redis-server's GETs meanwhile.
 *
 * @example
 * ```ts
 * const r = await benchPush("deno", { instances: 3, ttlMs: 30_000, trials: 5 });
 * ```
 */
export async function benchPush(
  rt: RuntimeName,
  options: {
    instances: number;
    ttlMs: number;
    trials: number;
    /** How long the burst between switches lasts, ms; default 5000. */
    burstMs?: number;
    pollMs?: number;
  },
): Promise<PushResult> {
  const pollMs = options.pollMs ?? 2;
  const burstFor = options.burstMs ?? 5000;
  const dir = mkdtempSync(join(tmpdir(), "x-maintenance-push-"));
  const store: PropagationStore = { kind: "file", path: join(dir, "state") };
  const redis = await startRedis();
  const admin = createClient({ url: redis.url });
  admin.on("error", () => {});
  const env = { MAINTENANCE_REDIS_URL: redis.url };
  const demos: Demo[] = [];
  try {
    await admin.connect();
    const started = await Promise.allSettled(
      Array.from(
        { length: options.instances },
        () => startDemo(rt, store, options.ttlMs, env),
      ),
    );
    for (const s of started) if (s.status === "fulfilled") demos.push(s.value);
    const failed = started.find((s) => s.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
    // Every demo subscribed before the first switch.
    const channel = "maintenance_mode_state:written";
    const deadline = performance.now() + 15_000;
    while (
      Number((await admin.pubSubNumSub(channel))[channel] ?? 0) <
        options.instances
    ) {
      if (performance.now() > deadline) {
        throw new Error(`the demos did not subscribe to ${channel}`);
      }
      await sleep(20);
    }
    const waitAll = (status: number) =>
      Promise.all(
        demos.map((d) =>
          until(d.url + "/", status, performance.now() + 15_000, pollMs)
        ),
      );
    await waitAll(200);
    const trials: number[] = [];
    const offs: number[] = [];
    for (let i = 0; i < options.trials; i++) {
      for (
        const [verb, status, into] of [
          ["on", 503, trials],
          ["off", 200, offs],
        ] as const
      ) {
        const seen = waitAll(status);
        const flip = await cli(rt, store, verb, env);
        const times = await seen;
        into.push(Math.max(0, ...times.map((t) => t - flip.printedAt)));
      }
      await sleep(Math.random() * 200);
    }
    // A burst between switches: the CLI has exited (its second publish is done).
    await sleep(300);
    const before = await redisGets(admin);
    const t0 = performance.now();
    let requests = 0;
    await Promise.all(
      demos.flatMap((d) =>
        Array.from({ length: 10 }, async () => {
          while (performance.now() - t0 < burstFor) {
            const res = await fetch(d.url + "/");
            await res.arrayBuffer();
            if (res.status !== 200) {
              throw new Error(`${d.url} answered ${res.status} in the burst`);
            }
            requests++;
          }
        })
      ),
    );
    const burstMs = performance.now() - t0;
    const reads = await redisGets(admin) - before;
    return {
      instances: options.instances,
      ttl_ms: options.ttlMs,
      max_ms: Math.round(Math.max(...trials)),
      median_ms: Math.round(median(trials)),
      trials_ms: trials.map(Math.round),
      off_max_ms: Math.round(Math.max(...offs)),
      burst_requests: requests,
      burst_ms: Math.round(burstMs),
      redis_reads: reads,
      max_redis_reads: options.instances *
        Math.max(1, Math.ceil(burstMs / options.ttlMs)),
      max_allowed_ms: 100,
    };
  } finally {
    await Promise.all(demos.map((d) => stopChild(d.child)));
    if (admin.isOpen) admin.destroy();
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
