/**
 * Builds the maintenance response: a 503 page or JSON chosen by `Accept`, or a
 * redirect (302, or 303 for methods other than GET and HEAD); with `Retry-After` and
 * `Cache-Control: no-store`. Page and JSON are rendered once per state, not per
 * request.
 *
 * @module
 */
import type { SharedOptions } from "./_engine.ts";
import { parseAccept } from "hono/utils/accept";
import { getPath } from "hono/utils/url";
import { checkOptions } from "./_options.ts";
import { renderPage } from "./_page.ts";
import { checkInt, shown, type Snapshot } from "./_state.ts";

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

/** How the maintenance response looks: the shared options that shape it. */
export type ResponseOptions = Pick<
  SharedOptions,
  "status" | "retryAfter" | "redirectTo" | "page"
>;

/** A compiled responder: (request, snapshot, now, custom page) → Response. */
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
interface Redirect {
  /** The `Location` header value. */
  location: string;
  /** The path routing sees when the client follows it (Hono's `getPath`). */
  path: string;
  /**
   * For an absolute URL, its host name, to spot a request for the target itself. The
   * scheme and port are left out: behind a TLS proxy the app sees
   * `http://example.com:8000/` for `https://example.com/`.
   */
  host?: string;
}

function checkRedirect(target: unknown): Redirect {
  const local = typeof target === "string" && /^\/(?![/\\])/.test(target);
  let url: URL | undefined;
  try {
    url = new URL(target as string, local ? "http://localhost" : undefined);
  } catch {
    // Refused below.
  }
  if (
    // deno-lint-ignore no-control-regex
    typeof target !== "string" || /[\u0000-\u001f\u007f]/.test(target) ||
    !url || !/^https?:$/.test(url.protocol)
  ) {
    throw new TypeError(
      `redirectTo must be a path such as "/maintenance" or an http(s) URL, ` +
        `without control characters (got ${shown(target)})`,
    );
  }
  // Normalized as a client resolves a `Location`, then percent-decoded as
  // `c.req.path` is, so the target itself is recognised however it is spelled.
  const path = getPath(new Request(url.href));
  return local
    // Percent-encoded as a browser would send it: a header value must be ASCII
    // ("/wartung-€" would make every maintenance response fail).
    ? { location: url.pathname + url.search + url.hash, path }
    : { location: url.href, path, host: url.hostname };
}

/** Whether the request is for the absolute redirect target itself (a loop). */
function isSelf(req: Request, target: Redirect): boolean {
  try {
    return target.host !== undefined &&
      new URL(req.url).hostname === target.host && getPath(req) === target.path;
  } catch {
    return false;
  }
}

/**
 * Whether the client prefers JSON over HTML: an `Accept` naming JSON (or a `+json`
 * type) with a q at least as high. Hono's parser; not `hono/accepts`' default
 * matcher, which knows no `+json` and breaks ties by order.
 */
function wantsJson(accept: string | null): boolean {
  // Browsers never ask for JSON: they skip the parse.
  if (accept === null || !/json/i.test(accept)) return false;
  let json = 0;
  let html = 0;
  for (const { type, q } of parseAccept(accept)) {
    if (/^application\/json$|\+json$/i.test(type)) json = Math.max(json, q);
    else if (/^(text\/html|application\/xhtml\+xml)$/i.test(type)) {
      html = Math.max(html, q);
    } else if (/^(\*|text)\/\*$/i.test(type)) html = Math.max(html, q * 0.99);
  }
  return json > 0 && json >= html;
}

/**
 * Seconds for `Retry-After`: until `endsAt` when known and still ahead, else the
 * state's `retryAfter`, else the default. An `endsAt` already past (maintenance forced
 * on by `enabled: true` or `forceMaintenance(true)` after the window) says nothing of
 * when to come back: counting to it would say 1 second forever, and clients that honour
 * it would retry every second.
 */
export function retryAfterSeconds(
  snap: Snapshot,
  now: number,
  fallback: number,
): number {
  return snap.endsAtMs !== Infinity && snap.endsAtMs > now
    ? Math.max(1, Math.ceil((snap.endsAtMs - now) / 1000))
    : snap.state.retryAfter ?? fallback;
}

const PAGE_KEYS = [
  "title",
  "defaultMessage",
  "lang",
  "badge",
  "backBy",
  "brand",
  "link",
  "linkText",
  "readOnly",
] as const;

/**
 * Compiles response options (validated here, once) into a responder. Throws
 * `TypeError`/`RangeError` saying what to change.
 */
export function createResponder(options: ResponseOptions = {}): Responder {
  const status = checkInt(
    options.status ?? 503,
    "status",
    "an HTTP status code",
    200,
    599,
  );
  const retryAfter = checkInt(options.retryAfter ?? 300, "retryAfter");
  const redirect = options.redirectTo === undefined
    ? undefined
    : checkRedirect(options.redirectTo);
  const { page = {} } = options;
  checkOptions(page, "page", PAGE_KEYS);
  for (const k of PAGE_KEYS) {
    if (page[k] !== undefined && typeof page[k] !== "string") {
      throw new TypeError(`page.${k} must be a string`);
    }
  }
  if (page.link !== undefined && !/^https?:\/\/[^\s]+$/i.test(page.link)) {
    throw new TypeError(
      `page.link must be an http(s) URL, such as "https://status.example.com/"`,
    );
  }
  /** The default page and JSON body of the last state seen. */
  let memo: { snap: Snapshot; html: string; json: string } | undefined;

  function rendered(snap: Snapshot, json: boolean): string {
    if (memo?.snap !== snap) {
      const { message, endsAt, readOnly } = snap.state;
      memo = {
        snap,
        html: renderPage(snap.state, page, status),
        // Also <, > and & escaped: safe even if a client sniffs it as HTML.
        json: JSON.stringify({
          error: "maintenance",
          message: message ?? "Service temporarily unavailable for maintenance",
          endsAt,
          readOnly,
        }).replace(
          /[<>&\u2028\u2029]/g,
          (ch) => "\\u" + ch.charCodeAt(0).toString(16).padStart(4, "0"),
        ),
      };
    }
    return json ? memo.json : memo.html;
  }

  return {
    redirectPath: redirect?.host === undefined ? redirect?.path : undefined,
    respond(req, snap, now, custom) {
      const retry = String(retryAfterSeconds(snap, now, retryAfter));
      // A request for the target itself gets the page, not a redirect loop.
      if (redirect && !isSelf(req, redirect)) {
        // 303 for POST and the like: the client follows with a GET, so a form's body
        // (a password, say) is not re-sent to the target.
        return new Response(null, {
          status: req.method === "GET" || req.method === "HEAD" ? 302 : 303,
          headers: {
            location: redirect.location,
            "cache-control": "no-store",
            "retry-after": retry,
          },
        });
      }
      const head = req.method === "HEAD";
      const refresh = snap.state.refresh;
      if (custom === undefined || typeof custom === "string") {
        const json = custom === undefined &&
          wantsJson(req.headers.get("accept"));
        // One object literal of one shape, not grown key by key: cheaper to build,
        // and for the runtime to copy into the response.
        const headers = {
          "cache-control": "no-store",
          "retry-after": retry,
          "content-type": json
            ? "application/json"
            : "text/html; charset=utf-8",
          vary: "Accept",
        };
        return new Response(head ? null : custom ?? rendered(snap, json), {
          status,
          headers: refresh ? { ...headers, refresh: String(refresh) } : headers,
        });
      }
      // Not `instanceof Response`: @hono/node-server 1.x replaces the global Response,
      // and a Response from fetch() or Response.json() is then not an instance of it.
      if (typeof custom?.status !== "number") {
        throw new TypeError(
          `render must return HTML text or a Response, not ${
            custom === null ? "null" : typeof custom
          }`,
        );
      }
      // Copy: a Response from fetch() has immutable headers. A cached maintenance
      // page would outlive the maintenance: no-store, whatever the render said.
      const h = new Headers(custom.headers);
      h.set("cache-control", "no-store");
      if (!h.has("retry-after")) h.set("retry-after", retry);
      if (refresh && !h.has("refresh")) h.set("refresh", String(refresh));
      if (head) custom.body?.cancel().catch(() => {});
      // A 2xx (c.html() gives 200) would tell caches and crawlers the page is the
      // content: answer with our status. A status the render chose otherwise stays.
      const own = custom.status < 200 || custom.status > 299;
      return new Response(head ? null : custom.body, {
        status: own ? custom.status : status,
        statusText: own ? custom.statusText : "",
        headers: h,
      });
    },
  };
}
