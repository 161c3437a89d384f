/**
 * The request engine the middleware and the guard share: options checked and
 * compiled once, then request facts → decision → response. Each of them is a thin
 * adapter that gathers the facts from a Hono `Context` or from a `Request` and the
 * runtime's connection info, and does what the outcome says.
 *
 * The decision keeps django-maintenance-mode's order: per-route force → state
 * (forced setting, schedule, read-only for `GET`/`HEAD`/`OPTIONS`) → the bypass link and cookie → tests → client IP →
 * paths → the redirect target itself → `ignoreRequest` (asked last: it may cost a
 * database lookup).
 */
import type { StateCache } from "./_cache.ts";
import type { Internals } from "./_internal.ts";
import { checkOptions, checkTypes } from "./_options.ts";
import type { PageOptions } from "./_page.ts";
import { createResponder, type RenderResult } from "./_response.ts";
import {
  compileIpRules,
  compilePathRules,
  type IpRule,
  parseIp,
  type PathRule,
} from "./_rules.ts";
import { isActive, type Snapshot } from "./_state.ts";
import type { MaintenanceState } from "./_state.ts";
import { isTestRun } from "./_test_env.ts";

/**
 * Options the middleware and the guard share.
 *
 * @example
 * ```ts
 * import type { SharedOptions } from "@x/maintenance";
 * const options: SharedOptions = { ignorePaths: ["/healthz"], ignoreIps: ["10.0.0.0/8"] };
 * ```
 */
export interface SharedOptions {
  /** Status of the maintenance response. Default 503. */
  status?: number;
  /** `Retry-After` seconds when the state has neither `endsAt` nor `retryAfter`. Default 300. */
  retryAfter?: number;
  /**
   * Redirect here instead of answering: a path (`/maintenance`) or an http(s) URL.
   * GET and HEAD get 302, other methods 303 (the client follows with a GET, so a form
   * post is not re-sent to the target). A request for the target itself (same host
   * name and path, whatever the scheme and port) gets the maintenance page instead.
   */
  redirectTo?: string;
  /** Options for the default page. */
  page?: PageOptions;
  /** MAINTENANCE_MODE: `true`/`false` forces on/off; undefined (default) reads the store. */
  enabled?: boolean;
  /**
   * MAINTENANCE_MODE_IGNORE_URLS: exempt paths, as routing sees them. A string matches
   * that path and everything below it; a RegExp is tested against the path.
   */
  ignorePaths?: PathRule[];
  /** MAINTENANCE_MODE_IGNORE_IP_ADDRESSES: exempt IPs, CIDR ranges (v4/v6), RegExps. */
  ignoreIps?: IpRule[];
  /**
   * How many reverse proxies in front of the app append to `X-Forwarded-For`.
   * Default 0: the header is ignored, since any client can send it. With N, the
   * address N hops from the right is the client's; a request whose header is missing,
   * has fewer than N entries, or has no IP address at that hop has no client IP, so no
   * `ignoreIps` rule lets it through.
   */
  trustedProxies?: number;
  /** MAINTENANCE_MODE_IGNORE_TESTS: never block while running tests (`NODE_ENV=test`, `node:test`, `*_test.ts`). */
  ignoreTests?: boolean;
}

/** Every option name of the middleware and the guard. */
const KNOWN = [
  "enabled",
  "ignorePaths",
  "ignoreIps",
  "getClientIp",
  "trustedProxies",
  "ignoreRequest",
  "ignoreTests",
  "render",
  "status",
  "retryAfter",
  "redirectTo",
  "page",
];

/** What the decision knows of a request. */
export interface RequestFacts {
  /** The request path, as the handler after us routes on it. */
  readonly path: string;
  /**
   * The URL's own path when routing spells it otherwise (Hono's `strict: false`, a
   * `getPath` option): a client that follows the redirect asks for this one.
   */
  readonly urlPath?: string;
  /** The client address, if known. */
  readonly ip: string | undefined;
  /** Per-route `forceMaintenance(value)`, if the route has it. */
  readonly force?: boolean;
  /** A `GET`, `HEAD` or `OPTIONS`: it passes read-only maintenance. */
  readonly safe?: boolean;
}

/** The compiled rules of the pure decision. */
export interface DecisionRules {
  /** `enabled` option: `true`/`false` forces, `undefined` reads the state. */
  readonly forced: boolean | undefined;
  /** Whether this process runs tests and `ignoreTests` is on. */
  readonly skipForTests: boolean;
  /** Exempt client IPs. */
  readonly ip: (ip: string | undefined) => boolean;
  /** Exempt paths. */
  readonly path: (path: string) => boolean;
  /** The redirect target's path on this site, never redirected to itself. */
  readonly redirectPath: string | undefined;
}

/**
 * The pure decision: `"maintenance"` when the request gets the maintenance response
 * (unless `ignoreRequest` lets it through), `"pass"` otherwise.
 */
export function decide(
  rules: DecisionRules,
  snap: Snapshot,
  now: number,
  facts: RequestFacts,
): "pass" | "maintenance" {
  if (facts.force !== undefined) return facts.force ? "maintenance" : "pass";
  const on = rules.forced ?? isActive(snap, now);
  if (!on || facts.safe && snap.state.readOnly) return "pass";
  if (rules.skipForTests) return "pass";
  if (rules.ip(facts.ip)) return "pass";
  if (rules.path(facts.path)) return "pass";
  if (
    rules.redirectPath !== undefined &&
    (facts.path === rules.redirectPath || facts.urlPath === rules.redirectPath)
  ) {
    return "pass";
  }
  return "maintenance";
}

/** Connection info as `Deno.serve`, `Bun.serve` and `@hono/node-server` pass it. */
interface ConnInfo {
  remoteAddr?: { hostname?: string };
  requestIP?: (req: Request) => { address?: string } | null;
  incoming?: { socket?: { remoteAddress?: string } };
}

/**
 * The peer address of the connection, from the runtime's second fetch argument
 * (Deno's `info`, Bun's `server`, `@hono/node-server`'s env). Hono's `getConnInfo` is
 * per runtime (`hono/deno`, `hono/bun`): one import here serves all three.
 */
export function connectionIp(req: Request, env: unknown): string | undefined {
  if (env === null || typeof env !== "object") return undefined;
  const e = env as ConnInfo;
  const deno = e.remoteAddr?.hostname;
  if (typeof deno === "string") return deno;
  if (typeof e.requestIP === "function") {
    try {
      const addr = e.requestIP(req)?.address;
      if (typeof addr === "string") return addr;
    } catch {
      // not a Bun server after all
    }
  }
  const node = e.incoming?.socket?.remoteAddress;
  return typeof node === "string" ? node : undefined;
}

/**
 * The client address: the peer, or with `trustedProxies` N the `X-Forwarded-For`
 * entry N hops from the right (never the header alone: any client can send it).
 */
export function clientIp(
  req: Request,
  peer: string | undefined,
  trustedProxies: number,
): string | undefined {
  if (trustedProxies <= 0) return peer;
  const header = req.headers.get("x-forwarded-for");
  if (header === null) return undefined;
  const hops = header.split(",");
  const i = hops.length - trustedProxies;
  if (i < 0) return undefined;
  // Some proxies (Azure's, among others) add the client's port: "1.2.3.4:5678",
  // "[2001:db8::1]:443". The port is not part of the address a rule names.
  const hop = hops[i].trim();
  const ported = /^\[([^\]]+)\](?::\d{1,5})?$/.exec(hop) ??
    /^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$/.exec(hop);
  const ip = ported === null ? hop : ported[1];
  return parseIp(ip) === undefined ? undefined : ip;
}

/**
 * A copy of `res` marked `private, no-store`, for a client let through during
 * maintenance for who it is (the bypass cookie, an exempt IP, `ignoreRequest`): a CDN
 * that cached it would serve the app to everyone the maintenance holds back. A 101
 * upgrade cannot be copied and is never cached.
 */
export function privately(res: Response): Response {
  if (res.status < 200 || res.status > 599) return res;
  // A copy: a Response from fetch() has immutable headers.
  const out = new Response(res.body, res);
  out.headers.set("cache-control", "private, no-store");
  return out;
}

/** What the engine needs from an adapter for one request `X`. */
export interface Adapter<X> {
  /** The request. */
  request(x: X): Request;
  /** Request facts but the client IP, which is asked for only when a rule needs it. */
  facts(x: X): { path: string; urlPath?: string; force?: boolean };
  /** The client IP without `getClientIp`: the peer, or the trusted proxies' hop. */
  ip(x: X, trustedProxies: number): string | undefined;
}

/** The callbacks the adapters take, over their own request type `X`. */
export interface Callbacks<X> {
  /** `getClientIp` */
  getClientIp?: (x: X) => string | undefined;
  /** `ignoreRequest` */
  ignoreRequest?: (x: X) => boolean | Promise<boolean>;
  /** `render` */
  render?: (
    x: X,
    state: MaintenanceState,
  ) => RenderResult | Promise<RenderResult>;
}

/**
 * What a request gets: run the app (`"pass"`), run it and mark its answer private
 * (`"private"`), or this response (the maintenance page, a redirect, the bypass
 * cookie).
 */
export type Outcome = "pass" | "private" | Response;

/** The state a request sees: the snapshot, the instant, whether maintenance holds. */
export interface Seen {
  /** The state. */
  readonly snap: Snapshot;
  /** The instant of the decision (0 when the state has no window: any instant will do). */
  readonly t: number;
  /** Maintenance is in force for this request (before exemptions). */
  readonly on: boolean;
}

/** A compiled engine; see {@linkcode createEngine}. */
export interface Engine<X> {
  /** `enabled` option. */
  readonly forced: boolean | undefined;
  /** The controller's cache. */
  readonly cache: StateCache;
  /** The state this request sees; `hot` is the fresh copy when the adapter has one. */
  see(hot: Snapshot | undefined): Seen | Promise<Seen>;
  /** The decision for a request that sees `seen`, through every rule. */
  check(x: X, seen: Seen): Outcome | Promise<Outcome>;
  /** The maintenance response (or redirect) for this request. */
  block(x: X, seen: Seen): Response | Promise<Response>;
}

/**
 * Checks the shared options (`TypeError`/`RangeError` saying what to change) and
 * compiles them, once. `what` names the thing in messages (`"maintenance"`, `"guard"`).
 */
export function createEngine<X>(
  internals: Internals,
  options: SharedOptions & Callbacks<X>,
  what: string,
  adapter: Adapter<X>,
): Engine<X> {
  checkOptions(options, what, KNOWN);
  checkTypes(options, {
    enabled: "boolean",
    ignoreTests: "boolean",
    getClientIp: "function",
    ignoreRequest: "function",
    render: "function",
  }, { enabled: " (or left out: read the store)" });
  if (options.redirectTo !== undefined && options.render !== undefined) {
    throw new TypeError(
      "give redirectTo or render, not both",
    );
  }
  const trusted = options.trustedProxies ?? 0;
  if (!Number.isInteger(trusted) || trusted < 0 || trusted > 10) {
    throw new RangeError(
      "trustedProxies must be a whole number from 0 (default) to 10",
    );
  }
  const responder = createResponder(options);
  const rules: DecisionRules = {
    forced: options.enabled,
    skipForTests: options.ignoreTests === true && isTestRun(),
    ip: compileIpRules(options.ignoreIps),
    path: compilePathRules(options.ignorePaths),
    redirectPath: responder.redirectPath,
  };
  const needsIp = options.ignoreIps !== undefined &&
    options.ignoreIps.length > 0;
  const ip = options.getClientIp ?? ((x: X) => adapter.ip(x, trusted));
  const ignoreRequest = options.ignoreRequest &&
    failClosed(options.ignoreRequest, internals.onError, "ignoreRequest");
  const render = options.redirectTo === undefined ? options.render : undefined;
  const { cache, now, bypass, onError } = internals;
  let warned = false;
  const forced = options.enabled;

  function seeAt(snap: Snapshot, t: number): Seen {
    return { snap, t, on: forced ?? isActive(snap, t) };
  }

  function see(hot: Snapshot | undefined): Seen | Promise<Seen> {
    const snap = hot ?? cache.current();
    if (snap === undefined) {
      return Promise.resolve(cache.get()).then((s) => seeAt(s, now()));
    }
    // A state without a window is the same at any instant: no clock needed.
    const t = snap.startsAtMs === -Infinity && snap.endsAtMs === Infinity
      ? 0
      : now();
    return seeAt(snap, t);
  }

  async function block(x: X, { snap, t }: Seen): Promise<Response> {
    const custom = render ? await render(x, snap.shown) : undefined;
    return responder.respond(adapter.request(x), snap, t, custom);
  }

  async function check(x: X, seen: Seen): Promise<Outcome> {
    const { snap, t, on } = seen;
    let hasSecret = snap.state.bypass !== undefined;
    if (hasSecret && !bypass) {
      hasSecret = false;
      if (!warned) {
        warned = true;
        onError(
          new Error(
            "the state has a bypass secret, but this controller has no bypass: " +
              "pass bypass: bypassCookie() from @x/maintenance/bypass to createMaintenance",
          ),
        );
      }
    }
    // Scheduled and not started yet: only `/<secret>` is answered (its cookie).
    if (!on && !(hasSecret && forced === undefined && snap.enabled)) {
      return "pass";
    }
    const req = adapter.request(x);
    const f = adapter.facts(x);
    const urlPath = f.urlPath !== f.path ? f.urlPath : undefined;
    if (hasSecret) {
      // `/<secret>` (for the path routing sees or the URL's own), then the cookie.
      const r = await bypass!.handle(
        req,
        snap,
        on,
        f.force === undefined,
        f.path,
        urlPath,
      );
      if (r !== undefined) return r;
    }
    const facts: RequestFacts = {
      path: f.path,
      urlPath,
      ip: needsIp ? ip(x) : undefined,
      force: f.force,
      safe: snap.state.readOnly && /^(GET|HEAD|OPTIONS)$/.test(req.method),
    };
    if (decide(rules, snap, t, facts) === "pass") {
      // Let through for who the client is (an exempt IP), not for what it asks: the
      // page it gets must not be cached for everyone else.
      return facts.force === undefined && facts.ip !== undefined &&
          rules.ip(facts.ip)
        ? "private"
        : "pass";
    }
    if (
      ignoreRequest !== undefined && facts.force === undefined &&
      await ignoreRequest(x)
    ) {
      return "private";
    }
    return await block(x, seen);
  }

  return { forced, cache, see, check, block };
}

/**
 * `predicate` that fails closed: when it throws or rejects (the staff database is
 * down), the answer is "not exempt", and `onError` hears of it once until it answers
 * again.
 */
function failClosed<A extends unknown[]>(
  predicate: (...args: A) => boolean | Promise<boolean>,
  onError: (error: Error) => void,
  name: string,
): (...args: A) => boolean | Promise<boolean> {
  let failing = false;
  function failed(e: unknown): false {
    if (!failing) {
      failing = true;
      const why = e instanceof Error ? e.message : String(e);
      try {
        onError(
          new Error(
            `${name} threw: ${why}; the request was blocked (told once until ` +
              "it answers again)",
            { cause: e },
          ),
        );
      } catch {
        // an onError that throws must not break a request
      }
    }
    return false;
  }
  return function exempt(...args: A): boolean | Promise<boolean> {
    let answer: boolean | Promise<boolean>;
    try {
      answer = predicate(...args);
    } catch (e) {
      return failed(e);
    }
    if (answer instanceof Promise) {
      return answer.then((yes) => {
        failing = false;
        return yes;
      }, failed);
    }
    failing = false;
    return answer;
  };
}
