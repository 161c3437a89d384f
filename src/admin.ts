/**
 * Admin routes: a small Hono app to mount anywhere (`app.route("/maintenance-mode",
 * mm.adminRoutes({ authorize }))`): `GET /` the state as JSON, `POST /on`, `POST /off`.
 * Every request must pass `authorize` (401 otherwise); state-changing requests from
 * another site are refused (403); the routes stay reachable while maintenance is on.
 *
 * @module
 */
import { type Context, Hono, type MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { generateSecret } from "./_bypass.ts";
import { enabledState, type EnableOptions } from "./_enable.ts";
import { adminRouteMark } from "./middleware.ts";
import { isActive, type Snapshot, toSnapshot } from "./_snapshot.ts";
import { instantHelp, type MaintenanceState, parseInstant } from "./_state.ts";
import { timingSafeEqual } from "./_timing_safe.ts";
import { internals } from "./_internal.ts";
import type { Maintenance } from "./maintenance.ts";

/**
 * Decides whether a request may use the admin routes. Only `true` lets it in.
 *
 * @example
 * ```ts
 * import type { Authorize } from "@x/maintenance";
 * const authorize: Authorize = (c) => c.req.header("x-role") === "admin"; // your auth here
 * ```
 */
export type Authorize = (c: Context) => boolean | Promise<boolean>;

/**
 * Options of `mm.adminRoutes()`.
 *
 * @example
 * ```ts
 * import { bearerToken, type AdminRoutesOptions } from "@x/maintenance";
 * const options: AdminRoutesOptions = {
 *   authorize: bearerToken("a-long-random-token-from-your-secret-store"),
 *   origins: ["https://admin.example.com"],
 * };
 * ```
 */
export interface AdminRoutesOptions {
  /**
   * Required: who may read and switch maintenance mode. Called for every admin
   * request; anything but `true` gets 401. Use {@linkcode bearerToken} for a shared
   * token, or check your app's session (cookie sessions are covered by the
   * cross-site check).
   */
  authorize: Authorize;
  /**
   * Origins besides the request URL's own from which browsers may post, e.g.
   * `https://example.com` when a proxy in front changes the scheme or host the app
   * sees. Requests a browser marks `Sec-Fetch-Site: same-origin` pass anyway.
   */
  origins?: string[];
}

/** Fields `POST /on` takes, as JSON or form fields. */
const FIELDS = [
  "message",
  "retryAfter",
  "from",
  "until",
  "refresh",
  "secret",
  "withSecret",
] as const;
const FIELD_SET: ReadonlySet<string> = new Set(FIELDS);
const FORM_RE =
  /^\s*(application\/x-www-form-urlencoded|multipart\/form-data|text\/)/i;
const MAX_BODY = 16 * 1024;

class BadRequest extends Error {
  constructor(message: string, readonly status: 400 | 415 = 400) {
    super(message);
  }
}

/** The state as the admin routes show it: the bypass hash only as a yes/no. */
interface StateView {
  enabled: boolean;
  scheduled: boolean;
  bypass: boolean;
  state: Omit<MaintenanceState, "bypass">;
  secret?: string;
}

function view(snap: Snapshot, t: number): StateView {
  const { bypass, ...state } = snap.state;
  return {
    enabled: isActive(snap, t),
    scheduled: snap.enabled && t < snap.startsAtMs,
    bypass: bypass !== undefined,
    state,
  };
}

async function readFields(c: Context): Promise<Record<string, unknown>> {
  const type = (c.req.header("content-type") ?? "").toLowerCase();
  if (type === "") {
    const text = await c.req.text();
    if (text.trim() !== "") {
      throw new BadRequest(
        "send the body as application/json or a form",
        415,
      );
    }
    return {};
  }
  if (/^application\/([a-z.+-]*\+)?json\b/.test(type)) {
    let value: unknown;
    try {
      const text = await c.req.text();
      value = text.trim() === "" ? {} : JSON.parse(text);
    } catch {
      throw new BadRequest("the body is not valid JSON");
    }
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      throw new BadRequest(
        'the JSON body must be an object, such as {"message":"Back soon"}',
      );
    }
    return value as Record<string, unknown>;
  }
  if (
    type.startsWith("application/x-www-form-urlencoded") ||
    type.startsWith("multipart/form-data")
  ) {
    let form: FormData;
    try {
      form = await c.req.formData();
    } catch {
      throw new BadRequest("the form body could not be read");
    }
    // No prototype: a field called "constructor" or "__proto__" is just an unknown
    // field, not one "given twice" nor a prototype to set.
    const out: Record<string, unknown> = Object.create(null);
    for (const [k, v] of form) {
      if (typeof v !== "string") {
        throw new BadRequest(`field "${k}" must be text, not a file`);
      }
      if (k in out) throw new BadRequest(`field "${k}" is given twice`);
      // An empty form input means "not given". Browsers send a textarea's line
      // breaks as CR LF: they are newlines, which a message may hold.
      if (v !== "") out[k] = v.replace(/\r\n/g, "\n");
    }
    return out;
  }
  throw new BadRequest(
    `content-type ${
      type.split(";")[0]
    } is not supported; send application/json or a form`,
    415,
  );
}

function seconds(value: unknown, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value === "string" && /^\d{1,9}$/.test(value)) {
    return Number(value);
  }
  if (typeof value === "number") return value; // range checked by enabledState
  throw new BadRequest(`${name} must be a whole number of seconds`);
}

/** A time whose `+hh:mm` offset a form body turned into ` hh:mm`. */
const PLUS_AS_SPACE_RE =
  /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)? (\d{2}:\d{2})$/;

function instant(value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string" || Number.isNaN(parseInstant(value))) {
    const plus = typeof value === "string"
      ? PLUS_AS_SPACE_RE.exec(value)
      : null;
    const help = plus === null
      ? instantHelp(value)
      : `; a form reads "+" as a space: send +${plus[1]} as %2B${plus[1]} ` +
        "(curl --data-urlencode), or use Z";
    throw new BadRequest(
      `${name} must be an ISO-8601 date and time such as 2030-01-01T14:00:00Z${help}`,
    );
  }
  return value;
}

function flag(value: unknown, name: string): boolean {
  if (value === undefined || value === false) return false;
  if (value === true) return true;
  if (typeof value === "string") {
    const v = value.toLowerCase();
    if (v === "1" || v === "true" || v === "on") return true;
    if (v === "0" || v === "false" || v === "off") return false;
  }
  throw new BadRequest(`${name} must be true or false`);
}

function toEnableOptions(
  fields: Record<string, unknown>,
): { options: EnableOptions; withSecret: boolean } {
  for (const k of Object.keys(fields)) {
    if (!FIELD_SET.has(k)) {
      throw new BadRequest(
        `unknown field "${k}"; known fields: ${FIELDS.join(", ")}`,
      );
    }
  }
  const { message, secret } = fields;
  if (message !== undefined && typeof message !== "string") {
    throw new BadRequest("message must be a string");
  }
  if (secret !== undefined && typeof secret !== "string") {
    throw new BadRequest("secret must be a string");
  }
  const withSecret = flag(fields.withSecret, "withSecret");
  if (withSecret && secret !== undefined) {
    throw new BadRequest(
      "give either secret or withSecret (generate one), not both",
    );
  }
  const options: EnableOptions = {
    message,
    retryAfter: seconds(fields.retryAfter, "retryAfter"),
    refresh: seconds(fields.refresh, "refresh"),
    startsAt: instant(fields.from, "from"),
    endsAt: instant(fields.until, "until"),
    secret: withSecret ? generateSecret() : secret,
  };
  return { options, withSecret };
}

/**
 * Whether a state-changing request may come from where it comes from. Browsers send
 * `Origin` (and `Sec-Fetch-Site`) on every POST: they must say this site. A request
 * with neither comes from a script (curl, a deploy job), which a cross-site page cannot
 * make a browser send with the user's cookies, except as a form from a browser too old
 * to send `Origin`: so form bodies without `Origin` are refused too, as `hono/csrf`
 * does.
 */
function sameOrigin(c: Context, origins: ReadonlySet<string>): boolean {
  const site = c.req.header("sec-fetch-site");
  if (site === "same-origin") return true;
  const origin = c.req.header("origin");
  if (origin !== undefined) {
    return origins.has(origin) || origin === new URL(c.req.url).origin;
  }
  if (site !== undefined) return false;
  const type = c.req.header("content-type");
  return type === undefined || !FORM_RE.test(type);
}

function checkOrigins(origins: unknown): Set<string> {
  if (origins === undefined) return new Set();
  if (!Array.isArray(origins)) {
    throw new TypeError(
      'origins must be an array of origins, such as ["https://example.com"]',
    );
  }
  const out = new Set<string>();
  for (const o of origins) {
    let ok = false;
    try {
      const u = new URL(String(o));
      ok = (u.protocol === "https:" || u.protocol === "http:") &&
        u.origin === o;
    } catch {
      ok = false;
    }
    if (!ok) {
      throw new TypeError(
        `origins: ${
          JSON.stringify(o)
        } is not an origin; write scheme and host only, e.g. "https://example.com"`,
      );
    }
    out.add(o as string);
  }
  return out;
}

const ADMIN_KNOWN = new Set(["authorize", "origins"]);

/**
 * Builds the admin routes over a controller. Use `mm.adminRoutes({ authorize })`
 * rather than this. Throws `TypeError` without `authorize`: admin routes open to
 * anyone would let anyone take the site down.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { bearerToken, createMaintenance, MemoryStore } from "@x/maintenance";
 * const mm = createMaintenance({ store: new MemoryStore() });
 * const app = new Hono();
 * app.use(mm.middleware());
 * app.route(
 *   "/maintenance-mode",
 *   mm.adminRoutes({ authorize: bearerToken("a-long-random-token-from-your-secret-store") }),
 * );
 * ```
 */
export function adminRoutes(
  mm: Maintenance,
  options: AdminRoutesOptions,
): Hono {
  const { cache, setState, now } = internals(mm, "adminRoutes");
  const target = { snapshot: () => cache.get(), setState, now };
  if (options === null || typeof options !== "object") {
    throw new TypeError(
      "adminRoutes needs options with an authorize function, such as " +
        "{ authorize: bearerToken(token) }",
    );
  }
  for (const k of Object.keys(options)) {
    if (!ADMIN_KNOWN.has(k)) {
      throw new TypeError(
        `unknown adminRoutes option "${k}" (known: ${
          [...ADMIN_KNOWN].join(", ")
        })`,
      );
    }
  }
  if (typeof options.authorize !== "function") {
    throw new TypeError(
      "adminRoutes needs an authorize function, (c) => boolean | Promise<boolean>: " +
        "without it anyone could switch maintenance mode on or off. " +
        "Use { authorize: bearerToken(process.env.MAINTENANCE_ADMIN_TOKEN) } or check your session.",
    );
  }
  const authorize = options.authorize;
  const origins = checkOrigins(options.origins);

  const app = new Hono();
  // Every admin route starts with these two: the mark that keeps it reachable while
  // maintenance is on (the middleware looks for it on the matched routes, and
  // disregards it when an app route registered earlier on the same method and path
  // may answer first), then the cross-site check and `authorize`. Other paths under
  // the mount are not marked.
  const own = adminRouteMark();
  const gate: MiddlewareHandler = async (c, next) => {
    c.header("cache-control", "no-store");
    const method = c.req.method;
    const safe = method === "GET" || method === "HEAD" || method === "OPTIONS";
    if (!safe && !sameOrigin(c, origins)) {
      return c.json({
        error: "forbidden",
        message: "cross-site request refused: post from this site, " +
          "or from a script without an Origin header (JSON or no body)",
      }, 403);
    }
    if ((await authorize(c)) !== true) {
      c.header("www-authenticate", 'Bearer realm="maintenance"');
      return c.json({ error: "unauthorized" }, 401);
    }
    await next();
  };

  app.get("/", own, gate, async (c) => {
    const snap = await target.snapshot();
    return c.json(view(snap, target.now()));
  });

  app.post(
    "/on",
    own,
    gate,
    bodyLimit({
      maxSize: MAX_BODY,
      onError: (c) =>
        c.json({
          error: "too_large",
          message: `the body must be at most ${MAX_BODY} bytes`,
        }, 413),
    }),
    async (c) => {
      let state: MaintenanceState;
      let secret: string | undefined;
      try {
        const { options, withSecret } = toEnableOptions(await readFields(c));
        state = await enabledState(options, target.now());
        if (withSecret) secret = options.secret;
      } catch (e) {
        if (e instanceof BadRequest) {
          return c.json({
            error: e.status === 415 ? "unsupported_media_type" : "bad_request",
            message: e.message,
          }, e.status);
        }
        if (e instanceof TypeError || e instanceof RangeError) {
          const message = e.message.replace(/\bendsAt\b/g, "until").replace(
            /\bstartsAt\b/g,
            "from",
          );
          return c.json({ error: "bad_request", message }, 400);
        }
        throw e;
      }
      return write(c, state, secret);
    },
  );

  app.post("/off", own, gate, (c) => write(c, { enabled: false }));

  async function write(
    c: Context,
    state: MaintenanceState,
    secret?: string,
  ): Promise<Response> {
    let written: MaintenanceState;
    try {
      written = await target.setState(state);
    } catch (e) {
      // A write that failed may still have landed (a timeout after the store took it):
      // say so, and let the client read the state back with GET.
      return c.json({
        error: "store_failed",
        message: `the state was not written: ${
          e instanceof Error ? e.message : String(e)
        }${
          (e as { code?: unknown })?.code === "TIMEOUT"
            ? " (a write that timed out may still have landed: GET the state to see)"
            : ""
        }`,
      }, 503);
    }
    const body = view(toSnapshot(written), target.now());
    if (secret !== undefined) body.secret = secret; // shown once, never stored
    return c.json(body);
  }

  // Anything else on these paths, GET /on included, changes nothing.
  app.all("/", own, gate, (c) => {
    c.header("allow", "GET, HEAD");
    return c.json({ error: "method_not_allowed" }, 405);
  });
  for (const path of ["/on", "/off"]) {
    app.all(path, own, gate, (c) => {
      c.header("allow", "POST");
      return c.json({
        error: "method_not_allowed",
        message: `use POST ${path}`,
      }, 405);
    });
  }
  return app;
}

const encoder = new TextEncoder();

async function sha256(text: string): Promise<string> {
  const d = new Uint8Array(
    await crypto.subtle.digest("SHA-256", encoder.encode(text)),
  );
  let s = "";
  for (const b of d) s += b.toString(16).padStart(2, "0");
  return s;
}

/**
 * An {@linkcode Authorize} that accepts `Authorization: Bearer <token>` with this token,
 * compared in constant time (SHA-256 of both, then a constant-time comparison, so
 * neither content nor length leaks). The token must be at least 16 characters of
 * `A-Z a-z 0-9 - . _ ~ + /` (RFC 6750), e.g. from `openssl rand -hex 32`.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { bearerToken, createMaintenance, MemoryStore } from "@x/maintenance";
 * const mm = createMaintenance({ store: new MemoryStore() });
 * const app = new Hono();
 * const token = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
 * app.route("/maintenance-mode", mm.adminRoutes({ authorize: bearerToken(token) }));
 * // curl -X POST -H "Authorization: Bearer $TOKEN" https://example.com/maintenance-mode/off
 * ```
 */
export function bearerToken(token: string): Authorize {
  if (typeof token !== "string" || token === "") {
    throw new TypeError(
      "bearerToken needs the token as a string (is the environment variable set?)",
    );
  }
  if (token.length < 16) {
    throw new RangeError(
      "the bearer token must be at least 16 characters; generate one with `openssl rand -hex 32`",
    );
  }
  if (!/^[A-Za-z0-9\-._~+/]+=*$/.test(token)) {
    throw new TypeError(
      "the bearer token may only contain letters, digits and - . _ ~ + / (then =); " +
        "generate one with `openssl rand -hex 32`",
    );
  }
  let want: Promise<string> | undefined;
  return async function authorizeBearer(c: Context): Promise<boolean> {
    const header = c.req.header("authorization");
    if (header === undefined || header.length > 4096) return false;
    const m = /^Bearer +([^\s]+) *$/i.exec(header);
    if (m === null) return false;
    const [got, expected] = await Promise.all([
      sha256(m[1]),
      want ??= sha256(token),
    ]);
    return timingSafeEqual(got, expected);
  };
}
