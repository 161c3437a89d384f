/**
 * The fetch-level guard: wraps a whole fetch handler (`app.fetch`) and answers with the
 * maintenance response before Hono routes the request, as Laravel checks before the
 * framework boots. It applies the rules that need no Hono context (paths, client IPs,
 * the bypass cookie, tests) through the same pure `decide()` as the middleware.
 *
 * When maintenance is off and the cached state is fresh, a request costs one property
 * read and one call: no clock read, nothing allocated, nothing awaited.
 *
 * @module
 */
import { internals as internalsOf } from "./_internal.ts";
import type { Maintenance } from "./maintenance.ts";
import { checkSharedOptions, compileDecisionRules } from "./_options.ts";
import { getPath } from "hono/utils/url";
import { failClosed } from "./_exempt_predicate.ts";
import { logError } from "./_log_error.ts";
import { createBypassCookie } from "./_bypass.ts";
import { clientIp, connectionIp } from "./_client_ip.ts";
import { decide, type DecisionRules } from "./_decide.ts";
import {
  createResponder,
  type RenderResult,
  type ResponseOptions,
} from "./_response.ts";
import type { IpRule, PathRule } from "./_rules.ts";
import { isActive, type Snapshot } from "./_snapshot.ts";
import type { MaintenanceState } from "./_state.ts";

/**
 * A fetch handler as `Deno.serve`, `Bun.serve` and `export default { fetch }` call it:
 * the request, then whatever the runtime passes (Deno's `info`, Bun's `server`, a
 * Workers `env` and `ctx`). Hono's `app.fetch` is one.
 *
 * @example
 * ```ts
 * import type { FetchHandler } from "@x/maintenance";
 * const hello: FetchHandler = () => new Response("hello");
 * ```
 */
export type FetchHandler = (
  req: Request,
  ...rest: never[]
) => Response | Promise<Response>;

/**
 * What the guard returns: a fetch handler for `Deno.serve`, `Bun.serve` or
 * `export default { fetch }`.
 *
 * @example
 * ```ts
 * import type { GuardedFetch } from "@x/maintenance";
 * const serve = (fetch: GuardedFetch) => Deno.serve(fetch);
 * ```
 */
export type GuardedFetch = (
  req: Request,
  ...rest: unknown[]
) => Response | Promise<Response>;

/**
 * Options of the guard (`mm.guard(app.fetch, options)`): the middleware's options that
 * need no Hono context. Functions take the `Request` and the runtime's second fetch
 * argument (`info` under Deno, the `server` under Bun) instead of a Hono `Context`.
 *
 * The guard runs before routing, so it knows no routes: list in `ignorePaths` what must
 * stay reachable while maintenance is on (health checks, status pages).
 *
 * @example
 * ```ts
 * import type { GuardOptions } from "@x/maintenance";
 * const options: GuardOptions = {
 *   ignorePaths: ["/healthz", /^\/static\//],
 *   ignoreIps: ["10.0.0.0/8"],
 *   retryAfter: 600,
 * };
 * ```
 */
export interface GuardOptions extends ResponseOptions {
  /** MAINTENANCE_MODE: `true`/`false` forces on/off; undefined (default) reads the store. */
  enabled?: boolean;
  /** Exempt paths (strings match a path and below; RegExps), as Hono's routing sees the path. */
  ignorePaths?: PathRule[];
  /** Exempt client IPs, CIDR ranges (v4/v6), RegExps. */
  ignoreIps?: IpRule[];
  /**
   * The client IP for `ignoreIps`, from the request and the runtime's second fetch
   * argument. Default: the connection's peer address (see `trustedProxies`).
   */
  getClientIp?: (req: Request, info: unknown) => string | undefined;
  /**
   * How many reverse proxies in front of the app append to `X-Forwarded-For`.
   * Default 0: the header is ignored, since any client can send it. With N, the
   * address N hops from the right is the client's; a request whose header is missing,
   * has fewer than N entries, or has no IP address at that hop has no client IP, so no
   * `ignoreIps` rule lets it through (the peer is then a proxy, not the client).
   */
  trustedProxies?: number;
  /**
   * Let this request through when it returns true (asked only when it would be
   * blocked). A request with a body is given as a copy: reading it leaves the body to
   * the app.
   */
  ignoreRequest?: (
    req: Request,
    info: unknown,
  ) => boolean | Promise<boolean>;
  /** MAINTENANCE_MODE_IGNORE_TESTS: never block while running tests (see `isTestRun`). */
  ignoreTests?: boolean;
  /**
   * Your own page instead of the default one: HTML text or a Response. A Response with
   * a 2xx status is sent with `status` (default 503) instead; another status it chose
   * (500, a redirect) is kept. `Cache-Control: no-store` is always set, `Retry-After`
   * unless the Response has one, and `HEAD` gets no body.
   */
  render?: (
    req: Request,
    state: MaintenanceState,
  ) => RenderResult | Promise<RenderResult>;
}

/** A URL whose authority holds `?`, `#` or `\`, so parsers disagree on its path. */
const SPLIT_AUTHORITY_RE = /^[^/?#]*\/\/[^/?#\\]*[?#\\]/;

/** A copy of `res` with `Cache-Control: private, no-store` (a 101 upgrade as it is). */
function keptPrivate(res: Response): Response {
  if (res.status < 200 || res.status > 599) return res;
  // A copy: a Response from fetch() has immutable headers.
  const out = new Response(res.body, res);
  out.headers.set("cache-control", "private, no-store");
  return out;
}

/** `Request` members that read or hand out the body: a copy answers them. */
const BODY_MEMBERS: ReadonlySet<PropertyKey> = new Set([
  "body",
  "bodyUsed",
  "arrayBuffer",
  "blob",
  "bytes",
  "formData",
  "json",
  "text",
  "clone",
]);

/**
 * The request as `ignoreRequest` sees it (`view`): the request itself, except that its
 * body comes from a copy made when first read, so the app still gets the whole body of
 * a request that is let through (as the middleware's `c.req.json()` keeps it for the
 * handler). Copied only when read: `clone()` costs a tee, and under Deno a notice.
 */
class BodyCopy {
  #copy: Request | undefined;
  /** What `ignoreRequest` is given. */
  readonly view: Request;

  constructor(req: Request) {
    this.view = new Proxy(req, {
      get: (target, key) => {
        const from = BODY_MEMBERS.has(key)
          ? (this.#copy ??= target.clone())
          : target;
        const value: unknown = Reflect.get(from, key, from);
        return typeof value === "function" ? value.bind(from) : value;
      },
    });
  }

  /** `ignoreRequest` is done: a copy it did not read must not hold the body. */
  drop(): void {
    const copy = this.#copy;
    if (copy !== undefined && !copy.bodyUsed) {
      copy.body?.cancel().catch(() => {});
    }
  }
}

/**
 * Wraps a fetch handler with the maintenance check. Use `mm.guard(app.fetch, options)`
 * rather than this. Options are validated here, once.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { createGuard, MemoryStore, StateCache } from "@x/maintenance";
 * const cache = new StateCache({
 *   store: new MemoryStore(), cache: { ttlMs: 1000 }, timeoutMs: 1000,
 *   fallback: { enabled: false }, onError: console.error, now: Date.now,
 * });
 * const app = new Hono();
 * app.get("/", (c) => c.text("hello"));
 * Deno.serve(createGuard(cache, app.fetch, { ignorePaths: ["/healthz"] }));
 * ```
 */
export function guard(
  mm: Maintenance,
  fetch: FetchHandler,
  options: GuardOptions = {},
): GuardedFetch {
  const internals = internalsOf(mm, "guard");
  const cache = internals.cache;
  if (typeof fetch !== "function") {
    throw new TypeError(
      "the guard wraps a fetch handler: pass app.fetch, e.g. mm.guard(app.fetch)",
    );
  }
  checkSharedOptions(options, "guard", []);
  // Called with exactly the arguments the runtime gave (request, info/server/env, ctx).
  const inner = fetch as unknown as (
    req: Request,
    a: unknown,
    b?: unknown,
  ) => Response | Promise<Response>;
  const responder = createResponder(options);
  const rules: DecisionRules = compileDecisionRules(
    options,
    responder.redirectPath,
    undefined,
  );
  const forced = options.enabled;
  const needsIp = options.ignoreIps !== undefined &&
    options.ignoreIps.length > 0;
  const trusted = options.trustedProxies ?? 0;
  const getIp = options.getClientIp ??
    ((req: Request, info: unknown) =>
      clientIp(req, connectionIp(req, info), trusted));
  const ignoreRequest = options.ignoreRequest &&
    failClosed(
      options.ignoreRequest,
      internals.onError,
      "ignoreRequest",
    );
  const render = options.redirectTo === undefined ? options.render : undefined;
  const bypass = internals.bypass;
  const now = internals.now;

  // Forced off: the guard is the handler itself, at no cost.
  if (forced === false) return fetch as unknown as GuardedFetch;

  function block(
    req: Request,
    snap: Snapshot,
    t: number,
  ): Response | Promise<Response> {
    if (render === undefined) return responder.respond(req, snap, t);
    const custom = render(req, snap.shown);
    return custom instanceof Promise
      ? custom.then((r) => responder.respond(req, snap, t, r))
      : responder.respond(req, snap, t, custom);
  }

  // The bypass cookie's expected values are computed once per state (and maxAge
  // period), ahead of need.
  let readySnap: Snapshot | undefined;

  /** The rules of `decide()`, then `ignoreRequest`. */
  function rulesThen(
    req: Request,
    a: unknown,
    b: unknown,
    snap: Snapshot,
    t: number,
    path: string,
  ): Response | Promise<Response> {
    const facts = { path, ip: needsIp ? getIp(req, a) : undefined };
    if (decide(rules, snap, t, facts) === "pass") {
      // Let through for who the client is (an exempt IP): not to be cached for all.
      return facts.ip !== undefined && rules.ip(facts.ip)
        ? innerPrivately(req, a, b)
        : inner(req, a, b);
    }
    if (ignoreRequest !== undefined) {
      // It may read the body (a token in a posted form, as `c.req.json()` allows in
      // the middleware, which keeps the body for the handler): it gets a copy, so the
      // app can still read the request it lets through.
      const seen = req.body === null ? undefined : new BodyCopy(req);
      let ok: boolean | Promise<boolean>;
      try {
        ok = ignoreRequest(seen === undefined ? req : seen.view, a);
      } catch (e) {
        seen?.drop();
        throw e;
      }
      if (ok instanceof Promise) {
        return ok.then((yes) => {
          seen?.drop();
          return yes ? innerPrivately(req, a, b) : block(req, snap, t);
        }, (e: unknown) => {
          seen?.drop();
          throw e;
        });
      }
      seen?.drop();
      if (ok) return innerPrivately(req, a, b);
    }
    return block(req, snap, t);
  }

  /** A valid bypass cookie passes; else the rules. */
  /**
   * The app's answer to a client let through for who it is (the bypass cookie, an
   * exempt IP, `ignoreRequest`), marked `private, no-store`: a CDN or proxy that cached
   * it would serve the app to everyone the maintenance holds back.
   */
  function innerPrivately(
    req: Request,
    a: unknown,
    b: unknown,
  ): Response | Promise<Response> {
    const res = inner(req, a, b);
    return res instanceof Promise ? res.then(keptPrivate) : keptPrivate(res);
  }

  function cookieThen(
    req: Request,
    a: unknown,
    b: unknown,
    snap: Snapshot,
    t: number,
    path: string,
  ): Response | Promise<Response> {
    const cookie = req.headers.get("cookie");
    if (cookie === null) return rulesThen(req, a, b, snap, t, path);
    const ok = bypass.check(cookie, snap);
    if (ok === true) return innerPrivately(req, a, b);
    if (ok === false) return rulesThen(req, a, b, snap, t, path);
    return ok.then((yes) =>
      yes ? innerPrivately(req, a, b) : rulesThen(req, a, b, snap, t, path)
    );
  }

  /** Maintenance in force (`on`) or scheduled: `/<secret>`, the cookie, the rules. */
  function check(
    req: Request,
    a: unknown,
    b: unknown,
    snap: Snapshot,
    t: number,
    on: boolean,
  ): Response | Promise<Response> {
    // Deno builds `req.url` from the raw Host header: with `Host: x\admin?` the URL is
    // `http://x\admin?/healthz`, where getPath() reads /healthz but `new URL()` (what a
    // non-Hono handler routes on) reads /admin. Such a request gets no path exemption.
    const path = SPLIT_AUTHORITY_RE.test(req.url) ? "" : getPath(req);
    if (snap.state.bypass === undefined) {
      return on ? rulesThen(req, a, b, snap, t, path) : inner(req, a, b);
    }
    if (snap !== readySnap) {
      readySnap = snap;
      bypass.ready(snap);
    }
    // `/<secret>` hands out the cookie, also before a scheduled window starts.
    const visit = bypass.visit(req, snap, path);
    if (visit !== undefined) {
      return visit.then((res) =>
        res ??
          (on ? cookieThen(req, a, b, snap, t, path) : inner(req, a, b))
      );
    }
    return on ? cookieThen(req, a, b, snap, t, path) : inner(req, a, b);
  }

  function decideAt(
    req: Request,
    a: unknown,
    b: unknown,
    snap: Snapshot,
    t: number,
  ): Response | Promise<Response> {
    const on = forced ?? isActive(snap, t);
    if (on) return check(req, a, b, snap, t, true);
    // Scheduled and not started yet: only `/<secret>` is answered.
    if (
      snap.enabled && forced === undefined &&
      snap.state.bypass !== undefined && t < snap.startsAtMs
    ) return check(req, a, b, snap, t, false);
    return inner(req, a, b);
  }

  /** Not fresh, or maintenance on: read the clock (and the store if need be). */
  function slow(
    req: Request,
    a: unknown,
    b: unknown,
    hot: Snapshot | undefined,
  ): Response | Promise<Response> {
    // A fresh state without a window is the same at any instant: no clock needed.
    const t = hot !== undefined && hot.startsAtMs === -Infinity &&
        hot.endsAtMs === Infinity
      ? 0
      : now();
    const snap = hot ?? cache.peek(t);
    if (snap !== undefined) return decideAt(req, a, b, snap, t);
    // Stale or never read: the cache bounds the read by its timeout and serves the
    // last known state while the store fails, so this never stalls past timeoutMs.
    const got = cache.get();
    return got instanceof Promise
      ? got.then((s) => decideAt(req, a, b, s, now()))
      : decideAt(req, a, b, got, t);
  }

  if (forced === true) {
    return function guarded(req, a, b) {
      return slow(req, a, b, cache.hot());
    };
  }
  return function guarded(req, a, b) {
    // The hot path: a fresh state that is off, known without reading the clock.
    const hot = cache.hot();
    if (hot === undefined || hot.enabled) return slow(req, a, b, hot);
    // As many arguments as the runtime passed (Hono's fetch takes rest parameters).
    return b === undefined ? inner(req, a) : inner(req, a, b);
  };
}
