/**
 * The demo: a Hono app with maintenance mode, on `PORT` (default 8000), with the same
 * store settings as the CLI (`--file`/`MAINTENANCE_STATE_FILE`, or S3 from
 * `MAINTENANCE_S3_URL`) and an in-process cache of `MAINTENANCE_CACHE_TTL_MS` (default
 * 1000; `forever` for no expiry), or a shared Redis cache from `MAINTENANCE_REDIS_URL`
 * (see src/env_config.ts). A bad setting exits 2 naming the variable. Runs on Deno
 * (`deno task demo`) and on Bun (`bun scripts/demo.ts`).
 *
 * The page has a guestbook: `POST /guestbook` (a form) is its one write. In read-only
 * maintenance (`maintenance on --read-only`, or `readOnly` on the admin routes) the
 * page still answers, with a banner and without the form, and the POST gets the
 * maintenance answer (503).
 *
 * With `MAINTENANCE_ADMIN_TOKEN` set (at least 16 characters, e.g. from
 * `openssl rand -hex 32`), the admin routes are mounted at `/maintenance-mode`, for
 * requests with `Authorization: Bearer $MAINTENANCE_ADMIN_TOKEN`; without it they are
 * not mounted at all. At start the demo prints where it listens, the state file (absolute
 * path) or S3 object it reads, and whether the admin routes are mounted and where (or
 * which variable mounts them).
 *
 * @module
 */
import { adminRoutes } from "../src/admin.ts";
import { bypassCookie } from "../src/bypass.ts";
import { Hono } from "hono";
import { bearerToken } from "../src/admin.ts";
import { createMaintenance } from "../src/maintenance.ts";
import { escapeHtml } from "../src/_page.ts";
import type { Authorize } from "../src/admin.ts";
import type { Maintenance } from "../src/maintenance.ts";
import type { MaintenanceVariables } from "../src/middleware.ts";
import {
  cacheFromEnv,
  cacheSettingsFromEnv,
  ConfigError,
  intFromEnv,
  processEnv,
  storeFromEnv,
  strictProcessEnv,
} from "../src/_env_config.ts";

function fail(message: string): never {
  console.error(`error: ${message}`);
  (globalThis as { process?: { exit(code: number): never } }).process!.exit(2);
  throw new Error("unreachable");
}

let port: number;
let mm: Maintenance;
let adminAuthorize: Authorize | undefined;
/** The state file's absolute path, or the S3 object's `s3://` URL. */
let storeDescription: string;
try {
  port = intFromEnv("PORT", 8000, 0, 65535);
  // A variable that cannot be read (Deno without --allow-env) is an error, not unset.
  const adminToken = strictProcessEnv("MAINTENANCE_ADMIN_TOKEN");
  if (adminToken !== undefined) {
    try {
      adminAuthorize = bearerToken(adminToken);
    } catch (e) {
      throw new ConfigError(`MAINTENANCE_ADMIN_TOKEN: ${(e as Error).message}`);
    }
  }
  // checked before anything connects
  const cacheSettings = cacheSettingsFromEnv(strictProcessEnv);
  const store = await storeFromEnv({}, strictProcessEnv);
  storeDescription = store.description ?? "(the store)";
  const { cache } = await cacheFromEnv(cacheSettings);
  mm = createMaintenance({ store, cache, bypass: bypassCookie() });
} catch (e) {
  if (e instanceof ConfigError) fail(e.message);
  throw e;
}

const app = new Hono<{ Variables: MaintenanceVariables }>();
app.get("/healthz", (c) => c.text("ok")); // registered before the middleware: always 200
app.use(mm.middleware({ ignorePaths: ["/static"] }));
/** Where the admin routes are mounted (when MAINTENANCE_ADMIN_TOKEN is set). */
const ADMIN_PATH = "/maintenance-mode";
if (adminAuthorize !== undefined) {
  // GET /maintenance-mode, POST /maintenance-mode/on, POST /maintenance-mode/off
  app.route(ADMIN_PATH, adminRoutes(mm, { authorize: adminAuthorize }));
}
/** The guestbook: the demo's one write, kept in memory (the last 20 entries). */
const guestbook: { name: string; text: string }[] = [];
app.get("/", (c) => {
  const info = c.get("maintenance");
  const banner = info.readOnly
    ? `<p role="status"><strong>This site is read-only during maintenance${
      info.state.message ? `: ${escapeHtml(info.state.message)}` : ""
    }</strong> Reading works; the guestbook takes no entries until it is over.</p>`
    : info.scheduled
    ? `<p><strong>Scheduled maintenance from ${
      escapeHtml(info.state.startsAt ?? "")
    }</strong></p>`
    : "";
  const status = info.readOnly
    ? "Maintenance mode is on, read-only."
    : info.enabled
    ? "Maintenance mode is on: you see the site through the secret bypass."
    : "Maintenance mode is off.";
  const entries = guestbook.map((e) =>
    `<li><b>${escapeHtml(e.name)}</b>: ${escapeHtml(e.text)}</li>`
  ).join("");
  // While read-only the form is hidden: its POST would get the maintenance answer.
  const form = info.readOnly ? "" : `<form method="post" action="/guestbook">` +
    `<label>Name <input name="name" maxlength="40" required></label> ` +
    `<label>Message <input name="text" maxlength="200" required></label> ` +
    `<button>Sign</button></form>`;
  return c.html(
    `<!doctype html><html lang="en"><meta charset="utf-8"><title>Demo</title>` +
      `<h1>Hello from the demo app</h1>${banner}<p>${status}</p>` +
      `<h2>Guestbook</h2><ul id="guestbook">${entries}</ul>${form}</html>`,
  );
});
// A write: while maintenance is read-only the middleware answers it with 503.
app.post("/guestbook", async (c) => {
  const body = await c.req.parseBody();
  const name = typeof body.name === "string" ? body.name.trim() : "";
  const text = typeof body.text === "string" ? body.text.trim() : "";
  if (name === "" || text === "" || name.length > 40 || text.length > 200) {
    return c.text(
      "give a name (at most 40 characters) and a message (200)",
      400,
    );
  }
  guestbook.push({ name, text });
  guestbook.splice(0, guestbook.length - 20);
  return c.redirect("/", 303);
});

const hostname = processEnv("HOST") ?? "127.0.0.1";
/** The address as a URL's host: an IPv6 address goes in brackets (`http://[::1]:8000/`). */
const urlHost = hostname.includes(":") ? `[${hostname}]` : hostname;
/** What the demo serves, said once at start: where, which state, the admin routes. */
function listening(p: number): void {
  const base = `http://${urlHost}:${p}`;
  console.log(`demo listening on ${base}/`);
  console.log(
    `state: ${
      storeDescription.startsWith("s3://") ? "S3 object" : "state file"
    } ${storeDescription} (switch it with main.ts and the same settings: ` +
      "deno task maintenance on|off|status, or bun main.ts on|off|status)",
  );
  console.log(
    adminAuthorize !== undefined
      ? `admin routes: mounted at ${base}${ADMIN_PATH} (GET for the state, POST ` +
        `${ADMIN_PATH}/on and ${ADMIN_PATH}/off), for requests with ` +
        "Authorization: Bearer $MAINTENANCE_ADMIN_TOKEN"
      : `admin routes: not mounted; to mount them at ${ADMIN_PATH}, set ` +
        "MAINTENANCE_ADMIN_TOKEN to a token of at least 16 characters " +
        "(e.g. MAINTENANCE_ADMIN_TOKEN=$(openssl rand -hex 32))",
  );
}
/** A port in use (another demo, another dev server) or refused: say what to change. */
function cannotListen(e: unknown): never {
  const err = e as { code?: string; name?: string; message?: string };
  const inUse = err.code === "EADDRINUSE" || err.name === "AddrInUse";
  fail(
    inUse
      ? `port ${port} on ${hostname} is in use: stop what uses it, or set PORT ` +
        "to another port (PORT=0 picks a free one)"
      : `cannot listen on ${hostname} port ${port}: ${
        err.message ?? String(e)
      }; set PORT (PORT=0 picks a free one) or HOST`,
  );
}
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
  try {
    g.Deno.serve({
      port,
      hostname,
      onListen: ({ port }) => listening(port),
    }, (req, info) => app.fetch(req, info));
  } catch (e) {
    cannotListen(e);
  }
} else if (g.Bun) {
  let server: { port: number };
  try {
    server = g.Bun.serve({ port, hostname, fetch: app.fetch });
  } catch (e) {
    cannotListen(e);
  }
  listening(server.port);
} else {
  fail("run the demo with Deno (deno task demo) or Bun (bun scripts/demo.ts)");
}
