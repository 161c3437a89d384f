/**
 * Secret bypass: while maintenance is on, whoever visits `/<secret>` gets a signed
 * cookie and then passes, as Laravel's `php artisan down --secret`. The state holds
 * only a salted SHA-256 of the secret (`bypass`: `salt:hash`, hex).
 *
 * The cookie is an HMAC-SHA256 over the stored hash, so every instance that shares the
 * state computes the same value (no per-process key), a new secret (or `off`) changes
 * it, and checking a request is one constant-time string comparison against a value
 * computed once per state. The HMAC key is the stored hash itself unless you give a
 * `cookieKey`: then reading the state is not enough to mint a cookie.
 *
 * @module
 */
import type { Snapshot } from "./_snapshot.ts";
import { timingSafeEqual } from "./_timing_safe.ts";

/**
 * How the bypass cookie is made; an option of `createMaintenance({ bypass })`.
 *
 * @example
 * ```ts
 * import { createMaintenance, MemoryStore } from "@x/maintenance";
 * const mm = createMaintenance({
 *   store: new MemoryStore(),
 *   bypass: { cookieKey: "a-long-random-key-from-your-secret-store", maxAge: 3600 },
 * });
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
 * The bypass cookie, compiled from {@linkcode BypassOptions}: checks cookies and
 * answers visits to `/<secret>`. One per controller (`mm.bypass`); the middleware and
 * any fetch-level guard of that controller share it.
 *
 * @example
 * ```ts
 * import { createBypassCookie, toSnapshot } from "@x/maintenance";
 * const bypass = createBypassCookie();
 * const snap = toSnapshot({ enabled: true });
 * await bypass.ready(snap);
 * bypass.ok("maintenance_bypass=forged", snap); // false
 * ```
 */
export interface BypassCookie {
  /** The cookie's name. */
  readonly name: string;
  /**
   * Computes the expected cookie values for this state, once per `maxAge` period:
   * `undefined` when they are ready (or the state has no secret), else a promise to
   * await before {@linkcode BypassCookie.ok}. Values serve two periods, and a call in
   * the second makes the next ones meanwhile, so calling it on every request (as
   * {@linkcode BypassCookie.check} does) never leaves `ok()` without them. Never
   * rejects.
   */
  ready(snap: Snapshot): Promise<void> | undefined;
  /**
   * Whether a `Cookie` header carries a valid bypass cookie for this state. Synchronous:
   * `false` until {@linkcode BypassCookie.ready} has finished for the state, and again
   * two `maxAge` periods after the last `ready()` call.
   */
  ok(cookieHeader: string | null | undefined, snap: Snapshot): boolean;
  /**
   * {@linkcode BypassCookie.ok} that waits for {@linkcode BypassCookie.ready} when it
   * must: a boolean at once in the steady state, a promise only for the first request
   * that needs the value of a new state.
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
}

/** Letters, digits, `-` and `_`: safe as one path segment, no escaping. */
const SECRET_RE = /^[A-Za-z0-9_-]+$/;
/** A path that could be `/<secret>`. */
const VISIT_RE = /^\/[A-Za-z0-9_-]{16,128}$/;
const STORED_RE = /^([0-9a-f]{32}):([0-9a-f]{64})$/;
/** Domain separation for the cookie's HMAC. */
const COOKIE_CONTEXT = "@x/maintenance bypass cookie v2\n";
const encoder = new TextEncoder();

/**
 * Checks a bypass secret: 16 to 128 letters, digits, `-` or `_` (it becomes the path
 * `/<secret>`). Returns it; throws `TypeError`/`RangeError` saying what to change.
 *
 * @example
 * ```ts
 * import { checkSecret } from "@x/maintenance";
 * checkSecret("b7c1e0f4-4d1a-4c0e-9a55-0c6a2f1d9e3b"); // ok
 * ```
 */
export function checkSecret(secret: unknown, name = "secret"): string {
  if (typeof secret !== "string") {
    throw new TypeError(
      `${name} must be a string of 16 to 128 letters, digits, "-" or "_"`,
    );
  }
  if (secret.length < 16 || secret.length > 128) {
    throw new RangeError(
      `${name} must be 16 to 128 characters long (got ${secret.length}); ` +
        "use a random one (generateSecret(), or --with-secret on the CLI)",
    );
  }
  if (!SECRET_RE.test(secret)) {
    throw new TypeError(
      `${name} may only contain letters, digits, "-" and "_", since it becomes the path /<secret>`,
    );
  }
  return secret;
}

function base64url(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function hex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

function fromHex(text: string): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) {
    out[i] = parseInt(text.slice(i * 2, i * 2 + 2), 16);
  }
  return out;
}

/**
 * A random bypass secret: 24 random bytes, base64url (32 characters).
 *
 * @example
 * ```ts
 * import { createMaintenance, generateSecret, MemoryStore } from "@x/maintenance";
 * const mm = createMaintenance({ store: new MemoryStore() });
 * const secret = generateSecret();
 * await mm.enable({ secret });
 * console.log(`bypass: https://example.com/${secret}`);
 * ```
 */
export function generateSecret(): string {
  return base64url(crypto.getRandomValues(new Uint8Array(24)));
}

async function digest(
  salt: Uint8Array<ArrayBuffer>,
  secret: string,
): Promise<string> {
  const text = encoder.encode(secret);
  const data = new Uint8Array(salt.length + text.length);
  data.set(salt);
  data.set(text, salt.length);
  return hex(new Uint8Array(await crypto.subtle.digest("SHA-256", data)));
}

/**
 * Hashes a secret for the state's `bypass` field: `salt:hash` in hex, a fresh random
 * 16-byte salt and SHA-256 of salt and secret (Web Crypto). The secret is checked with
 * {@linkcode checkSecret} first.
 *
 * @example
 * ```ts
 * import { hashSecret } from "@x/maintenance";
 * const bypass = await hashSecret("b7c1e0f4-4d1a-4c0e-9a55-0c6a2f1d9e3b");
 * // "3f0c…:9a1e…" (32 hex, colon, 64 hex)
 * ```
 */
export async function hashSecret(secret: string): Promise<string> {
  checkSecret(secret);
  const salt = crypto.getRandomValues(new Uint8Array(16));
  return `${hex(salt)}:${await digest(salt, secret)}`;
}

/**
 * Whether `secret` is the one hashed into `stored` (`salt:hash`), compared in constant
 * time. `false` for a malformed `stored` or secret.
 *
 * @example
 * ```ts
 * import { hashSecret, verifySecret } from "@x/maintenance";
 * const stored = await hashSecret("b7c1e0f4-4d1a-4c0e-9a55-0c6a2f1d9e3b");
 * await verifySecret("b7c1e0f4-4d1a-4c0e-9a55-0c6a2f1d9e3b", stored); // true
 * ```
 */
export async function verifySecret(
  secret: string,
  stored: string,
): Promise<boolean> {
  const m = STORED_RE.exec(stored);
  if (m === null || typeof secret !== "string") return false;
  return timingSafeEqual(await digest(fromHex(m[1]), secret), m[2]);
}

/**
 * The value of every cookie called `name` in a `Cookie` header. Each pair is read on
 * its own (`=` is looked for only up to its `;`), so the time is linear in the
 * header's length, whatever the header holds.
 */
function* cookieValues(header: string, name: string): Generator<string> {
  let from = 0;
  while (from < header.length) {
    let end = header.indexOf(";", from);
    if (end === -1) end = header.length;
    const pair = header.slice(from, end);
    const eq = pair.indexOf("=");
    if (eq !== -1 && pair.slice(0, eq).trim() === name) {
      let v = pair.slice(eq + 1).trim();
      if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) {
        v = v.slice(1, -1);
      }
      yield v;
    }
    from = end + 1;
  }
}

const KNOWN = new Set(["cookieKey", "cookieName", "maxAge", "secure"]);

/**
 * Compiles {@linkcode BypassOptions} (validated here, once) into a
 * {@linkcode BypassCookie}. `createMaintenance()` makes one (`mm.bypass`); make your
 * own only to use the bypass without a controller.
 *
 * @example
 * ```ts
 * import { createBypassCookie } from "@x/maintenance";
 * const bypass = createBypassCookie({ cookieName: "__Host-bypass", maxAge: 3600 });
 * ```
 */
export function createBypassCookie(options: BypassOptions = {}): BypassCookie {
  if (options === null || typeof options !== "object") {
    throw new TypeError("bypass options must be an object, such as {}");
  }
  for (const k of Object.keys(options)) {
    if (!KNOWN.has(k)) {
      throw new TypeError(
        `unknown bypass option "${k}" (known: ${[...KNOWN].join(", ")})`,
      );
    }
  }
  const name = options.cookieName ?? "maintenance_bypass";
  if (typeof name !== "string" || !/^[A-Za-z0-9_.-]{1,64}$/.test(name)) {
    throw new TypeError(
      'bypass.cookieName must be 1 to 64 letters, digits, ".", "-" or "_"',
    );
  }
  const maxAge = options.maxAge ?? 43_200;
  if (!Number.isInteger(maxAge) || maxAge < 1 || maxAge > 31_536_000) {
    throw new RangeError(
      "bypass.maxAge must be a whole number of seconds from 1 to 31536000",
    );
  }
  if (options.secure !== undefined && typeof options.secure !== "boolean") {
    throw new TypeError(
      "bypass.secure must be true, false, or left out (Secure on https)",
    );
  }
  // Browsers match the prefixes whatever their case (RFC 6265bis), and drop a
  // `__host-...` cookie without Secure as they drop a `__Host-...` one.
  const lower = name.toLowerCase();
  const prefixed = lower.startsWith("__host-") || lower.startsWith("__secure-");
  if (prefixed && options.secure === false) {
    throw new TypeError(
      `bypass.cookieName ${name} needs Secure; remove secure: false or rename the cookie`,
    );
  }
  const secureOpt = prefixed ? true : options.secure;
  const cookieKey = options.cookieKey;
  if (cookieKey !== undefined) {
    if (typeof cookieKey !== "string") {
      throw new TypeError("bypass.cookieKey must be a string");
    }
    if (cookieKey.length < 32) {
      throw new RangeError(
        "bypass.cookieKey must be at least 32 characters; generate one with `openssl rand -hex 32`",
      );
    }
  }

  let fixedKey: Promise<CryptoKey> | undefined;
  function hmacKey(stored: string): Promise<CryptoKey> {
    const make = (raw: string) =>
      crypto.subtle.importKey(
        "raw",
        encoder.encode(raw),
        { name: "HMAC", hash: "SHA-256" },
        false,
        ["sign"],
      );
    if (cookieKey === undefined) return make(stored);
    return fixedKey ??= make(cookieKey);
  }

  // The cookie's value is an HMAC over the stored hash and a period number: periods are
  // maxAge long, and a cookie is accepted in its own period and the ones either side
  // (instances' clocks differ a little). So the server, not just the browser, refuses
  // a cookie at most 2 * maxAge after it was given out, even if it is copied.
  const periodMs = maxAge * 1000;
  const periodNow = () => Math.floor(Date.now() / periodMs);
  async function compute(stored: string, period: number): Promise<string> {
    const key = await hmacKey(stored);
    const mac = await crypto.subtle.sign(
      "HMAC",
      key,
      encoder.encode(`${COOKIE_CONTEXT}${stored}\n${period}`),
    );
    return base64url(new Uint8Array(mac));
  }

  /**
   * The cookie values of periods `period - 1` to `period + 2`: enough to check cookies
   * in `period` and in the one after it, so a period that ends never leaves `ok()`
   * without values (the next ones are made meanwhile).
   */
  interface Accepted {
    period: number;
    stored: string;
    values: [string, string, string, string];
  }

  // Values per state snapshot; the last ones also by hash, so a new snapshot of the
  // same state (another cache, a re-read) needs no new HMAC.
  const accepted = new WeakMap<Snapshot, Accepted>();
  const pending = new WeakMap<Snapshot, Promise<void>>();
  let last: Accepted | undefined;

  /** The values for a snapshot that serve `period`, if made. */
  function lookup(snap: Snapshot, period: number): Accepted | undefined {
    const serves = (a: Accepted | undefined) =>
      a !== undefined && (period === a.period || period === a.period + 1);
    const a = accepted.get(snap);
    if (serves(a)) return a;
    if (serves(last) && last!.stored === snap.state.bypass) {
      accepted.set(snap, last!);
      return last;
    }
    return undefined;
  }

  /** Makes the values for `period`, once per snapshot at a time. */
  function make(snap: Snapshot, stored: string, period: number): Promise<void> {
    let p = pending.get(snap);
    if (p === undefined) {
      p = Promise.all([
        compute(stored, period - 1),
        compute(stored, period),
        compute(stored, period + 1),
        compute(stored, period + 2),
      ]).then(
        (values) => {
          const a: Accepted = { period, stored, values };
          accepted.set(snap, a);
          last = a;
        },
        () => {}, // Web Crypto failing: no cookie is valid, nothing breaks
      ).finally(() => pending.delete(snap));
      pending.set(snap, p);
    }
    return p;
  }

  function ready(snap: Snapshot): Promise<void> | undefined {
    const stored = snap.state.bypass;
    if (stored === undefined) return undefined;
    const period = periodNow();
    const a = lookup(snap, period);
    if (a === undefined) return make(snap, stored, period);
    // Into the last period these values serve: make the next ones meanwhile.
    if (a.period !== period) make(snap, stored, period);
    return undefined;
  }

  /** The values accepted now (the period's own first), or undefined if not made. */
  function acceptedNow(snap: Snapshot): string[] | undefined {
    const period = periodNow();
    const a = lookup(snap, period);
    if (a === undefined) return undefined;
    const i = period - a.period; // 0 or 1
    return [a.values[i + 1], a.values[i], a.values[i + 2]];
  }

  function ok(
    cookieHeader: string | null | undefined,
    snap: Snapshot,
  ): boolean {
    if (!cookieHeader || snap.state.bypass === undefined) return false;
    const wants = acceptedNow(snap);
    if (wants === undefined) return false;
    let found = false;
    for (const v of cookieValues(cookieHeader, name)) {
      // Every comparison runs: which period matched is not timed either.
      for (const want of wants) {
        if (timingSafeEqual(v, want)) found = true;
      }
    }
    return found;
  }

  function check(
    cookieHeader: string | null | undefined,
    snap: Snapshot,
  ): boolean | Promise<boolean> {
    if (!cookieHeader || snap.state.bypass === undefined) return false;
    const p = ready(snap);
    return p === undefined
      ? ok(cookieHeader, snap)
      : p.then(() => ok(cookieHeader, snap));
  }

  async function answer(
    req: Request,
    snap: Snapshot,
    secret: string,
    stored: string,
  ): Promise<Response | undefined> {
    if (!(await verifySecret(secret, stored))) return undefined;
    await ready(snap);
    const value = acceptedNow(snap)?.[0];
    if (value === undefined) return undefined;
    const secure = secureOpt ?? req.url.startsWith("https:");
    return new Response(null, {
      status: 302,
      headers: {
        location: "/",
        "set-cookie":
          `${name}=${value}; Path=/; Max-Age=${maxAge}; HttpOnly; ` +
          `SameSite=Lax${secure ? "; Secure" : ""}`,
        "cache-control": "no-store",
        "referrer-policy": "no-referrer",
      },
    });
  }

  function visit(
    req: Request,
    snap: Snapshot,
    path?: string,
  ): Promise<Response | undefined> | undefined {
    const stored = snap.state.bypass;
    if (stored === undefined) return undefined;
    if (req.method !== "GET" && req.method !== "HEAD") return undefined;
    const p = path ?? new URL(req.url).pathname;
    if (!VISIT_RE.test(p)) return undefined;
    return answer(req, snap, p.slice(1), stored);
  }

  return { name, ready, ok, check, visit };
}

let defaultBypass: BypassCookie | undefined;

/**
 * Whether a `Cookie` header carries a valid bypass cookie for a state, with the default
 * cookie settings (or `bypass`, e.g. `mm.bypass`). Synchronous: call
 * `bypass.ready(snap)` first and await what it returns, if anything; until then it
 * says `false`.
 *
 * @example
 * ```ts
 * import { bypassCookieOk, createBypassCookie, toSnapshot } from "@x/maintenance";
 * const bypass = createBypassCookie();
 * const snap = toSnapshot({ enabled: true });
 * await bypass.ready(snap);
 * bypassCookieOk("maintenance_bypass=abc", snap, bypass); // false
 * ```
 */
export function bypassCookieOk(
  cookieHeader: string | null | undefined,
  snap: Snapshot,
  bypass?: BypassCookie,
): boolean {
  return (bypass ?? (defaultBypass ??= createBypassCookie())).ok(
    cookieHeader,
    snap,
  );
}
