/**
 * Builds the maintenance response: a 503 page or JSON chosen by `Accept`, or a
 * redirect (302, or 303 for methods other than GET and HEAD); with `Retry-After` and
 * `Cache-Control: no-store`. Page and JSON are
 * rendered once per state, not per request.
 *
 * @module
 */
import { getPath } from "hono/utils/url";
import type { Snapshot } from "./_snapshot.ts";
import type { MaintenanceState } from "./_state.ts";
import { type PageOptions, renderPage } from "./_page.ts";

/**
 * A custom page: HTML text, or a whole Response. A Response with a 2xx status is sent
 * with the configured status instead (default 503), so that caches and crawlers see
 * maintenance; another status it chose (500, a 302 redirect) is kept. Either way it
 * gets `Cache-Control: no-store`, `Retry-After` unless it set its own, and no body for
 * `HEAD`.
 *
 * @example
 * ```ts
 * import type { RenderResult } from "@x/maintenance";
 * const html: RenderResult = "<h1>Back soon</h1>";
 * const response: RenderResult = new Response("Back soon", { status: 503 });
 * ```
 */
export type RenderResult = string | Response;

/**
 * How the maintenance response looks.
 *
 * @example
 * ```ts
 * import type { ResponseOptions } from "@x/maintenance";
 * const opts: ResponseOptions = { status: 503, retryAfter: 600, page: { title: "Be right back" } };
 * ```
 */
export interface ResponseOptions {
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
}

/**
 * A compiled responder: (request, snapshot, now, custom page) → Response.
 *
 * @example
 * ```ts
 * import { createResponder, type Responder, toSnapshot } from "@x/maintenance";
 * const responder: Responder = createResponder({ retryAfter: 600 });
 * const res = responder.respond(new Request("http://x/"), toSnapshot({ enabled: true }), Date.now());
 * res.status; // 503
 * ```
 */
export interface Responder {
  /** The redirect target's path when it is on this site, to avoid redirect loops. */
  readonly redirectPath: string | undefined;
  /** Builds the response. `custom` is what `render` returned, if any. */
  respond(
    req: Request,
    snap: Snapshot,
    now: number,
    custom?: RenderResult,
  ): Response;
}

/** A checked redirect target. */
interface RedirectTarget {
  /** The `Location` header value. */
  location: string;
  /** For a path on this site: the path as routing will see it when the client follows it. */
  path: string | undefined;
  /**
   * For an absolute URL: its host name and routed path, to spot a redirect to itself.
   * The scheme and port are left out: behind a TLS proxy the app sees
   * `http://example.com:8000/` for `https://example.com/`.
   */
  hostname: string | undefined;
  absolutePath: string | undefined;
}

/**
 * The path Hono routes a request for `url` by (normalized as a client resolves a
 * `Location`, then percent-decoded as `c.req.path` is), so the target itself is
 * recognised however it is spelled.
 */
function routedPath(url: URL): string {
  return getPath(new Request(url.href));
}

function checkRedirect(target: string): RedirectTarget {
  // deno-lint-ignore no-control-regex
  if (typeof target !== "string" || /[\u0000-\u001f\u007f]/.test(target)) {
    throw new TypeError(
      "redirectTo must be a path or http(s) URL without control characters",
    );
  }
  if (
    target.startsWith("/") && !target.startsWith("//") &&
    !target.startsWith("/\\")
  ) {
    let path: string;
    let location: string;
    try {
      const url = new URL(target, "http://localhost");
      path = routedPath(url);
      // Percent-encoded as a browser would send it: a header value must be ASCII
      // ("/wartung-€" would make every maintenance response fail).
      location = url.pathname + url.search + url.hash;
    } catch {
      throw new TypeError(
        `redirectTo ${
          JSON.stringify(target)
        } is not a valid path; use e.g. "/maintenance"`,
      );
    }
    return {
      location,
      path,
      hostname: undefined,
      absolutePath: undefined,
    };
  }
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    throw new TypeError(
      `redirectTo ${
        JSON.stringify(target)
      } is neither a path starting with "/" nor an ` +
        `absolute http(s) URL; use e.g. "/maintenance" or "https://status.example.com/"`,
    );
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new TypeError(
      `redirectTo must use http: or https:, not ${url.protocol} (e.g. "https://status.example.com/")`,
    );
  }
  return {
    location: url.href,
    path: undefined,
    hostname: url.hostname,
    absolutePath: routedPath(url),
  };
}

/**
 * Whether the request is for the absolute redirect target itself (a loop): the same
 * host name and routed path, whatever the scheme and port.
 */
function isSelf(req: Request, target: RedirectTarget): boolean {
  if (target.hostname === undefined) return false;
  try {
    return new URL(req.url).hostname === target.hostname &&
      getPath(req) === target.absolutePath;
  } catch {
    return false;
  }
}

/** How a bad option value reads in a message: a string is shown as one. */
function shown(value: unknown): string {
  return typeof value === "string"
    ? `the string ${JSON.stringify(value)}`
    : String(value);
}

function checkStatus(status: number): number {
  if (!Number.isInteger(status) || status < 200 || status > 599) {
    throw new RangeError(
      `status must be an HTTP status code from 200 to 599 (got ${
        shown(status)
      })`,
    );
  }
  return status;
}

function checkSeconds(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 0 || value > 31_536_000) {
    throw new RangeError(
      `${name} must be a whole number of seconds from 0 to 31536000 (got ${
        shown(value)
      })`,
    );
  }
  return value;
}

/** The keys of `page`. */
const PAGE_KEYS = ["title", "defaultMessage", "lang"] as const;

function checkPage(page: PageOptions | undefined): PageOptions {
  if (page === undefined) return {};
  if (page === null || typeof page !== "object" || Array.isArray(page)) {
    throw new TypeError(
      'page must be an object such as { title: "Down for maintenance" }',
    );
  }
  for (const k of Object.keys(page)) {
    if (!(PAGE_KEYS as readonly string[]).includes(k)) {
      throw new TypeError(
        `unknown page option "${k}" (known: ${PAGE_KEYS.join(", ")})`,
      );
    }
  }
  for (const k of PAGE_KEYS) {
    if (page[k] !== undefined && typeof page[k] !== "string") {
      throw new TypeError(`page.${k} must be a string`);
    }
  }
  return page;
}

/** Whether the client prefers JSON over HTML (an `Accept` naming JSON with a q at least as high). */
function wantsJson(accept: string | null): boolean {
  // Media types are case-insensitive: "Application/JSON" asks for JSON too.
  if (accept === null || !/json/i.test(accept)) return false;
  let json = -1;
  let html = -1;
  for (const part of accept.split(",")) {
    const [type, ...params] = part.trim().toLowerCase().split(";");
    let q = 1;
    for (const p of params) {
      const [k, v] = p.trim().split("=");
      if (k === "q") q = Number(v) || 0;
    }
    const t = type.trim();
    if (t === "application/json" || t.endsWith("+json")) {
      json = Math.max(json, q);
    } else if (t === "text/html" || t === "application/xhtml+xml") {
      html = Math.max(html, q);
    } else if (t === "*/*" || t === "text/*") html = Math.max(html, q * 0.99);
  }
  return json > 0 && json >= html;
}

/** Per-state memo: the rendered page and JSON body. */
interface Rendered {
  snap: Snapshot;
  html: string;
  json: string;
}

/**
 * Seconds for `Retry-After`: until `endsAt` when known and still ahead, else the
 * state's `retryAfter`, else the default. An `endsAt` already past (maintenance forced
 * on by `enabled: true` or `forceMaintenance(true)` after the window) says nothing of
 * when to come back: counting to it would say 1 second forever, and clients that honour
 * it would retry every second.
 *
 * @example
 * ```ts
 * import { retryAfterSeconds, toSnapshot } from "@x/maintenance";
 * retryAfterSeconds(toSnapshot({ enabled: true, retryAfter: 60 }), Date.now(), 300); // 60
 * ```
 */
export function retryAfterSeconds(
  snap: Snapshot,
  now: number,
  fallback: number,
): number {
  if (snap.endsAtMs !== Infinity && snap.endsAtMs > now) {
    return Math.max(1, Math.ceil((snap.endsAtMs - now) / 1000));
  }
  return snap.state.retryAfter ?? fallback;
}

function jsonBody(state: MaintenanceState): string {
  const body: Record<string, unknown> = {
    error: "maintenance",
    message: state.message ?? "Service temporarily unavailable for maintenance",
  };
  if (state.endsAt) body.endsAt = state.endsAt;
  // JSON.stringify escapes quotes and control characters; also escape <, >, & so the
  // body is safe even if a client sniffs it as HTML.
  return JSON.stringify(body).replace(
    /[<>&\u2028\u2029]/g,
    (ch) => "\\u" + ch.charCodeAt(0).toString(16).padStart(4, "0"),
  );
}

/**
 * Compiles response options (validated here, once) into a responder.
 * Throws `TypeError`/`RangeError` saying what to change.
 *
 * @example
 * ```ts
 * import { createResponder, toSnapshot } from "@x/maintenance";
 * const responder = createResponder({ retryAfter: 120 });
 * const res = responder.respond(new Request("http://x/"), toSnapshot({ enabled: true }), Date.now());
 * res.status; // 503
 * ```
 */
export function createResponder(options: ResponseOptions = {}): Responder {
  const status = checkStatus(options.status ?? 503);
  const defaultRetry = checkSeconds(options.retryAfter ?? 300, "retryAfter");
  const redirect = options.redirectTo === undefined
    ? undefined
    : checkRedirect(options.redirectTo);
  const page = checkPage(options.page);
  let memo: Rendered | undefined;

  function rendered(snap: Snapshot): Rendered {
    if (memo === undefined || memo.snap !== snap) {
      memo = {
        snap,
        html: renderPage(snap.state, page, status),
        json: jsonBody(snap.state),
      };
    }
    return memo;
  }

  return {
    redirectPath: redirect?.path,
    respond(req, snap, now, custom) {
      const retry = String(retryAfterSeconds(snap, now, defaultRetry));
      // A request for the target itself gets the page, not a redirect loop.
      if (redirect && !isSelf(req, redirect)) {
        // 303 for POST and the like: the client follows with a GET, so a form's body
        // (a password, say) is not re-sent to the target.
        const safe = req.method === "GET" || req.method === "HEAD";
        return new Response(null, {
          status: safe ? 302 : 303,
          headers: {
            location: redirect.location,
            "cache-control": "no-store",
            "retry-after": retry,
          },
        });
      }
      if (custom === undefined) {
        // The default page or JSON, rendered once per state. The headers are one
        // object literal of one shape, not grown key by key: cheaper to build, and
        // for the runtime to copy into the response.
        const r = rendered(snap);
        const json = wantsJson(req.headers.get("accept"));
        const body = req.method === "HEAD" ? null : json ? r.json : r.html;
        const type = json ? "application/json" : "text/html; charset=utf-8";
        const refresh = snap.state.refresh;
        return new Response(body, {
          status,
          headers: refresh
            ? {
              "cache-control": "no-store",
              "retry-after": retry,
              "content-type": type,
              vary: "Accept",
              refresh: String(refresh),
            }
            : {
              "cache-control": "no-store",
              "retry-after": retry,
              "content-type": type,
              vary: "Accept",
            },
        });
      }
      const headers: Record<string, string> = {
        "cache-control": "no-store",
        "retry-after": retry,
      };
      if (snap.state.refresh) headers.refresh = String(snap.state.refresh);
      // Not `instanceof Response`: @hono/node-server 1.x replaces the global Response,
      // and a Response from fetch() or Response.json() is then not an instance of it.
      if (typeof custom !== "string") {
        if (
          custom === null || typeof custom !== "object" ||
          typeof (custom as { status?: unknown }).status !== "number"
        ) {
          throw new TypeError(
            `render must return HTML text or a Response, not ${
              custom === null ? "null" : typeof custom
            }`,
          );
        }
        // Copy: a Response from fetch() has immutable headers. A cached maintenance
        // page would outlive the maintenance: no-store, whatever the render said.
        const h = new Headers(custom.headers);
        for (const [k, v] of Object.entries(headers)) {
          if (!h.has(k)) h.set(k, v);
        }
        h.set("cache-control", "no-store");
        // A 2xx (c.html() gives 200) would tell caches and crawlers the page is the
        // content: answer with our status. A status the render chose otherwise stays.
        const ok = custom.status >= 200 && custom.status < 300;
        let body = custom.body;
        if (req.method === "HEAD" && body !== null) {
          body.cancel().catch(() => {});
          body = null;
        }
        return new Response(
          body,
          ok ? { status, headers: h } : {
            status: custom.status,
            statusText: custom.statusText,
            headers: h,
          },
        );
      }
      headers["content-type"] = "text/html; charset=utf-8";
      headers.vary = "Accept";
      return new Response(req.method === "HEAD" ? null : custom, {
        status,
        headers,
      });
    },
  };
}
