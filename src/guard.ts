/**
 * The fetch-level guard: wraps a whole fetch handler (`app.fetch`) and answers with the
 * maintenance response before Hono routes the request, as Laravel checks before the
 * framework boots. It runs the middleware's request engine with the rules that need
 * no Hono context (paths, client IPs, the bypass cookie, tests, `ignoreRequest`).
 *
 * When maintenance is off and the cached state is fresh, a request costs one property
 * read and one call: no clock read, nothing allocated, nothing awaited.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { createMaintenance, FileStore } from "@x/maintenance";
 * import { guard } from "@x/maintenance/guard";
 *
 * const mm = createMaintenance({ store: new FileStore() });
 * const app = new Hono();
 * app.get("/", (c) => c.text("hello"));
 * Deno.serve(guard(mm, app.fetch, { ignorePaths: [/^\/healthz$/] }));
 * ```
 *
 * @module
 */
import { getPath } from "hono/utils/url";
import {
  clientIp,
  connectionIp,
  createEngine,
  privately,
  type SharedOptions,
} from "./_engine.ts";
import { internals } from "./_internal.ts";
import type { Maintenance } from "./maintenance.ts";
import type { RenderResult } from "./_response.ts";
import type { Snapshot } from "./_state.ts";
import type { MaintenanceState } from "./_state.ts";

/**
 * A fetch handler as `Deno.serve`, `Bun.serve` and `export default { fetch }` call it:
 * the request, then whatever the runtime passes (Deno's `info`, Bun's `server`, a
 * Workers `env` and `ctx`). Hono's `app.fetch` is one.
 *
 * @example
 * ```ts
 * import type { FetchHandler } from "@x/maintenance/guard";
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
 * import type { GuardedFetch } from "@x/maintenance/guard";
 * const serve = (fetch: GuardedFetch) => Deno.serve(fetch);
 * ```
 */
export type GuardedFetch = (
  req: Request,
  ...rest: unknown[]
) => Response | Promise<Response>;

/**
 * Options of the guard (`guard(mm, app.fetch, options)`): the middleware's options that
 * need no Hono context. Functions take the `Request` and the runtime's second fetch
 * argument (`info` under Deno, the `server` under Bun) instead of a Hono `Context`.
 *
 * The guard runs before routing, so it knows no routes: list in `ignorePaths` what must
 * stay reachable while maintenance is on (health checks, status pages).
 *
 * @example
 * ```ts
 * import type { GuardOptions } from "@x/maintenance/guard";
 * const options: GuardOptions = {
 *   ignorePaths: ["/healthz", /^\/static\//],
 *   ignoreIps: ["10.0.0.0/8"],
 *   retryAfter: 600,
 * };
 * ```
 */
export interface GuardOptions extends SharedOptions {
  /**
   * The client IP for `ignoreIps`, from the request and the runtime's second fetch
   * argument. Default: the connection's peer address (see `trustedProxies`).
   */
  getClientIp?: (req: Request, info: unknown) => string | undefined;
  /**
   * Let this request through when it returns true (asked only when it would be
   * blocked). A request with a body is given as a copy: reading it leaves the body to
   * the app.
   */
  ignoreRequest?: (
    req: Request,
    info: unknown,
  ) => boolean | Promise<boolean>;
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

/** One request as the guard sees it: the request and the runtime's other arguments. */
interface Call {
  req: Request;
  a: unknown;
  b: unknown;
}

/**
 * The path the rules see: Hono's (`getPath`, `%XX` decoded), or `""` (no path exemption,
 * no redirect target) when a handler that routes on `new URL(req.url).pathname` (a
 * `switch`, URLPattern) could see another path than the one the rules were asked about.
 */
function rulePath(req: Request): string {
  const url = req.url;
  // Deno builds `req.url` from the raw Host header: with `Host: x\admin?` the URL is
  // `http://x\admin?/healthz`, where getPath() reads /healthz but `new URL()` (what a
  // non-Hono handler routes on) reads /admin. Such a request gets no path exemption.
  if (SPLIT_AUTHORITY_RE.test(url)) return "";
  const path = getPath(req);
  if (!url.includes("%")) return path; // nothing decoded: both read the same text
  let raw: string;
  try {
    raw = new URL(url).pathname;
  } catch {
    return "";
  }
  if (raw === path) return path;
  // Only the canonical spelling agrees: /caf%C3%A9 is /café; /caf%c3%a9, /%68ealthz are not.
  const canonical = new URL("http://h");
  canonical.pathname = path;
  return canonical.pathname === raw ? path : "";
}

/** The `Request` adapter of the request engine. */
const fetchAdapter = {
  request: (x: Call) => x.req,
  facts: (x: Call) => ({ path: rulePath(x.req) }),
  ip: (x: Call, trusted: number) =>
    clientIp(x.req, connectionIp(x.req, x.a), trusted),
};

/**
 * Wraps a fetch handler (`app.fetch`) with the maintenance check of controller `mm`.
 * Options are validated here, once. The guard runs before routing, so it knows no
 * routes: list in `ignorePaths` what must stay reachable while maintenance is on
 * (health checks, status pages, the admin routes by exact path).
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { createMaintenance, MemoryStore } from "@x/maintenance";
 * import { guard } from "@x/maintenance/guard";
 *
 * const mm = createMaintenance({ store: new MemoryStore() });
 * const app = new Hono();
 * app.get("/", (c) => c.text("hello"));
 * const fetch = guard(mm, app.fetch, { ignorePaths: [/^\/healthz$/] });
 * const res = await fetch(new Request("http://localhost/"));
 * ```
 */
export function guard(
  mm: Maintenance,
  fetch: FetchHandler,
  options: GuardOptions = {},
): GuardedFetch {
  const ctl = internals(mm, "guard");
  if (typeof fetch !== "function") {
    throw new TypeError(
      "the guard wraps a fetch handler: pass app.fetch, e.g. guard(mm, app.fetch)",
    );
  }
  // Called with exactly the arguments the runtime gave (request, info/server/env, ctx).
  const inner = fetch as unknown as (
    req: Request,
    a: unknown,
    b?: unknown,
  ) => Response | Promise<Response>;
  const { getClientIp, ignoreRequest, render } = options;
  const engine = createEngine<Call>(
    ctl,
    {
      ...options,
      getClientIp: typeof getClientIp === "function"
        ? (x) => getClientIp(x.req, x.a)
        : getClientIp,
      ignoreRequest: typeof ignoreRequest === "function"
        ? (x) => {
          // It may read the body (a token in a posted form): it gets a copy, so the
          // app can still read the request it lets through.
          if (x.req.body === null) return ignoreRequest(x.req, x.a);
          const seen = new BodyCopy(x.req);
          let ok: boolean | Promise<boolean> = false;
          try {
            ok = ignoreRequest(seen.view, x.a);
          } finally {
            if (ok instanceof Promise) {
              ok.finally(() => seen.drop()).catch(
                () => {},
              );
            } else seen.drop();
          }
          return ok;
        }
        : ignoreRequest,
      render: typeof render === "function"
        ? (x, state) => render(x.req, state)
        : render,
    },
    "guard",
    fetchAdapter,
  );
  const cache = ctl.cache;

  // Forced off: the guard is the handler itself, at no cost.
  if (engine.forced === false) return fetch as unknown as GuardedFetch;

  async function slow(x: Call, hot: Snapshot | undefined): Promise<Response> {
    const outcome = await engine.check(x, await engine.see(hot));
    if (outcome === "pass") return await inner(x.req, x.a, x.b);
    if (outcome === "private") return privately(await inner(x.req, x.a, x.b));
    return outcome;
  }

  if (engine.forced === true) {
    return function guarded(req, a, b) {
      return slow({ req, a, b }, cache.current());
    };
  }
  return function guarded(req, a, b) {
    // The hot path: a fresh state that is off, known without reading the clock.
    const hot = cache.current();
    if (hot === undefined || hot.enabled) return slow({ req, a, b }, hot);
    // As many arguments as the runtime passed (Hono's fetch takes rest parameters).
    return b === undefined ? inner(req, a) : inner(req, a, b);
  };
}
