/**
 * Secret bypass: while maintenance is on, whoever visits `/<secret>` gets a signed
 * cookie and then passes, as Laravel's `php artisan down --secret`. The state holds
 * only a salted SHA-256 of the secret (`bypass`: `salt:hash`, hex).
 *
 * The cookie is an HMAC-SHA256 over the stored hash and a period number, so every
 * instance that shares the state computes the same value (no per-process key), a new
 * secret (or `off`) changes it, and checking a request is a constant-time comparison
 * against values computed once per state and period. The HMAC key is the stored hash
 * itself unless you give a `cookieKey`: then reading the state is not enough to mint a
 * cookie.
 *
 * @module
 */
import { generateCookie } from "hono/cookie";
import { timingSafeEqual } from "hono/utils/buffer";
import { encodeBase64Url } from "hono/utils/encode";
import { checkOptions } from "./_options.ts";
import { digest } from "./_secret.ts";
import { checkInt, HASH_RE, type Snapshot } from "./_state.ts";

/**
 * How the bypass cookie is made: the options of `bypassCookie()`.
 *
 * @example
 * ```ts
 * import { type BypassOptions, bypassCookie } from "@x/maintenance/bypass";
 * const options: BypassOptions = {
 *   cookieKey: "a-long-random-key-from-your-secret-store",
 *   maxAge: 3600,
 * };
 * const bypass = bypassCookie(options);
 * ```
 */
export interface BypassOptions {
  /**
   * Key for the cookie's HMAC, at least 32 characters, the same on every instance.
   * Default: none, and the HMAC is keyed by the stored hash, so anyone who can read
   * the state (the file, the S3 object) can compute a valid cookie. With a key, they
   * also need the key.
   */
  cookieKey?: string;
  /**
   * Cookie name. Default `maintenance_bypass`. A `__Host-` or `__Secure-` name (in
   * any case) is always sent with `Secure`, as browsers require.
   */
  cookieName?: string;
  /** Cookie lifetime in seconds. Default 43200 (12 hours). The browser drops the cookie
   * then; the server refuses it at most twice this long after it was given out. */
  maxAge?: number;
  /** Send the cookie with `Secure`. Default: when the request URL is `https:`. */
  secure?: boolean;
}

/**
 * The secret bypass link's cookie, made by `bypassCookie()` from
 * `@x/maintenance/bypass`: pass it as `createMaintenance({ bypass })`.
 *
 * @example
 * ```ts
 * import { createMaintenance, MemoryStore } from "@x/maintenance";
 * import { type BypassCookie, bypassCookie } from "@x/maintenance/bypass";
 * const bypass: BypassCookie = bypassCookie({ maxAge: 3600 });
 * const mm = createMaintenance({ store: new MemoryStore(), bypass });
 * ```
 */
export interface BypassCookie {
  /** Made by `bypassCookie()`. */
  readonly kind: "bypassCookie";
}

/** The bypass of one controller, shared by its middleware and guard (internal). */
export interface BypassHandler extends BypassCookie {
  /**
   * Makes the cookie values for this state, once per `maxAge` period: `undefined`
   * when they are ready (or the state has no secret), else a promise to await first.
   * Values serve two periods, and a call in the second makes the next ones meanwhile,
   * so calling it on every request never leaves {@linkcode BypassHandler.check}
   * waiting at a period's end. Never rejects.
   */
  ready(snap: Snapshot): Promise<void> | undefined;
  /**
   * Whether a `Cookie` header carries a valid bypass cookie for this state: a boolean
   * at once when the values are ready, a promise only for the first request that needs
   * the values of a new state (or period).
   */
  check(
    cookieHeader: string | null | undefined,
    snap: Snapshot,
  ): boolean | Promise<boolean>;
  /**
   * When the request is `GET /<secret>` with this state's secret: the redirect to `/`
   * that sets the cookie. `undefined` at once when the request cannot be a visit (no
   * secret in the state, another method, a path that is not one secret-shaped
   * segment); else a promise of the response, or of `undefined` for a wrong secret.
   */
  visit(
    req: Request,
    snap: Snapshot,
    path?: string,
  ): Promise<Response | undefined> | undefined;
  /**
   * The bypass's part of the decision for a request that sees a state with a secret,
   * in one call (the engine's): the values made once per state ({@linkcode ready}),
   * then `GET /<secret>`'s redirect ({@linkcode visit}) for `path`, the one routing
   * sees, or when that cannot be a visit, for `urlPath`, the URL's own (if it differs),
   * else `"pass"` while maintenance is not `on` yet (a scheduled window), else
   * `"private"` for a valid cookie when `cookieCounts` (not on a `forceMaintenance`
   * route), else `undefined`: the other rules decide.
   */
  handle(
    req: Request,
    snap: Snapshot,
    on: boolean,
    cookieCounts: boolean,
    path: string,
    urlPath?: string,
  ): Promise<Response | "pass" | "private" | undefined>;
}

/** Domain separation for the cookie's HMAC. */
const COOKIE_CONTEXT = "@x/maintenance bypass cookie v2\n";
const encoder = new TextEncoder();

/**
 * Whether `secret` is the one hashed into `stored` (`salt:hash`), compared in constant
 * time. `false` for a malformed `stored` or secret.
 */
export async function verifySecret(
  secret: string,
  stored: string,
): Promise<boolean> {
  const m = HASH_RE.exec(stored);
  return m !== null && typeof secret === "string" &&
    await timingSafeEqual(
      await digest(
        new Uint8Array(m[1].match(/../g)!.map((h) => parseInt(h, 16))),
        secret,
      ),
      m[2],
    );
}

/**
 * Whether two strings are equal, in time that depends only on `want`'s length. Not
 * hono/utils/buffer's `timingSafeEqual`: that is async (two SHA-256 per call), and
 * the cookie check answers synchronously on the hot path.
 */
function same(got: string, want: string): boolean {
  let diff = got.length ^ want.length;
  for (let i = 0; i < want.length; i++) {
    diff |= got.charCodeAt(i) ^ want.charCodeAt(i);
  }
  return diff === 0;
}

/**
 * Compiles {@linkcode BypassOptions} (validated here, once, with messages that say
 * what to change) into the controller's {@linkcode BypassHandler}.
 */
export function createBypassCookie(options: BypassOptions = {}): BypassHandler {
  checkOptions(options, "bypass", [
    "cookieKey",
    "cookieName",
    "maxAge",
    "secure",
  ]);
  const {
    cookieName: name = "maintenance_bypass",
    maxAge = 43_200,
    secure,
    cookieKey,
  } = options;
  if (typeof name !== "string" || !/^[\w.-]{1,64}$/.test(name)) {
    throw new TypeError(
      'bypass.cookieName must be 1 to 64 letters, digits, ".", "-" or "_"',
    );
  }
  checkInt(maxAge, "bypass.maxAge", undefined, 1);
  if (secure !== undefined && typeof secure !== "boolean") {
    throw new TypeError(
      "bypass.secure must be true, false, or left out (Secure on https)",
    );
  }
  // Browsers match the prefixes whatever their case (RFC 6265bis), and drop a
  // `__host-...` cookie without Secure as they drop a `__Host-...` one.
  const prefixed = /^__(host|secure)-/i.test(name);
  if (prefixed && secure === false) {
    throw new TypeError(
      `bypass.cookieName ${name} needs Secure; remove secure: false or rename the cookie`,
    );
  }
  if (
    cookieKey !== undefined &&
    !(typeof cookieKey === "string" && cookieKey.length >= 32)
  ) {
    throw new (typeof cookieKey === "string" ? RangeError : TypeError)(
      "bypass.cookieKey must be a string of at least 32 characters; generate one with `openssl rand -hex 32`",
    );
  }

  // The cookie's value is an HMAC over the stored hash and a period number: periods are
  // maxAge long, and a cookie is accepted in its own period and the ones either side
  // (instances' clocks differ a little). So the server, not just the browser, refuses
  // a cookie at most 2 * maxAge after it was given out, even if it is copied.
  const periodNow = () => Math.floor(Date.now() / (maxAge * 1000));
  /** The values of `stored` for periods `period - 1` to `period + 2`. */
  async function compute(stored: string, period: number): Promise<string[]> {
    const key = await crypto.subtle.importKey(
      "raw",
      encoder.encode(cookieKey ?? stored),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign"],
    );
    return Promise.all([-1, 0, 1, 2].map(async (d) =>
      // Hono's base64url keeps the `=` padding; cookies never had it.
      encodeBase64Url(
        await crypto.subtle.sign(
          "HMAC",
          key,
          encoder.encode(`${COOKIE_CONTEXT}${stored}\n${period + d}`),
        ),
      ).replace(/=+$/, "")
    ));
  }

  /**
   * By stored hash: the values of periods `period - 1` to `period + 2`, enough to
   * check cookies in `period` and in the one after it. One state at a time in the
   * steady state; a few during a switch.
   */
  const made = new Map<string, { period: number; values: string[] }>();
  const pending = new Map<string, Promise<void>>();

  function ready(snap: Snapshot): Promise<void> | undefined {
    const stored = snap.state.bypass;
    if (stored === undefined) return undefined;
    const period = periodNow();
    const age = period - (made.get(stored)?.period ?? NaN);
    if (age === 0) return undefined;
    let p = pending.get(stored);
    if (p === undefined) {
      p = compute(stored, period).then(
        (values) => {
          if (made.size > 3) made.clear(); // states of the past
          made.set(stored, { period, values });
        },
        () => {}, // Web Crypto failing: no cookie is valid, nothing breaks
      ).finally(() => pending.delete(stored));
      pending.set(stored, p);
    }
    // Into the last period these values serve: the next ones are made meanwhile.
    return age === 1 ? undefined : p;
  }

  /** The values of the periods now - 1, now and now + 1; undefined if not made. */
  function accepted(stored: string): string[] | undefined {
    const a = made.get(stored);
    const i = periodNow() - (a?.period ?? NaN);
    return i === 0 || i === 1 ? a!.values.slice(i, i + 3) : undefined;
  }

  /**
   * Every cookie called `name` is tried, each pair read on its own (linear time). Not
   * hono/cookie's `parse`: it keeps only the first cookie of a name, so one of the same
   * name for a parent domain or another path would hide the bypass cookie.
   */
  function ok(header: string, stored: string): boolean {
    const wants = accepted(stored) ?? [];
    let found = false;
    for (const pair of header.split(";")) {
      const eq = pair.indexOf("=");
      if (eq < 1 || pair.slice(0, eq).trim() !== name) continue;
      const value = pair.slice(eq + 1).trim().replace(/^"(.*)"$/, "$1");
      // Every comparison runs: which period matched is not timed either.
      for (const want of wants) if (same(value, want)) found = true;
    }
    return found;
  }

  /** `GET /<secret>`: the redirect to `/` that sets the cookie, for the right secret. */
  async function answer(
    req: Request,
    snap: Snapshot,
    secret: string,
    stored: string,
  ): Promise<Response | undefined> {
    if (!(await verifySecret(secret, stored))) return undefined;
    await ready(snap);
    const value = accepted(stored)?.[1];
    return value === undefined ? undefined : new Response(null, {
      status: 302,
      headers: {
        location: "/",
        "set-cookie": generateCookie(name, value, {
          maxAge,
          httpOnly: true,
          sameSite: "Lax",
          secure: secure ?? (prefixed || req.url.startsWith("https:")),
        }),
        "cache-control": "no-store",
        "referrer-policy": "no-referrer",
      },
    });
  }

  function check(
    cookieHeader: string | null | undefined,
    snap: Snapshot,
  ): boolean | Promise<boolean> {
    const stored = snap.state.bypass;
    if (!cookieHeader || stored === undefined) return false;
    const p = ready(snap);
    return p === undefined
      ? ok(cookieHeader, stored)
      : p.then(() => ok(cookieHeader, stored));
  }

  function visit(
    req: Request,
    snap: Snapshot,
    path = new URL(req.url).pathname,
  ): Promise<Response | undefined> | undefined {
    const stored = snap.state.bypass;
    return stored !== undefined &&
        (req.method === "GET" || req.method === "HEAD") &&
        /^\/[\w-]{16,128}$/.test(path)
      ? answer(req, snap, path.slice(1), stored)
      : undefined;
  }

  /** The last state {@linkcode handle} readied: the values are made once per state. */
  let readied: Snapshot | undefined;

  return {
    kind: "bypassCookie",
    ready,
    check,
    visit,
    async handle(req, snap, on, cookieCounts, path, urlPath) {
      if (snap !== readied) {
        readied = snap;
        ready(snap);
      }
      const res = await (visit(req, snap, path) ??
        (urlPath === undefined ? undefined : visit(req, snap, urlPath)));
      if (res !== undefined) return res;
      if (!on) return "pass";
      if (cookieCounts && await check(req.headers.get("cookie"), snap)) {
        return "private";
      }
    },
  };
}
