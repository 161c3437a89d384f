/**
 * Admin routes for maintenance mode: a small Hono app to mount anywhere, with
 * `GET /` (the state as JSON), `POST /on` and `POST /off`. Every request must pass
 * `authorize` (401 otherwise), state-changing requests from another site are refused
 * (403), and the routes stay reachable while maintenance is on.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { createMaintenance, MemoryStore } from "@x/maintenance";
 * import { adminRoutes, bearerToken } from "@x/maintenance/admin";
 *
 * const mm = createMaintenance({ store: new MemoryStore() });
 * const app = new Hono();
 * app.use(mm.middleware());
 * app.route(
 *   "/maintenance-mode",
 *   adminRoutes(mm, { authorize: bearerToken("a-long-random-token-from-your-secret-store") }),
 * );
 * // curl -X POST -H "Authorization: Bearer $TOKEN" --data-urlencode 'message=Back at 14:00' \
 * //   https://example.com/maintenance-mode/on
 * ```
 *
 * @module
 */
import { type Context, Hono, type MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { timingSafeEqual } from "hono/utils/buffer";
import { generateSecret } from "./_secret.ts";
import { enabledState, type EnableOptions } from "./_enable.ts";
import { internals } from "./_internal.ts";
import { checkOptions } from "./_options.ts";
import {
  instantHelp,
  isActive,
  type MaintenanceState,
  parseInstant,
  type Snapshot,
  toSnapshot,
} from "./_state.ts";
import type { Maintenance } from "./maintenance.ts";
import { adminRouteMark } from "./middleware.ts";

/**
 * Decides whether a request may use the admin routes. Only `true` lets it in.
 *
 * @example
 * ```ts
 * import type { Authorize } from "@x/maintenance/admin";
 * const authorize: Authorize = (c) => c.req.header("x-role") === "admin"; // your auth here
 * ```
 */
export type Authorize = (c: Context) => boolean | Promise<boolean>;

/**
 * Options of {@linkcode adminRoutes}.
 *
 * @example
 * ```ts
 * import { type AdminRoutesOptions, bearerToken } from "@x/maintenance/admin";
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
];
const MAX_BODY = 16 * 1024;

class BadRequest extends Error {
  constructor(message: string, readonly status: 400 | 415 = 400) {
    super(message);
  }
}

/** The state as the admin routes show it: the bypass hash only as a yes/no. */
function view(snap: Snapshot, t: number): Record<string, unknown> {
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
  if (type === "" || /^application\/([a-z.+-]*\+)?json\b/.test(type)) {
    const text = await c.req.text();
    if (text.trim() === "") return {};
    if (type === "") {
      throw new BadRequest("send the body as application/json or a form", 415);
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
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
  if (/^(application\/x-www-form-urlencoded|multipart\/form-data)/.test(type)) {
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
  if (typeof value === "string" && /^\d{1,9}$/.test(value)) {
    return Number(value);
  }
  // Numbers are range-checked by enabledState.
  if (value === undefined || typeof value === "number") return value;
  throw new BadRequest(`${name} must be a whole number of seconds`);
}

/** A time whose `+hh:mm` offset a form body turned into ` hh:mm`. */
const PLUS_AS_SPACE_RE =
  /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)? (\d{2}:\d{2})$/;

function instant(value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value === "string" && !Number.isNaN(parseInstant(value))) {
    return value;
  }
  const plus = typeof value === "string" ? PLUS_AS_SPACE_RE.exec(value) : null;
  throw new BadRequest(
    `${name} must be an ISO-8601 date and time such as 2030-01-01T14:00:00Z${
      plus === null
        ? instantHelp(value)
        : `; a form reads "+" as a space: send +${plus[1]} as %2B${plus[1]} ` +
          "(curl --data-urlencode), or use Z"
    }`,
  );
}

function flag(value: unknown, name: string): boolean {
  const v = typeof value === "string" ? value.toLowerCase() : value;
  if (
    v === undefined || v === false || v === "0" || v === "false" || v === "off"
  ) {
    return false;
  }
  if (v === true || v === "1" || v === "true" || v === "on") return true;
  throw new BadRequest(`${name} must be true or false`);
}

/** The `enable()` options a `POST /on` asks for, and the secret it asks to generate. */
function toEnableOptions(
  fields: Record<string, unknown>,
): { options: EnableOptions; generated?: string } {
  for (const k of Object.keys(fields)) {
    if (!FIELDS.includes(k)) {
      throw new BadRequest(
        `unknown field "${k}"; known fields: ${FIELDS.join(", ")}`,
      );
    }
  }
  const { message, secret } = fields;
  for (const [k, v] of Object.entries({ message, secret })) {
    if (v !== undefined && typeof v !== "string") {
      throw new BadRequest(`${k} must be a string`);
    }
  }
  const withSecret = flag(fields.withSecret, "withSecret");
  if (withSecret && secret !== undefined) {
    throw new BadRequest(
      "give either secret or withSecret (generate one), not both",
    );
  }
  const generated = withSecret ? generateSecret() : undefined;
  const options: EnableOptions = {
    message: message as string | undefined,
    retryAfter: seconds(fields.retryAfter, "retryAfter"),
    refresh: seconds(fields.refresh, "refresh"),
    startsAt: instant(fields.from, "from"),
    endsAt: instant(fields.until, "until"),
    secret: generated ?? secret as string | undefined,
  };
  return { options, generated };
}

/**
 * Whether a state-changing request may come from where it comes from. Browsers send
 * `Origin` (and `Sec-Fetch-Site`) on every POST: they must say this site. A request
 * with neither comes from a script (curl, a deploy job), which a cross-site page cannot
 * make a browser send with the user's cookies, except as a form from a browser too old
 * to send `Origin`: so form bodies without `Origin` are refused too, unless they carry
 * `Authorization: Bearer`. Not `hono/csrf`: it lets a cross-origin JSON post through,
 * and refuses curl's POST without a body.
 */
function sameOrigin(c: Context, origins: readonly string[]): boolean {
  const site = c.req.header("sec-fetch-site");
  if (site === "same-origin") return true;
  const origin = c.req.header("origin");
  if (origin !== undefined) {
    return origins.includes(origin) || origin === new URL(c.req.url).origin;
  }
  if (site !== undefined) return false;
  // Browsers never add a Bearer header to a form (they do add Basic/Digest they hold).
  if (/^\s*Bearer\s/i.test(c.req.header("authorization") ?? "")) return true;
  return !/^\s*(application\/x-www-form-urlencoded|multipart\/form-data|text\/)/i
    .test(c.req.header("content-type") ?? "");
}

function checkOrigins(origins: unknown): string[] {
  if (origins === undefined) return [];
  if (!Array.isArray(origins)) {
    throw new TypeError(
      'origins must be an array of origins, such as ["https://example.com"]',
    );
  }
  for (const o of origins as unknown[]) {
    const url = typeof o === "string" && URL.canParse(o) ? new URL(o) : null;
    if (!/^https?:$/.test(url?.protocol ?? "") || url?.origin !== o) {
      throw new TypeError(
        `origins: ${
          JSON.stringify(o)
        } is not an origin; write scheme and host only, e.g. "https://example.com"`,
      );
    }
  }
  return origins as string[];
}

/**
 * The admin routes over a controller, as a Hono app to mount with `app.route()`:
 * `GET /` the state as JSON, `POST /on` (JSON or form fields: `message`,
 * `retryAfter`, `from`, `until`, `refresh`, `secret`, `withSecret`), `POST /off`.
 * Throws `TypeError` without `authorize`: admin routes open to anyone would let
 * anyone take the site down.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { createMaintenance, MemoryStore } from "@x/maintenance";
 * import { adminRoutes } from "@x/maintenance/admin";
 *
 * const mm = createMaintenance({ store: new MemoryStore() });
 * const app = new Hono();
 * app.route(
 *   "/ops/maintenance",
 *   adminRoutes(mm, { authorize: (c) => c.req.header("x-role") === "admin" }),
 * );
 * ```
 */
export function adminRoutes(
  mm: Maintenance,
  options: AdminRoutesOptions,
): Hono {
  const { cache, setState, now } = internals(mm, "adminRoutes");
  checkOptions(options, "adminRoutes", ["authorize", "origins"]);
  const { authorize } = options;
  if (typeof authorize !== "function") {
    throw new TypeError(
      "adminRoutes needs an authorize function, (c) => boolean | Promise<boolean>: " +
        "without it anyone could switch maintenance mode on or off. " +
        "Use { authorize: bearerToken(process.env.MAINTENANCE_ADMIN_TOKEN) } or check your session.",
    );
  }
  const origins = checkOrigins(options.origins);

  // Every admin route starts with these two: the mark that keeps it reachable while
  // maintenance is on (the middleware looks for it on the matched routes, and
  // disregards it when an app route registered earlier on the same method and path
  // may answer first), then the cross-site check and `authorize`. Other paths under
  // the mount are not marked.
  const own = adminRouteMark();
  const gate: MiddlewareHandler = async (c, next) => {
    c.header("cache-control", "no-store");
    if (!/^(GET|HEAD|OPTIONS)$/.test(c.req.method) && !sameOrigin(c, origins)) {
      return c.json({
        error: "forbidden",
        message: "cross-site request refused: post from this site, or from " +
          "a script without an Origin header (with Authorization: Bearer, or JSON)",
      }, 403);
    }
    if ((await authorize(c)) !== true) {
      c.header("www-authenticate", 'Bearer realm="maintenance"');
      return c.json({ error: "unauthorized" }, 401);
    }
    await next();
  };

  async function write(
    c: Context,
    state: MaintenanceState,
    secret?: string,
  ): Promise<Response> {
    let written: MaintenanceState;
    try {
      written = await setState(state);
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
    // A generated secret is shown once, here, and never stored.
    return c.json({ ...view(toSnapshot(written), now()), secret });
  }

  const app = new Hono();
  app.get("/", own, gate, async (c) => c.json(view(await cache.get(), now())));
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
      let generated: string | undefined;
      try {
        const asked = toEnableOptions(await readFields(c));
        generated = asked.generated;
        state = await enabledState(asked.options, now());
      } catch (e) {
        if (e instanceof BadRequest) {
          return c.json({
            error: e.status === 415 ? "unsupported_media_type" : "bad_request",
            message: e.message,
          }, e.status);
        }
        if (e instanceof TypeError || e instanceof RangeError) {
          const message = e.message.replace(/\bendsAt\b/g, "until")
            .replace(/\bstartsAt\b/g, "from");
          return c.json({ error: "bad_request", message }, 400);
        }
        throw e;
      }
      return write(c, state, generated);
    },
  );
  app.post("/off", own, gate, (c) => write(c, { enabled: false }));
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

/**
 * An {@linkcode Authorize} that accepts `Authorization: Bearer <token>` with this token,
 * compared in constant time (`timingSafeEqual` of `hono/utils/buffer`, over SHA-256
 * digests). The token must be at least 16 characters of `A-Z a-z 0-9 - . _ ~ + /`
 * (RFC 6750), e.g. from `openssl rand -hex 32`.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { createMaintenance, MemoryStore } from "@x/maintenance";
 * import { adminRoutes, bearerToken } from "@x/maintenance/admin";
 *
 * const mm = createMaintenance({ store: new MemoryStore() });
 * const app = new Hono();
 * const token = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"; // e.g. Deno.env.get("MAINTENANCE_ADMIN_TOKEN")
 * app.route("/maintenance-mode", adminRoutes(mm, { authorize: bearerToken(token) }));
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
  return async function authorizeBearer(c: Context): Promise<boolean> {
    const header = c.req.header("authorization") ?? "";
    const m = header.length > 4096 ? null : /^Bearer +(\S+) *$/i.exec(header);
    return m !== null && await timingSafeEqual(m[1], token);
  };
}
