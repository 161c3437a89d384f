/**
 * The Hono middleware and the per-route `forceMaintenance()`.
 *
 * @module
 */
import { checkSharedOptions, compileDecisionRules } from "./_options.ts";
import type { Context, MiddlewareHandler, Next } from "hono";
import { matchedRoutes } from "hono/route";
import { getPath } from "hono/utils/url";
import { failClosed } from "./_exempt_predicate.ts";
import { logError } from "./_log_error.ts";
import { type BypassCookie, createBypassCookie } from "./_bypass.ts";
import { internals as internalsOf } from "./_internal.ts";
import type { Maintenance } from "./maintenance.ts";
import { clientIp, connectionIp } from "./_client_ip.ts";
import { decide, type DecisionRules } from "./_decide.ts";
import type { IpRule, PathRule } from "./_rules.ts";
import {
  createResponder,
  type RenderResult,
  type ResponseOptions,
} from "./_response.ts";
import { isActive, type Snapshot } from "./_snapshot.ts";
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
export interface MiddlewareOptions extends ResponseOptions {
  /** MAINTENANCE_MODE: `true`/`false` forces on/off; undefined (default) reads the store. */
  enabled?: boolean;
  /** MAINTENANCE_MODE_IGNORE_URLS: exempt paths (strings match a path and below; RegExps). */
  ignorePaths?: PathRule[];
  /** MAINTENANCE_MODE_IGNORE_IP_ADDRESSES: exempt IPs, CIDR ranges (v4/v6), RegExps. */
  ignoreIps?: IpRule[];
  /** The client IP for `ignoreIps`. Default: the connection's peer address (see `trustedProxies`). */
  getClientIp?: (c: Context) => string | undefined;
  /**
   * How many reverse proxies in front of the app append to `X-Forwarded-For`.
   * Default 0: the header is ignored, since any client can send it. With N, the
   * address N hops from the right is the client's; a request whose header is missing,
   * has fewer than N entries, or has no IP address at that hop has no client IP, so no
   * `ignoreIps` rule lets it through (the peer is then a proxy, not the client).
   */
  trustedProxies?: number;
  /** MAINTENANCE_MODE_IGNORE_STAFF / _SUPERUSER: let this request through when it returns true. */
  ignoreRequest?: (c: Context) => boolean | Promise<boolean>;
  /** MAINTENANCE_MODE_IGNORE_TESTS: never block while running tests (see `isTestRun`). */
  ignoreTests?: boolean;
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
/** Marks a `forceMaintenance(false)` handler. */
const FORCE: unique symbol = Symbol("maintenance.force");
/** Marks the admin routes' own `forceMaintenance(false)` (see `adminRouteMark`). */
const ADMIN: unique symbol = Symbol("maintenance.adminRoute");
/** Hono's method name for `app.use()` and `app.all()` routes. */
const ANY_METHOD = "ALL";

type Respond = (c: Context) => Promise<Response>;
type InfoWithRespond = MaintenanceInfo & { [RESPOND]?: Respond };

/** Builds the middleware of a controller: `mm.middleware()`. */
export function createMiddleware(
  mm: Maintenance,
  options: MiddlewareOptions = {},
  extraOptions: readonly string[] = [],
): MaintenanceMiddleware {
  const internals = internalsOf(mm, "middleware");
  const cache = internals.cache;
  checkSharedOptions(options, "maintenance", extraOptions);
  const responder = createResponder(options);
  const rules: DecisionRules = compileDecisionRules(
    options,
    responder.redirectPath,
    undefined,
  );
  const needsIp = options.ignoreIps !== undefined &&
    options.ignoreIps.length > 0;
  const trusted = options.trustedProxies ?? 0;
  const getIp = options.getClientIp ??
    ((c: Context) =>
      clientIp(c.req.raw, connectionIp(c.req.raw, c.env), trusted));
  const ignoreRequest = options.ignoreRequest &&
    failClosed(
      options.ignoreRequest,
      internals.onError,
      "ignoreRequest",
    );
  const render = options.render;
  const now = internals.now;
  const bypass = internals.bypass;

  async function respond(c: Context): Promise<Response> {
    const t = now();
    const snap = cache.peek(t) ?? await cache.get();
    const custom = render && !options.redirectTo
      ? await render(c, snap.shown)
      : undefined;
    return send(c, responder.respond(c.req.raw, snap, t, custom));
  }

  /**
   * `/<secret>` sets the bypass cookie. The link is a URL: its path is looked for as
   * routing sees it and, when routing sees another spelling (a `getPath` that prefixes
   * the host), as the URL has it.
   */
  function visitBypass(
    c: Context,
    snap: Snapshot,
  ): Promise<Response | undefined> | undefined {
    const routed = c.req.path;
    const visit = bypass.visit(c.req.raw, snap, routed);
    if (visit !== undefined) return visit;
    const url = getPath(c.req.raw);
    return url === routed ? undefined : bypass.visit(c.req.raw, snap, url);
  }

  // Info objects are made once per state (in force / scheduled / not in force), so
  // setting c.get("maintenance") allocates nothing per request.
  let memoSnap: Snapshot | undefined;
  let infos: [InfoWithRespond, InfoWithRespond, InfoWithRespond] | undefined;
  function info(snap: Snapshot, on: boolean, t: number): InfoWithRespond {
    if (snap !== memoSnap || infos === undefined) {
      memoSnap = snap;
      // Compute the expected bypass cookie now, so requests rarely wait for it.
      if (snap.state.bypass !== undefined) bypass.ready(snap);
      const make = (enabled: boolean, scheduled: boolean): InfoWithRespond =>
        Object.freeze({
          enabled,
          scheduled,
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
    // A fresh state without a window is the same at any instant: no clock needed.
    const t = hot !== undefined && hot.startsAtMs === -Infinity &&
        hot.endsAtMs === Infinity
      ? 0
      : now();
    const snap = hot ?? cache.peek(t) ?? await cache.get();
    const on = rules.forced ?? isActive(snap, t);
    c.set("maintenance", info(snap, on, t));
    if (!on) {
      // Scheduled and not started yet: `/<secret>` already hands out the cookie.
      if (
        snap.enabled && rules.forced === undefined &&
        snap.state.bypass !== undefined && t < snap.startsAtMs
      ) {
        const visit = visitBypass(c, snap);
        const res = visit && await visit;
        if (res) return send(c, res);
      }
      return next();
    }
    // The library's own routes first: `/<secret>` sets the bypass cookie.
    if (snap.state.bypass !== undefined) {
      const visit = visitBypass(c, snap);
      const res = visit && await visit;
      if (res) return send(c, res);
    }
    let force: boolean | undefined;
    if (forceHandlers > 0) {
      // A route with a method of its own (GET, POST, ...) matched before the admin
      // routes' mark is an app route that may answer first (`app.get("/admin", panel)`
      // before the admin mount): the mark does not exempt it. `app.use()` routes (ALL)
      // and the marks themselves run on. A mark you place yourself always counts.
      let appRoute = false;
      for (const r of matchedRoutes(c)) {
        const f = forceMark(r.handler);
        if (f === undefined) {
          if (r.method !== ANY_METHOD) appRoute = true;
        } else if (!appRoute || !isAdminMark(r.handler)) {
          force = f;
        }
      }
    }
    if (force === undefined && snap.state.bypass !== undefined) {
      const cookie = c.req.raw.headers.get("cookie");
      if (cookie !== null) {
        const ok = bypass.check(cookie, snap);
        if (ok === true || (ok !== false && await ok)) {
          return passPrivately(c, next);
        }
      }
    }
    const facts = {
      path: c.req.path,
      // A client following the redirect asks for the URL's path; routing may spell it
      // otherwise (`strict: false`, `getPath`), and the target must not redirect again.
      urlPath: rules.redirectPath !== undefined
        ? getPath(c.req.raw)
        : undefined,
      ip: needsIp ? getIp(c) : undefined,
      force,
    };
    if (decide(rules, snap, t, facts) === "pass") {
      // Let through for who the client is (an exempt IP), not for what it asks: the
      // page it gets must not be cached for everyone else.
      return facts.ip !== undefined && rules.ip(facts.ip)
        ? passPrivately(c, next)
        : next();
    }
    if (ignoreRequest && force === undefined && await ignoreRequest(c)) {
      return passPrivately(c, next);
    }
    const custom = render && !options.redirectTo
      ? await render(c, snap.shown)
      : undefined;
    return send(c, responder.respond(c.req.raw, snap, t, custom));
  }

  if (rules.forced !== undefined) {
    return function maintenance(c, next) {
      return slow(c, next, cache.hot());
    };
  }
  return function maintenance(c, next) {
    // The hot path: a fresh state that is off, known without reading the clock; no
    // await, so the promise next() returns is the only one.
    const hot = cache.hot();
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

/**
 * Runs the app for a client let through during maintenance for who it is (the bypass
 * cookie, an exempt IP, `ignoreRequest`), and marks its answer `private, no-store`: a
 * CDN or proxy that cached it would serve the app to everyone the maintenance holds
 * back.
 */
async function passPrivately(c: Context, next: Next): Promise<void> {
  await next();
  const res = c.res;
  // A WebSocket upgrade (101) cannot be copied, and is never cached.
  if (res.status < 200 || res.status > 599) return;
  // A copy: a Response from fetch() has immutable headers.
  c.res = new Response(res.body, res);
  c.res.headers.set("cache-control", "private, no-store");
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

/** How deep Hono may nest its `onError` wrappers (one per sub-app level). */
const MAX_WRAPPERS = 32;

/**
 * The handler a matched route runs, through the wrappers Hono puts around the handlers
 * of a sub-app that has its own `onError` (one per level: `app.route()` of a sub-app
 * that itself routes a sub-app with an `onError` of its own wraps twice).
 */
function unwrap(
  handler: unknown,
): { [FORCE]?: boolean; [ADMIN]?: true } {
  let h = handler as {
    [FORCE]?: boolean;
    [ADMIN]?: true;
    __COMPOSED_HANDLER?: unknown;
  };
  for (let i = 0; i < MAX_WRAPPERS && h.__COMPOSED_HANDLER !== undefined; i++) {
    if (h[FORCE] !== undefined) break;
    h = h.__COMPOSED_HANDLER as typeof h;
  }
  return h;
}

/**
 * The `forceMaintenance()` value a matched handler carries, also through the wrappers
 * Hono puts around the handlers of sub-apps that have their own `onError`.
 */
function forceMark(handler: unknown): boolean | undefined {
  return unwrap(handler)[FORCE];
}

/** Whether a matched handler is the admin routes' mark, also through Hono's wrappers. */
function isAdminMark(handler: unknown): boolean {
  return unwrap(handler)[ADMIN] === true;
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
      "forceMaintenance takes true (always maintenance) or false (never)",
    );
  }
  const handler: MiddlewareHandler & { [FORCE]?: boolean } =
    async function forceMaintenance(
      c,
      next,
    ) {
      if (!value) return next();
      const info = c.get("maintenance" as never) as InfoWithRespond | undefined;
      const respond = info?.[RESPOND];
      if (!respond) {
        throw new Error(
          "forceMaintenance(true) needs the maintenance middleware registered before this route " +
            "(app.use(mm.middleware()) above it)",
        );
      }
      return await respond(c);
    };
  handler[FORCE] = value;
  forceHandlers++;
  return handler;
}

/**
 * The mark the admin routes (`mm.adminRoutes()`) put first on each of their routes:
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
  const handler: MiddlewareHandler & { [ADMIN]?: true } = forceMaintenance(
    false,
  );
  handler[ADMIN] = true;
  return handler;
}
