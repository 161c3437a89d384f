/**
 * Shared test helpers: temporary directories, child processes with a timeout (run to
 * completion, or kept running until a line appears), the command that runs a script
 * under Deno or Bun, and a real HTTP server on 127.0.0.1 for a fetch handler under
 * whichever runtime runs the tests. Only `node:` APIs and the runtimes' own servers,
 * so every test file runs under `deno test -A` and `bun test` alike.
 *
 * @example
 * ```ts
 * import { runProcess, scriptCommand } from "./helpers.ts";
 * const [cmd, args] = scriptCommand("deno", "main.ts", ["status"]);
 * const r = await runProcess(cmd, args, { timeoutMs: 20_000 });
 * console.log(r.code, r.stdout);
 * ```
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { after, before } from "node:test";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

/** The repository root, absolute, without a trailing slash. */
export const ROOT: string = fileURLToPath(new URL("..", import.meta.url))
  .replace(/\/$/, "");

/** A runtime the package supports first. */
export type Runtime = "deno" | "bun";

/** Both runtimes, for tests that run a child under each. */
export const RUNTIMES: readonly Runtime[] = ["deno", "bun"];

/** The runtime running these tests. */
export function currentRuntime(): Runtime {
  return "Bun" in globalThis ? "bun" : "deno";
}

/** Whether the tests run as root (where chmod does not keep anybody out). */
export function isRoot(): boolean {
  return typeof process.getuid === "function" && process.getuid() === 0;
}

/** Waits `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A new empty directory under the system temp directory. */
export function makeTempDir(prefix = "maintenance-test-"): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/**
 * A temp directory for the whole test file (made in `before`, removed in `after`) and
 * a function giving a fresh empty subdirectory of it for each case.
 */
export function useTempDirs(
  prefix: string,
): { root: () => string; fresh: () => Promise<string> } {
  let dir = "";
  let n = 0;
  before(async () => {
    dir = await makeTempDir(prefix);
  });
  after(() => removeDir(dir));
  return {
    root: () => dir,
    async fresh() {
      const d = `${dir}/case-${n++}`;
      await mkdir(d);
      return d;
    },
  };
}

/** Removes a directory tree, ignoring one that is already gone. */
export async function removeDir(path: string | undefined): Promise<void> {
  if (path) await rm(path, { recursive: true, force: true });
}

/**
 * The command line that runs `script` (relative to the repository root, or absolute)
 * under `runtime`: `deno run -A --config ROOT/deno.json script ...` or `bun script ...`.
 */
export function scriptCommand(
  runtime: Runtime,
  script: string,
  args: readonly string[] = [],
): [string, string[]] {
  const path = script.startsWith("/") ? script : `${ROOT}/${script}`;
  return runtime === "deno"
    ? ["deno", ["run", "-A", "--config", `${ROOT}/deno.json`, path, ...args]]
    : ["bun", [path, ...args]];
}

/**
 * The environment of this process without anything that would steer the code under
 * test (MAINTENANCE_*, AWS_* and AWS config files, NODE_ENV, NODE_TEST_CONTEXT, PORT,
 * HOST), plus `extra`.
 */
export function cleanEnv(
  extra: Record<string, string> = {},
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined) continue;
    if (/^(MAINTENANCE_|AWS_)/.test(k)) continue;
    if (["NODE_ENV", "NODE_TEST_CONTEXT", "PORT", "HOST"].includes(k)) continue;
    env[k] = v;
  }
  // No AWS config files or instance metadata either: only what a test passes counts.
  env.AWS_CONFIG_FILE = "/nonexistent/aws-config";
  env.AWS_SHARED_CREDENTIALS_FILE = "/nonexistent/aws-credentials";
  env.AWS_EC2_METADATA_DISABLED = "true";
  return { ...env, NO_COLOR: "1", ...extra };
}

/** How a child that ran to completion ended. */
export interface ProcessResult {
  /** Exit code, or `null` when a signal ended it. */
  code: number | null;
  /** Everything it wrote to stdout. */
  stdout: string;
  /** Everything it wrote to stderr. */
  stderr: string;
}

/** Options for {@linkcode runProcess} and {@linkcode startProcess}. */
export interface ProcessOptions {
  /** Working directory; default the repository root. */
  cwd?: string;
  /** The whole environment; default {@linkcode cleanEnv}(). */
  env?: Record<string, string>;
  /** Kill the child (SIGKILL) and reject after this long. Default 30 s. */
  timeoutMs?: number;
}

/** Runs a command to completion; rejects when it outlives its timeout. */
export function runProcess(
  cmd: string,
  args: readonly string[],
  options: ProcessOptions = {},
): Promise<ProcessResult> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, [...args], {
      cwd: options.cwd ?? ROOT,
      env: options.env ?? cleanEnv(),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout!.setEncoding("utf8");
    child.stderr!.setEncoding("utf8");
    child.stdout!.on("data", (d: string) => stdout += d);
    child.stderr!.on("data", (d: string) => stderr += d);
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(
        new Error(
          `${cmd} ${args.join(" ")} did not finish within ${timeoutMs} ms\n` +
            `stdout: ${stdout}\nstderr: ${stderr}`,
        ),
      );
    }, timeoutMs);
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

/** A child process kept running, from {@linkcode startProcess}. */
export interface RunningProcess {
  /** The child. */
  readonly child: ChildProcess;
  /** Everything it wrote so far, stdout and stderr interleaved. */
  output(): string;
  /**
   * Resolves with the first match of `pattern` in the output (past or future);
   * rejects after `timeoutMs`, or when the child exits first.
   */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** SIGTERM, then SIGKILL after 2 s; resolves when it is gone. Safe to call twice. */
  stop(): Promise<void>;
}

/** Starts a long-running command (a server) and keeps its output. */
export function startProcess(
  cmd: string,
  args: readonly string[],
  options: ProcessOptions = {},
): RunningProcess {
  const child = spawn(cmd, [...args], {
    cwd: options.cwd ?? ROOT,
    env: options.env ?? cleanEnv(),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  const listeners = new Set<() => void>();
  const onData = (d: string) => {
    out += d;
    for (const l of listeners) l();
  };
  child.stdout!.setEncoding("utf8");
  child.stderr!.setEncoding("utf8");
  child.stdout!.on("data", onData);
  child.stderr!.on("data", onData);
  let exited = false;
  const gone = new Promise<void>((resolve) => {
    child.on("close", () => {
      exited = true;
      for (const l of listeners) l();
      resolve();
    });
    child.on("error", () => {
      exited = true;
      for (const l of listeners) l();
      resolve();
    });
  });

  return {
    child,
    output: () => out,
    waitFor(pattern, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = out.match(pattern);
          if (m) {
            done();
            resolve(m);
          } else if (exited) {
            done();
            reject(
              new Error(
                `${cmd} exited (code ${child.exitCode}) before printing ${pattern}:\n${out}`,
              ),
            );
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(
            new Error(
              `${cmd} did not print ${pattern} within ${timeoutMs} ms:\n${out}`,
            ),
          );
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      });
    },
    async stop() {
      if (exited) return;
      child.kill("SIGTERM");
      const killed = await Promise.race([
        gone.then(() => false),
        sleep(2000).then(() => true),
      ]);
      if (killed && !exited) {
        child.kill("SIGKILL");
        await Promise.race([gone, sleep(2000)]);
      }
    },
  };
}

/**
 * Starts scripts/demo.ts under `runtime` on a free loopback port (`PORT=0`: the OS
 * picks it, so no other test can take it between choosing and binding), with
 * {@linkcode cleanEnv} plus `env`, and waits until it says where it listens. `url`
 * is `http://127.0.0.1:PORT`, without a trailing slash.
 */
export async function startDemo(
  runtime: Runtime,
  env: Record<string, string> = {},
  timeoutMs = 60_000,
): Promise<{ demo: RunningProcess; url: string }> {
  const [cmd, args] = scriptCommand(runtime, "scripts/demo.ts");
  const demo = startProcess(cmd, args, {
    env: cleanEnv({ PORT: "0", ...env }),
  });
  try {
    const m = await demo.waitFor(
      /demo listening on (http:\/\/127\.0\.0\.1:\d+)\//,
      timeoutMs,
    );
    return { demo, url: m[1] };
  } catch (e) {
    await demo.stop();
    throw e;
  }
}

/** A real HTTP server on 127.0.0.1, from {@linkcode serveFetch}. */
export interface TestServer {
  /** `http://127.0.0.1:PORT`. */
  readonly url: string;
  /** Stops listening. */
  stop(): Promise<void>;
}

type FetchHandler = (
  req: Request,
  env: unknown,
) => Response | Promise<Response>;

interface DenoServe {
  serve(
    options: {
      port: number;
      hostname: string;
      onListen(addr: { port: number }): void;
    },
    handler: (req: Request, info: unknown) => Response | Promise<Response>,
  ): { shutdown(): Promise<void> };
}

interface BunServe {
  serve(options: {
    port: number;
    hostname: string;
    fetch(req: Request, server: unknown): Response | Promise<Response>;
  }): { port: number; stop(closeActive?: boolean): void | Promise<void> };
}

/**
 * Serves `fetch` (say, `app.fetch`) on a free port of 127.0.0.1 with the runtime's own
 * server: `Deno.serve` (the handler gets `info` with `remoteAddr`) or `Bun.serve` (the
 * handler gets the server, with `requestIP`), exactly as an app would.
 */
export function serveFetch(fetch: FetchHandler): Promise<TestServer> {
  const g = globalThis as { Deno?: DenoServe; Bun?: BunServe };
  if (g.Bun) {
    const server = g.Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch: (req, srv) => fetch(req, srv),
    });
    return Promise.resolve({
      url: `http://127.0.0.1:${server.port}`,
      stop: async () => {
        await server.stop(true);
      },
    });
  }
  if (!g.Deno) throw new Error("serveFetch needs Deno or Bun");
  const deno = g.Deno;
  return new Promise((resolve) => {
    const server = deno.serve({
      port: 0,
      hostname: "127.0.0.1",
      onListen: ({ port }) =>
        resolve({
          url: `http://127.0.0.1:${port}`,
          stop: () => server.shutdown(),
        }),
    }, (req, info) => fetch(req, info));
  });
}

/**
 * A bypass cookie value made the way `src/bypass.ts` makes it, from outside: the HMAC
 * (keyed by `key`) over the stored hash and a period number (`Date.now()` divided by
 * `maxAge` seconds). For forging cookies in tests; kept apart from the library's code on
 * purpose, so a change to the format shows up here.
 */
export async function bypassCookieValue(
  key: string,
  stored: string,
  period: number,
): Promise<string> {
  const enc = new TextEncoder();
  const k = await crypto.subtle.importKey(
    "raw",
    enc.encode(key),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = new Uint8Array(
    await crypto.subtle.sign(
      "HMAC",
      k,
      enc.encode(`@x/maintenance bypass cookie v2\n${stored}\n${period}`),
    ),
  );
  let s = "";
  for (const b of mac) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/**
 * Runs `fn` with `Date.now` replaced by one that counts its calls in `clock.reads`, and
 * puts the real one back after. The cache's clock-free hot path is on only with the
 * real `Date.now`, so a `now` option cannot count its reads.
 */
export async function withCountedDateNow(
  fn: (clock: { reads: number }) => Promise<void>,
): Promise<void> {
  const realNow = Date.now;
  const clock = { reads: 0 };
  Date.now = () => {
    clock.reads++;
    return realNow();
  };
  try {
    await fn(clock);
  } finally {
    Date.now = realNow;
  }
}
