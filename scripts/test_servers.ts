/**
 * Test helpers that start real servers on 127.0.0.1: s3rver (a local S3), redis-server,
 * and a counting, fault-injecting HTTP proxy in front of s3rver. They use only
 * `node:` APIs, so tests that use them run under `deno test -A` and `bun test` alike.
 * Every helper returns a `stop()` that ends what it started; call it in `after()`.
 *
 * @example
 * ```ts
 * import { after, before, it } from "node:test";
 * import { s3ClientFor, startCountingProxy, startS3rver } from "../scripts/test_servers.ts";
 *
 * let s3: Awaited<ReturnType<typeof startS3rver>>;
 * before(async () => { s3 = await startS3rver({ bucket: "maintenance" }); });
 * after(() => s3.stop());
 * it("talks to S3", async () => {
 *   const proxy = await startCountingProxy(s3.endpoint);
 *   const client = s3ClientFor(proxy.url);
 *   // ... use client, check proxy.counts.get ...
 *   client.destroy();
 *   await proxy.stop();
 * });
 * ```
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import {
  createServer as createHttpServer,
  type IncomingMessage,
  request as httpRequest,
  type ServerResponse,
} from "node:http";
import {
  connect,
  createServer as createNetServer,
  type Socket,
} from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { S3Client, type S3ClientConfig } from "@aws-sdk/client-s3";
import { createClient } from "redis";

/** The access key and secret s3rver accepts. */
export const S3RVER_CREDENTIALS: {
  accessKeyId: string;
  secretAccessKey: string;
} = {
  accessKeyId: "S3RVER",
  secretAccessKey: "S3RVER",
};

/**
 * A TCP port that was free on 127.0.0.1 a moment ago (the OS picks it).
 *
 * @example
 * ```ts
 * const port = await freePort();
 * ```
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createNetServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() =>
        port > 0 ? resolve(port) : reject(new Error("no free port"))
      );
    });
  });
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Ends a child: SIGTERM, then SIGKILL if it is still there after `graceMs`. */
async function stopChild(child: ChildProcess, graceMs = 2000): Promise<void> {
  if (exited(child)) return;
  const gone = new Promise<void>((resolve) =>
    child.once("exit", () => resolve())
  );
  child.kill("SIGTERM");
  const timedOut = await Promise.race([
    gone.then(() => false),
    delay(graceMs).then(() => true),
  ]);
  if (timedOut && !exited(child)) {
    child.kill("SIGKILL");
    await Promise.race([gone, delay(1000)]);
  }
  child.stdin?.destroy();
  child.stdout?.destroy();
  child.stderr?.destroy();
}

/** Keeps the last few KB a child wrote, for error messages. */
function tail(stream: NodeJS.ReadableStream | null | undefined): () => string {
  let text = "";
  stream?.on("data", (chunk: Uint8Array | string) => {
    text = (text + String(chunk)).slice(-4000);
  });
  return () => text.trim();
}

/** A running s3rver, from {@linkcode startS3rver}. */
export interface S3rverHandle {
  /** `http://127.0.0.1:PORT`. */
  endpoint: string;
  /** The port it listens on. */
  port: number;
  /** The bucket that was created. */
  bucket: string;
  /** The directory holding its objects (removed by `stop` unless it was given). */
  directory: string;
  /** Stops the server and removes its directory (unless it was given). */
  stop(): Promise<void>;
}

/**
 * Starts s3rver under Node.js (scripts/s3rver_main.mjs) on 127.0.0.1 and a port the OS
 * picks, with its data in a new temporary directory and `bucket` created. Credentials:
 * {@linkcode S3RVER_CREDENTIALS} (use {@linkcode s3ClientFor}).
 *
 * @example
 * ```ts
 * const s3 = await startS3rver({ bucket: "maintenance" });
 * const client = s3ClientFor(s3.endpoint);
 * // ...
 * client.destroy();
 * await s3.stop();
 * ```
 */
export async function startS3rver(
  options: {
    bucket: string;
    extraBuckets?: string[];
    timeoutMs?: number;
    /** Listen on this port (to restart a stopped server in place); default: a free one. */
    port?: number;
    /**
     * Keep the objects in this directory, and leave it in place on `stop()`, so a server
     * started again on it has the same objects; default: a new temporary directory that
     * `stop()` removes.
     */
    directory?: string;
    /**
     * Run s3rver as it is, whose writes are not atomic (a read racing a write can be
     * torn); default: each object is replaced and read atomically, as S3 does (see
     * scripts/s3rver_main.mjs).
     */
    nonAtomic?: boolean;
  },
): Promise<S3rverHandle> {
  const { bucket, extraBuckets = [], timeoutMs = 15000 } = options;
  const keep = options.directory !== undefined;
  const directory = options.directory ??
    mkdtempSync(join(tmpdir(), "x-maintenance-s3rver-"));
  const script = fileURLToPath(new URL("./s3rver_main.mjs", import.meta.url));
  const args = [
    script,
    "--port",
    String(options.port ?? 0),
    "--dir",
    directory,
  ];
  if (!keep) args.push("--remove-dir");
  if (options.nonAtomic) args.push("--non-atomic");
  for (const name of [bucket, ...extraBuckets]) args.push("--bucket", name);
  const child = spawn("node", args, { stdio: ["pipe", "pipe", "pipe"] });
  const stderr = tail(child.stderr);
  const cleanup = async (): Promise<void> => {
    await stopChild(child);
    if (!keep) rmSync(directory, { recursive: true, force: true });
  };
  let port: number;
  try {
    port = await new Promise<number>((resolve, reject) => {
      let out = "";
      const timer = setTimeout(
        () =>
          reject(
            new Error(
              `s3rver did not start within ${timeoutMs} ms: ${stderr()}`,
            ),
          ),
        timeoutMs,
      );
      child.on("error", (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(
          e.code === "ENOENT"
            ? new Error("s3rver needs Node.js: `node` is not on PATH", {
              cause: e,
            })
            : e,
        );
      });
      child.on("exit", (code, signal) => {
        clearTimeout(timer);
        reject(
          new Error(
            `s3rver exited (${
              code ?? signal
            }) before it was ready: ${stderr()}`,
          ),
        );
      });
      child.stdout?.on("data", (chunk: Uint8Array | string) => {
        out += String(chunk);
        const match = /S3RVER_READY (\{.*\})/.exec(out);
        if (match) {
          clearTimeout(timer);
          resolve((JSON.parse(match[1]) as { port: number }).port);
        }
      });
    });
  } catch (e) {
    await cleanup();
    throw e;
  }
  let stopped: Promise<void> | undefined;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    bucket,
    directory,
    stop: () => stopped ??= cleanup(),
  };
}

/**
 * An S3 client for s3rver (or the counting proxy) at `endpoint`: path-style, region
 * us-east-1, credentials S3RVER/S3RVER, no default checksums. Call `destroy()` when done.
 *
 * @example
 * ```ts
 * const client = s3ClientFor("http://127.0.0.1:4568", { maxAttempts: 1 });
 * ```
 */
export function s3ClientFor(
  endpoint: string,
  config: S3ClientConfig = {},
): S3Client {
  return new S3Client({
    endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: S3RVER_CREDENTIALS,
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    ...config,
  });
}

/** A running redis-server, from {@linkcode startRedis}. */
export interface RedisHandle {
  /** `redis://127.0.0.1:PORT`. */
  url: string;
  /** The port it listens on. */
  port: number;
  /** Stops the server. */
  stop(): Promise<void>;
}

/** Sends `PING` and resolves true on `+PONG`. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    let settled = false;
    let socket: Socket | undefined = undefined;
    const done = (ok: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket?.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), 500);
    socket = connect(port, "127.0.0.1", () => socket?.write("PING\r\n"));
    let reply = "";
    socket.on("data", (chunk: Uint8Array | string) => {
      reply += String(chunk);
      if (reply.includes("\r\n")) done(reply.startsWith("+PONG"));
    });
    socket.on("error", () => done(false));
    socket.on("close", () => done(false));
  });
}

/**
 * Runs the command in argv under Node.js and ends it (SIGTERM, then SIGKILL) when this
 * wrapper gets SIGTERM/SIGINT or its stdin closes, so a server started by a test run that
 * crashed does not outlive it. A missing command prints `SPAWN_ERROR <code>`, exit 127.
 */
export const WATCHDOG: string = `
const { spawn } = require("node:child_process");
const [cmd, ...args] = process.argv.slice(1);
const child = spawn(cmd, args, { stdio: ["ignore", "inherit", "inherit"] });
child.on("error", (e) => { console.error("SPAWN_ERROR " + e.code); process.exit(127); });
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
const stop = () => {
  child.kill("SIGTERM");
  setTimeout(() => child.kill("SIGKILL"), 2000).unref();
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
process.stdin.on("end", stop);
process.stdin.on("error", stop);
process.stdin.resume();
`;

/** A node-redis client on `url`, not connected. */
function redisClient(url: string) {
  return createClient({ url });
}

/**
 * Runs `fn` with a node-redis client of its own on `url` (connection errors ignored:
 * the server may be going down), and closes it after.
 */
export async function withRedisAdmin<T>(
  url: string,
  fn: (client: ReturnType<typeof redisClient>) => Promise<T>,
): Promise<T> {
  const c = redisClient(url);
  c.on("error", () => {});
  await c.connect();
  try {
    return await fn(c);
  } finally {
    c.destroy();
  }
}

/**
 * The reads of a cache key that redis-server has run, from its `INFO commandstats`:
 * `GET` and `GETRANGE` (the bounded read `redisCache` uses when the client has it).
 */
export function redisReads(commandstats: string): number {
  let n = 0;
  for (
    const m of commandstats.matchAll(/cmdstat_(?:get|getrange):calls=(\d+)/g)
  ) {
    n += Number(m[1]);
  }
  return n;
}

/**
 * Starts `redis-server` on 127.0.0.1 and a free port, without persistence, and waits
 * until it answers `PING`. It runs under a small Node.js watchdog that stops it if the
 * test process dies. Throws if redis-server is not installed.
 *
 * @example
 * ```ts
 * const redis = await startRedis();
 * // createClient({ url: redis.url }) ...
 * await redis.stop();
 * ```
 */
export async function startRedis(
  options: {
    timeoutMs?: number;
    /** Listen on this port (to restart a stopped server in place); default: a free one. */
    port?: number;
  } = {},
): Promise<RedisHandle> {
  const timeoutMs = options.timeoutMs ?? 10000;
  let lastError: Error | undefined;
  for (let attempt = 0; attempt < (options.port ? 1 : 3); attempt++) {
    const port = options.port ?? await freePort();
    const child = spawn("node", [
      "-e",
      WATCHDOG,
      "redis-server",
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
      "--dir",
      tmpdir(), // nothing is written there: no RDB (--save ""), no AOF
    ], { stdio: ["pipe", "pipe", "pipe"] });
    const stdout = tail(child.stdout);
    const stderr = tail(child.stderr);
    let spawnError: NodeJS.ErrnoException | undefined;
    child.on("error", (e: NodeJS.ErrnoException) => spawnError = e);
    const cleanup = (): Promise<void> => stopChild(child);
    const deadline = Date.now() + timeoutMs;
    let ready = false;
    while (Date.now() < deadline) {
      if (spawnError || exited(child)) break;
      if (await ping(port)) {
        ready = true;
        break;
      }
      await delay(50);
    }
    if (ready) {
      let stopped: Promise<void> | undefined;
      return {
        url: `redis://127.0.0.1:${port}`,
        port,
        stop: () => stopped ??= cleanup(),
      };
    }
    await cleanup();
    if (spawnError?.code === "ENOENT") {
      throw new Error("startRedis needs Node.js: `node` is not on PATH", {
        cause: spawnError,
      });
    }
    if (stderr().includes("SPAWN_ERROR ENOENT")) {
      throw new Error(
        "redis-server is not installed (not on PATH); install it: apt-get install redis-server",
      );
    }
    lastError = spawnError ?? new Error(
      `redis-server on port ${port} did not answer PING within ${timeoutMs} ms` +
        ` (exit ${child.exitCode ?? child.signalCode}): ${
          stderr() || stdout()
        }`,
    );
    // The port may have been taken between freePort() and the start: try another.
  }
  throw lastError ?? new Error("redis-server did not start");
}

/**
 * What the counting proxy does with each request:
 * - `"pass"`: forward to the target unchanged;
 * - `"hang"`: wait `hangMs` (default 5 s) before forwarding, like an endpoint that does
 *   not answer;
 * - `"error500"`: answer `500 InternalError` (S3 XML error);
 * - `"accessDenied"`: answer `403 AccessDenied` (S3 XML error).
 */
export type ProxyMode = "pass" | "hang" | "error500" | "accessDenied";

/** One request seen by the proxy. */
export interface ProxyRequest {
  /** HTTP method. */
  method: string;
  /** Path and query. */
  path: string;
  /** The `If-None-Match` request header, if sent. */
  ifNoneMatch?: string;
  /** The status answered (set when the answer starts). */
  status?: number;
  /** Whether the proxy tore this answer's body (see `CountingProxy.tearNext`). */
  torn?: boolean;
}

/** A running counting proxy, from {@linkcode startCountingProxy}. */
export interface CountingProxy {
  /** `http://127.0.0.1:PORT`: use it as the S3 endpoint. */
  url: string;
  /** Requests received, by method (GET includes 304s); live, reset by `reset()`. */
  counts: { get: number; put: number; total: number };
  /** Every request received, in order. */
  requests: ProxyRequest[];
  /** The fault mode, read for each new request; default `"pass"`. */
  mode: ProxyMode;
  /** How long `"hang"` waits before forwarding, in ms; default 5000. */
  hangMs: number;
  /**
   * How many of the next `200` GET answers to tear: the body is cut short (to 1/4, 2/4,
   * 3/4 of its length in turn, so no two torn answers in a row are alike) while the
   * `ETag` is kept, as a non-atomic S3-compatible server answers a read that races a
   * write. Counts down; default 0.
   */
  tearNext: number;
  /** Zeroes the counts and forgets the requests. */
  reset(): void;
  /** Closes the proxy and every open connection. */
  stop(): Promise<void>;
}

function s3ErrorXml(code: string, message: string, path: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code>` +
    `<Message>${message}</Message><Resource>${path}</Resource>` +
    `<RequestId>proxy</RequestId></Error>`;
}

/**
 * Starts an HTTP proxy on 127.0.0.1 in front of `target` (such as s3rver's endpoint) that
 * counts GET/PUT requests and records `If-None-Match`, so tests can see how many requests
 * a store makes and that a revalidation got a `304`. It is also a fault injector: set
 * `proxy.mode` to make it hang or answer 500/403, which s3rver itself cannot be made to do.
 *
 * @example
 * ```ts
 * const proxy = await startCountingProxy(s3.endpoint);
 * const client = s3ClientFor(proxy.url);
 * proxy.mode = "hang"; // the next requests wait 5 s
 * // ...
 * await proxy.stop();
 * ```
 */
export async function startCountingProxy(
  target: string,
): Promise<CountingProxy> {
  const base = new URL(target);
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const responses = new Set<ServerResponse>();
  const sockets = new Set<Socket>();
  let tears = 0;

  const proxy: CountingProxy = {
    url: "",
    counts: { get: 0, put: 0, total: 0 },
    requests: [],
    mode: "pass",
    hangMs: 5000,
    tearNext: 0,
    reset(): void {
      proxy.counts.get = 0;
      proxy.counts.put = 0;
      proxy.counts.total = 0;
      proxy.requests.length = 0;
    },
    stop: () => Promise.resolve(),
  };

  function forward(
    req: IncomingMessage,
    res: ServerResponse,
    seen: ProxyRequest,
  ): void {
    const upstream = httpRequest({
      host: base.hostname,
      port: base.port,
      method: req.method,
      path: req.url,
      // Keep Host as the client sent it: it is part of the SigV4 signature.
      headers: req.headers,
    }, (answer) => {
      seen.status = answer.statusCode;
      if (
        req.method === "GET" && answer.statusCode === 200 && proxy.tearNext > 0
      ) {
        proxy.tearNext--;
        seen.torn = true;
        const chunks: Buffer[] = [];
        answer.on("data", (chunk: Buffer) => chunks.push(chunk));
        answer.on("end", () => {
          const whole = Buffer.concat(chunks);
          const cut = Math.floor(whole.length * (tears++ % 3 + 1) / 4);
          const half = whole.subarray(0, cut);
          res.writeHead(200, {
            ...answer.headers,
            "content-length": String(half.length),
          });
          res.end(half);
        });
        return;
      }
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on("error", (e) => {
      if (!res.headersSent) {
        seen.status = 502;
        res.writeHead(502, { "content-type": "text/plain" });
      }
      res.end(`proxy: ${e.message}`);
    });
    req.pipe(upstream);
  }

  function answerError(
    res: ServerResponse,
    seen: ProxyRequest,
    status: number,
    code: string,
  ) {
    const body = s3ErrorXml(
      code,
      code === "AccessDenied"
        ? "Access Denied"
        : "We encountered an internal error.",
      seen.path,
    );
    seen.status = status;
    res.writeHead(status, {
      "content-type": "application/xml",
      "content-length": String(new TextEncoder().encode(body).length),
    });
    res.end(body);
  }

  const server = createHttpServer((req, res) => {
    responses.add(res);
    res.on("close", () => responses.delete(res));
    const method = req.method ?? "GET";
    const seen: ProxyRequest = { method, path: req.url ?? "/" };
    const inm = req.headers["if-none-match"];
    if (typeof inm === "string") seen.ifNoneMatch = inm;
    proxy.requests.push(seen);
    proxy.counts.total++;
    if (method === "GET") proxy.counts.get++;
    if (method === "PUT") proxy.counts.put++;
    switch (proxy.mode) {
      case "hang": {
        const timer = setTimeout(() => {
          timers.delete(timer);
          if (!res.destroyed && !res.writableEnded) forward(req, res, seen);
        }, proxy.hangMs);
        timers.add(timer);
        res.on("close", () => {
          clearTimeout(timer);
          timers.delete(timer);
        });
        break;
      }
      case "error500":
        req.resume();
        answerError(res, seen, 500, "InternalError");
        break;
      case "accessDenied":
        req.resume();
        answerError(res, seen, 403, "AccessDenied");
        break;
      default:
        forward(req, res, seen);
    }
  });
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  proxy.url = `http://127.0.0.1:${port}`;

  let stopped: Promise<void> | undefined;
  proxy.stop = () =>
    stopped ??= new Promise<void>((resolve) => {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      server.close(() => resolve());
      for (const res of responses) res.destroy();
      for (const socket of sockets) socket.destroy();
      (server as { closeAllConnections?: () => void }).closeAllConnections?.();
    });
  return proxy;
}

/** A running HTTP server, from {@linkcode serveApp}. */
export interface AppServer {
  /** `http://127.0.0.1:PORT` (or `http://[::ffff:127.0.0.1]:PORT`). */
  url: string;
  /** The port it listens on. */
  port: number;
  /** The address it listens on. */
  hostname: string;
  /** Stops the server and closes its connections. */
  stop(): Promise<void>;
}

/** The fetch handler of a Hono app (or any): `(request, env) => Response`. */
export type FetchHandler = (
  request: Request,
  env: unknown,
) => Response | Promise<Response>;

interface DenoServeApi {
  serve(
    options: {
      port: number;
      hostname: string;
      onListen?: (addr: unknown) => void;
    },
    handler: FetchHandler,
  ): { addr: { port: number }; shutdown(): Promise<void> };
}

interface BunServeApi {
  serve(options: {
    port: number;
    hostname: string;
    fetch: FetchHandler;
    idleTimeout?: number;
  }): { port: number; stop(closeActive?: boolean): Promise<void> | void };
}

/**
 * Serves `fetch` (such as `app.fetch`) with the runtime's own HTTP server, `Deno.serve` or
 * `Bun.serve`, on a loopback address and a free port. The handler gets the runtime's
 * connection info as `env` (`Deno.ServeHandlerInfo` / Bun's server), as in production.
 * `hostname` may be `127.0.0.1` (default), `::1`, or `::ffff:127.0.0.1` (an IPv6 socket
 * that only accepts loopback IPv4 and sees clients as `::ffff:127.0.0.1`).
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * const app = new Hono().get("/", (c) => c.text("ok"));
 * const server = await serveApp(app.fetch);
 * await fetch(server.url);
 * await server.stop();
 * ```
 */
export function serveApp(
  fetch: FetchHandler,
  options: { hostname?: "127.0.0.1" | "::1" | "::ffff:127.0.0.1" } = {},
): Promise<AppServer> {
  const hostname = options.hostname ?? "127.0.0.1";
  const host = hostname.includes(":") ? `[${hostname}]` : hostname;
  const g = globalThis as { Deno?: DenoServeApi; Bun?: BunServeApi };
  if (g.Bun) {
    const server = g.Bun.serve({ port: 0, hostname, fetch, idleTimeout: 30 });
    let stopped: Promise<void> | undefined;
    return Promise.resolve({
      url: `http://${host}:${server.port}`,
      port: server.port,
      hostname,
      stop: () => stopped ??= Promise.resolve(server.stop(true)),
    });
  }
  if (g.Deno) {
    const server = g.Deno.serve(
      { port: 0, hostname, onListen: () => {} },
      fetch,
    );
    let stopped: Promise<void> | undefined;
    return Promise.resolve({
      url: `http://${host}:${server.addr.port}`,
      port: server.addr.port,
      hostname,
      stop: () => stopped ??= server.shutdown(),
    });
  }
  return Promise.reject(
    new Error("serveApp needs Deno or Bun (Deno.serve / Bun.serve)"),
  );
}

/** A raw HTTP/1.1 answer, from {@linkcode rawHttp}. */
export interface RawResponse {
  /** The status code (0 when the server closed without an answer). */
  status: number;
  /** The header block exactly as received (status line and header lines, CRLF-separated). */
  head: string;
  /** Header lines as [lower-cased name, value] pairs, in order. */
  headers: [string, string][];
  /** The body as text (chunked encoding is not decoded). */
  body: string;
}

/**
 * Writes `request` (a whole HTTP/1.1 request, exactly as given: nothing is normalized, so
 * paths like `/a/../b` or `/a%2e%2e/b` reach the server as written) on a fresh TCP
 * connection to 127.0.0.1:`port`, and reads until the server closes. Use it where
 * `fetch()` would clean the URL up. Add `Connection: close` to the request.
 *
 * @example
 * ```ts
 * const res = await rawHttp(8000, "GET /public/../admin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
 * console.log(res.status);
 * ```
 */
export function rawHttp(
  port: number,
  request: string,
  options: { timeoutMs?: number } = {},
): Promise<RawResponse> {
  const timeoutMs = options.timeoutMs ?? 5000;
  return new Promise((resolve, reject) => {
    const chunks: Uint8Array[] = [];
    const socket = connect(port, "127.0.0.1", () => socket.write(request));
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new Error(
          `no answer within ${timeoutMs} ms to ${request.split("\r\n")[0]}`,
        ),
      );
    }, timeoutMs);
    socket.on("data", (d: Uint8Array) => chunks.push(d));
    socket.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    socket.on("close", () => {
      clearTimeout(timer);
      const total = chunks.reduce((n, c) => n + c.length, 0);
      const all = new Uint8Array(total);
      let at = 0;
      for (const c of chunks) {
        all.set(c, at);
        at += c.length;
      }
      const text = new TextDecoder().decode(all);
      const split = text.indexOf("\r\n\r\n");
      const head = split < 0 ? text : text.slice(0, split);
      const body = split < 0 ? "" : text.slice(split + 4);
      const lines = head.split("\r\n");
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0])?.[1] ?? 0);
      const headers: [string, string][] = [];
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(":");
        if (colon > 0) {
          headers.push([
            line.slice(0, colon).trim().toLowerCase(),
            line.slice(colon + 1).trim(),
          ]);
        }
      }
      resolve({ status, head, headers, body });
    });
  });
}
