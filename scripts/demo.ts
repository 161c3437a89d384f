/**
 * The demo: a Hono app with maintenance mode, on `PORT` (default 8000), with the same
 * store settings as the CLI (`--file`/`MAINTENANCE_STATE_FILE`, or S3 from
 * `MAINTENANCE_S3_URL`) and an in-process cache of `MAINTENANCE_CACHE_TTL_MS` (default
 * 1000), or a shared Redis cache from `MAINTENANCE_REDIS_URL`. Runs on Deno
 * (`deno task demo`) and on Bun (`bun scripts/demo.ts`).
 *
 * @module
 */
import { Hono } from "hono";
import { createMaintenance } from "../mod.ts";
import type {
  CacheOptions,
  Maintenance,
  MaintenanceVariables,
} from "../mod.ts";
import {
  ConfigError,
  intFromEnv,
  processEnv,
  storeFromEnv,
} from "../src/env_config.ts";

function fail(message: string): never {
  console.error(`error: ${message}`);
  (globalThis as { process?: { exit(code: number): never } }).process!.exit(2);
  throw new Error("unreachable");
}

async function cacheFromEnv(ttlMs: number): Promise<CacheOptions> {
  const url = processEnv("MAINTENANCE_REDIS_URL");
  if (url === undefined) return { ttlMs };
  if (!/^rediss?:\/\//.test(url)) {
    throw new ConfigError(
      "MAINTENANCE_REDIS_URL must look like redis://127.0.0.1:6379",
    );
  }
  const { createClient } = await import("redis");
  const { redisCache } = await import("../stores/redis_cache.ts");
  const client = createClient({
    url,
    socket: { reconnectStrategy: () => 500 },
  });
  client.on("error", () => {}); // reported through onError when a read fails
  await client.connect().catch((e: Error) => {
    throw new ConfigError(
      `MAINTENANCE_REDIS_URL: cannot connect to ${url}: ${e.message}`,
    );
  });
  return { ttlMs, store: redisCache(client) };
}

let port: number;
let mm: Maintenance;
try {
  port = intFromEnv("PORT", 8000, 0, 65535);
  const ttlMs = intFromEnv("MAINTENANCE_CACHE_TTL_MS", 1000, 0, 86_400_000);
  const store = await storeFromEnv();
  mm = createMaintenance({ store, cache: await cacheFromEnv(ttlMs) });
} catch (e) {
  if (e instanceof ConfigError) fail(e.message);
  throw e;
}

const app = new Hono<{ Variables: MaintenanceVariables }>();
app.get("/healthz", (c) => c.text("ok")); // registered before the middleware: always 200
app.use(mm.middleware({ ignorePaths: ["/static"] }));
app.get("/", (c) => {
  const info = c.get("maintenance");
  const banner = info.scheduled
    ? `<p><strong>Scheduled maintenance from ${info.state.startsAt}</strong></p>`
    : "";
  return c.html(
    `<!doctype html><html lang="en"><meta charset="utf-8"><title>Demo</title>` +
      `<h1>Hello from the demo app</h1>${banner}<p>Maintenance mode is off.</p></html>`,
  );
});

const hostname = processEnv("HOST") ?? "127.0.0.1";
const g = globalThis as {
  Deno?: {
    serve(
      o: {
        port: number;
        hostname: string;
        onListen(a: { port: number }): void;
      },
      h: (req: Request, info: unknown) => Response | Promise<Response>,
    ): unknown;
  };
  Bun?: {
    serve(
      o: { port: number; hostname: string; fetch: typeof app.fetch },
    ): { port: number };
  };
};
if (g.Deno) {
  g.Deno.serve({
    port,
    hostname,
    onListen: ({ port }) =>
      console.log(`demo listening on http://${hostname}:${port}/`),
  }, (req, info) => app.fetch(req, info));
} else if (g.Bun) {
  const server = g.Bun.serve({ port, hostname, fetch: app.fetch });
  console.log(`demo listening on http://${hostname}:${server.port}/`);
} else {
  fail("run the demo with Deno (deno task demo) or Bun (bun scripts/demo.ts)");
}
