/**
 * The Hono middleware and the per-route `forceMaintenance()`.
 *
 * @module
 */
import type { Context, MiddlewareHandler, Next } from "hono";
import { matchedRoutes } from "hono/route";
import { findTargetHandler, isMiddleware } from "hono/utils/handler";
import { getPath } from "hono/utils/url";
import {
  type Adapter,
  clientIp,
  connectionIp,
  createEngine,
  privately,
  type SharedOptions,
} from "./_engine.ts";
import type { Internals } from "./_internal.ts";
import { createResponder, type RenderResult } from "./_response.ts";
import { type Snapshot, toSnapshot } from "./_state.ts";
import type { MaintenanceState } from "./_state.ts";

/**
 * What templates and handlers see as `c.get("maintenance")`.
 *
 * @example
 * ```ts
 * import type { MaintenanceInfo } from "@x/maintenance";
 * function banner(info: MaintenanceInfo): string {
 *   return info.scheduled ? `Maintenance from ${info.state.startsAt}` : "";
 * }
 * ```
 */
export interface MaintenanceInfo {
  /** Maintenance is in force now (Django's `maintenance_mode` context variable). */
  readonly enabled: boolean;
  /** Switched on with a window that has not started yet: show a banner. */
  readonly scheduled: boolean;
  /**
   * Read-only maintenance is in force: `GET`, `HEAD` and `OPTIONS` reach the app (hide
   * forms, show a banner); other methods get the maintenance response.
   */
  readonly readOnly: boolean;
  /**
   * The state as stored (message, window, ...), without the bypass secret's hash
   * (see `bypass`).
   */
  readonly state: Readonly<MaintenanceState>;
  /** A secret bypass is set (its hash is never shown: it could mint a cookie). */
  readonly bypass: boolean;
}

/**
 * The context variables the middleware sets, for typing your app:
 * `new Hono<{ Variables: MaintenanceVariables }>()`.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import type { MaintenanceVariables } from "@x/maintenance";
 * const app = new Hono<{ Variables: MaintenanceVariables }>();
 * app.get("/", (c) => c.text(c.get("maintenance").enabled ? "on" : "off"));
 * ```
 */
export type MaintenanceVariables = {
  /** The maintenance state seen by this request. */
  maintenance: MaintenanceInfo;
};

/**
 * The middleware's type: a Hono middleware that sets `c.get("maintenance")`.
 *
 * @example
 * ```ts
 * import { createMaintenance, MemoryStore, type MaintenanceMiddleware } from "@x/maintenance";
 * const mw: MaintenanceMiddleware = createMaintenance({ store: new MemoryStore() }).middleware();
 * ```
 */
export type MaintenanceMiddleware = MiddlewareHandler<
  { Variables: MaintenanceVariables }
>;

/**
 * Options of `mm.middleware()` and `maintenance()`; each replaces a Django setting.
 * The guard (`@x/maintenance/guard`) takes the same, with its callbacks over the
 * `Request` instead of the Hono `Context`.
 *
 * @example
 * ```ts
 * import type { MiddlewareOptions } from "@x/maintenance";
 * const options: MiddlewareOptions = {
 *   ignorePaths: ["/healthz", /^\/static\//],
 *   ignoreIps: ["10.0.0.0/8"],
 *   ignoreRequest: (c) => c.req.header("x-staff") === "yes",
 * };
 * ```
 */
export interface MiddlewareOptions extends SharedOptions {
  /** The client IP for `ignoreIps`. Default: the connection's peer address (see `trustedProxies`). */
  getClientIp?: (c: Context) => string | undefined;
  /**
   * MAINTENANCE_MODE_IGNORE_STAFF / _SUPERUSER: let this request through when it
   * returns true. Asked last, only for a request that would be blocked; when it
   * throws, the request is blocked and `onError` hears of it.
   */
  ignoreRequest?: (c: Context) => boolean | Promise<boolean>;
  /**
   * MAINTENANCE_MODE_TEMPLATE: your own page, as HTML text or a Response (e.g.
   * `(c) => c.html("<h1>Back soon</h1>")`). A Response with a 2xx status is sent with
   * `status` (default 503) instead; another status it chose (500, a redirect) is kept.
   * `Cache-Control: no-store` is always set, `Retry-After` unless the Response has one,
   * and `HEAD` gets no body.
   */
  render?: (
    c: Context,
    state: MaintenanceState,
  ) => RenderResult | Promise<RenderResult>;
}

/** Where an info object carries its middleware's responder, for `forceMaintenance(true)`. */
const RESPOND: unique symbol = Symbol("maintenance.respond");
/** How many `forceMaintenance()` handlers exist; while none, no route is scanned. */
let forceHandlers = 0;
/** Marks a `forceMaintenance()` handler with its value. */
const FORCE: unique symbol = Symbol("maintenance.force");
/** Marks the admin routes' own `forceMaintenance(false)` (see `adminRouteMark`). */
const ADMIN: unique symbol = Symbol("maintenance.adminRoute");
/** Hono's method name for `app.use()` and `app.all()` routes. */
const ANY_METHOD = "ALL";

/** What `forceMaintenance(true)` answers on a route no middleware runs before. */
const FORCED_ON: Snapshot = toSnapshot({ enabled: true });
let defaultResponder: ReturnType<typeof createResponder> | undefined;

type InfoWithRespond = MaintenanceInfo & {
  [RESPOND]?: (c: Context) => Promise<Response>;
};
type Marked = { [FORCE]?: boolean; [ADMIN]?: true };

/** The Hono adapter of the request engine. */
const honoAdapter: Adapter<Context> = {
  request: (c) => c.req.raw,
  // A client following the redirect or the `/<secret>` link asks for the URL's path;
  // routing may spell it otherwise (`strict: false`, `getPath`).
  facts: (c) => ({
    path: c.req.path,
    urlPath: getPath(c.req.raw),
    force: force(c),
  }),
  ip: (c, trusted) =>
    clientIp(c.req.raw, connectionIp(c.req.raw, c.env), trusted),
};

/**
 * The `forceMaintenance()` value of the matched routes, if any. An app route matched
 * before the admin routes' mark (`app.get("/admin", panel)` or `app.all(...)` before
 * the admin mount) may answer first: the mark does not exempt it. Middleware
 * (`app.use()`: ALL with `(c, next)`) and the marks themselves run on. A mark you
 * place yourself always counts.
 */
function force(c: Context): boolean | undefined {
  if (forceHandlers === 0) return undefined;
  let value: boolean | undefined;
  let appRoute = false;
  for (const r of matchedRoutes(c)) {
    // Through the wrappers Hono puts around the handlers of a sub-app with its own onError.
    const h = findTargetHandler(r.handler) as
      & Marked
      & ((...a: never[]) => unknown);
    if (h[FORCE] === undefined) {
      if (r.method !== ANY_METHOD || !isMiddleware(h)) appRoute = true;
    } else if (!appRoute || h[ADMIN] !== true) {
      value = h[FORCE];
    }
  }
  return value;
}

/** Builds the middleware of a controller (`mm.middleware()`) from its internals. */
export function createMiddleware(
  internals: Internals,
  options: MiddlewareOptions = {},
): MaintenanceMiddleware {
  const engine = createEngine(internals, options, "maintenance", honoAdapter);
  const { cache, forced } = engine;

  async function respond(c: Context): Promise<Response> {
    return send(c, await engine.block(c, await engine.see(undefined)));
  }

  // Info objects are made once per state (in force / scheduled / not in force), so
  // setting c.get("maintenance") allocates nothing per request.
  let memoSnap: Snapshot | undefined;
  let infos: [InfoWithRespond, InfoWithRespond, InfoWithRespond] | undefined;
  function info(snap: Snapshot, on: boolean, t: number): InfoWithRespond {
    if (snap !== memoSnap || infos === undefined) {
      memoSnap = snap;
      const make = (enabled: boolean, scheduled: boolean): InfoWithRespond =>
        Object.freeze({
          enabled,
          scheduled,
          readOnly: enabled && snap.state.readOnly === true,
          state: snap.shown,
          bypass: snap.state.bypass !== undefined,
          [RESPOND]: respond,
        });
      infos = [make(true, false), make(false, true), make(false, false)];
    }
    return on
      ? infos[0]
      : snap.enabled && t < snap.startsAtMs
      ? infos[1]
      : infos[2];
  }

  /** Everything but the hot path: a state to read, or maintenance in force. */
  async function slow(
    c: Context,
    next: Next,
    hot: Snapshot | undefined,
  ): Promise<Response | void> {
    const seen = await engine.see(hot);
    c.set("maintenance", info(seen.snap, seen.on, seen.t));
    const outcome = await engine.check(c, seen);
    if (outcome === "pass") return next();
    if (outcome !== "private") return send(c, outcome);
    await next();
    const res = c.res;
    const out = privately(res);
    if (out !== res) {
      c.res = out;
      // Hono copies the headers of the response it replaces onto `out`: mark it again.
      c.res.headers.set("cache-control", "private, no-store");
    }
  }

  if (forced !== undefined) {
    return function maintenance(c, next) {
      return slow(c, next, cache.current());
    };
  }
  return function maintenance(c, next) {
    // The hot path: a fresh state that is off; no await, so the promise next()
    // returns is the only one.
    const hot = cache.current();
    if (hot === undefined || hot.enabled) return slow(c, next, hot);
    c.set("maintenance", info(hot, false, 0));
    return next();
  };
}

/**
 * Sends the middleware's own response (the maintenance page, a redirect, the bypass
 * cookie) through the context. Hono copies onto a returned response the headers set
 * earlier in the chain once anything has touched `c.res` (`hono/cors` does), and lets
 * them win: a `Cache-Control` set for the app would make the 503 cacheable, and a
 * session cookie would replace the bypass cookie. Headers set earlier that this
 * response has not are kept (CORS, security headers); its own win, `Vary` is merged,
 * and its cookies are added to theirs.
 */
function send(c: Context, res: Response): Response {
  c.res = res;
  const out = c.res;
  if (out === res) return res;
  const h = out.headers;
  res.headers.forEach((value, name) => {
    if (name === "set-cookie") return;
    h.set(name, name === "vary" ? mergeVary(h.get("vary"), value) : value);
  });
  for (const cookie of res.headers.getSetCookie()) {
    h.append("set-cookie", cookie);
  }
  return out;
}

/** Two `Vary` values as one, each field name once. */
function mergeVary(a: string | null, b: string): string {
  if (a === null || a === b) return b;
  const names = new Map<string, string>();
  for (const part of `${a},${b}`.split(",")) {
    const n = part.trim();
    if (n !== "" && !names.has(n.toLowerCase())) names.set(n.toLowerCase(), n);
  }
  return names.has("*") ? "*" : [...names.values()].join(", ");
}

/**
 * Per-route override, as Django's `force_maintenance_mode_on/off` decorators:
 * `forceMaintenance(false)` keeps a route reachable while maintenance is on;
 * `forceMaintenance(true)` always answers with the maintenance response.
 * Use it on routes registered after the maintenance middleware.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { forceMaintenance, maintenance, MemoryStore } from "@x/maintenance";
 * const app = new Hono();
 * app.use(maintenance({ store: new MemoryStore() }));
 * app.get("/status", forceMaintenance(false), (c) => c.text("reachable"));
 * app.get("/old", forceMaintenance(true), (c) => c.text("never served"));
 * ```
 */
export function forceMaintenance(value: boolean): MiddlewareHandler {
  if (typeof value !== "boolean") {
    throw new TypeError(
      "forceMaintenance takes true (always) or false (never)",
    );
  }
  const handler: MiddlewareHandler & Marked = async function forceMaintenance(
    c,
    next,
  ) {
    if (!value) return next();
    const info = c.get("maintenance" as never) as InfoWithRespond | undefined;
    const respond = info?.[RESPOND];
    if (respond) return await respond(c);
    // No maintenance middleware before this route: the default response, as
    // django-maintenance-mode's decorator answers without its middleware.
    defaultResponder ??= createResponder();
    return send(
      c,
      defaultResponder.respond(c.req.raw, FORCED_ON, Date.now()),
    );
  };
  handler[FORCE] = value;
  forceHandlers++;
  return handler;
}

/**
 * The mark the admin routes (`adminRoutes()`) put first on each of their routes:
 * `forceMaintenance(false)`, tagged so that the middleware disregards it when an app
 * route with a method of its own (GET, POST, ...) matched before it, since that route
 * may answer first (fail closed). Internal: not exported from the package.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { adminRouteMark } from "./middleware.ts";
 * const admin = new Hono();
 * admin.get("/", adminRouteMark(), (c) => c.json({ ok: true }));
 * ```
 */
export function adminRouteMark(): MiddlewareHandler {
  const handler: MiddlewareHandler & Marked = forceMaintenance(
    false,
  );
  handler[ADMIN] = true;
  return handler;
}
