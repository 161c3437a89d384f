/**
 * Admin routes for maintenance mode: a small Hono app to mount anywhere, with
 * `GET /` (the state as JSON), `POST /on` and `POST /off`. Every request must pass
 * `authorize` (401 otherwise), state-changing requests from another site are refused
 * (403), and the routes stay reachable while maintenance is on. Every write records
 * who made it (`updatedBy`: the name `authorize` returned, else `"admin"`) and the
 * operator `note` the body gives.
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
 * //   --data-urlencode 'readOnly=true' --data-urlencode 'for=30m' \
 * //   --data-urlencode 'note=migrating orders' https://example.com/maintenance-mode/on
 * ```
 *
 * @module
 */
import { type Context, Hono, type MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { timingSafeEqual } from "hono/utils/buffer";
import { generateSecret } from "./_secret.ts";
import { MAX_DURATION_MS, parseDuration } from "./_duration.ts";
import { disabledState, enabledState, type EnableOptions } from "./_enable.ts";
import { internals } from "./_internal.ts";
import { checkOptions, closest } from "./_options.ts";
import {
  instantHelp,
  isActive,
  type MaintenanceState,
  MAX_BY,
  parseInstant,
  type Snapshot,
  toSnapshot,
} from "./_state.ts";
import type { Maintenance } from "./maintenance.ts";
import { adminRouteMark } from "./middleware.ts";

/**
 * Decides whether a request may use the admin routes, and names who makes it. `true`
 * lets it in as `"admin"`; a non-empty string lets it in under that name, which a
 * write records as the state's `updatedBy` (at most 200 characters, no control
 * characters). Anything else (`false`, `undefined`, `""`, an object) gets 401.
 *
 * @example
 * ```ts
 * import type { Authorize } from "@x/maintenance/admin";
 * // your auth here: the user your session middleware found, or false
 * const authorize: Authorize = (c) => c.req.header("x-user") ?? false;
 * ```
 */
export type Authorize = (
  c: Context,
) => boolean | string | Promise<boolean | string>;

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
   * request; `true` or a non-empty string (the operator's name, recorded as
   * `updatedBy`; `true` records `"admin"`) lets it in, anything else gets 401. Use
   * {@linkcode bearerToken} for a shared token, or check your app's session (cookie
   * sessions are covered by the cross-site check).
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
  "readOnly",
  "for",
  "from",
  "until",
  "retryAfter",
  "refresh",
  "secret",
  "withSecret",
  "note",
];
/** Fields `POST /off` takes. */
const OFF_FIELDS = ["note"];
/** Who a write is recorded as when `authorize` returned `true`. */
const DEFAULT_BY = "admin";

const MAX_BODY = 16 * 1024;

class BadRequest extends Error {
  constructor(message: string, readonly status: 400 | 415 = 400) {
    super(message);
  }
}

/**
 * The state as the admin routes show it (to operators: `updatedBy`, `note` and
 * `updatedAt` included), the bypass hash only as a yes/no. `readOnly` is whether
 * read-only maintenance is in force now, as `c.get("maintenance").readOnly`.
 */
function view(snap: Snapshot, t: number): Record<string, unknown> {
  const { bypass, ...state } = snap.state;
  const enabled = isActive(snap, t);
  return {
    enabled,
    readOnly: enabled && state.readOnly === true,
    scheduled: snap.enabled && t < snap.startsAtMs,
    bypass: bypass !== undefined,
    state,
  };
}

async function readFields(c: Context): Promise<Record<string, unknown>> {
  // No body (curl -X POST), whatever the content type says: no fields.
  if (c.req.raw.body === null) return {};
  const type = (c.req.header("content-type") ?? "").toLowerCase();
  if (
    !/^(application\/x-www-form-urlencoded|multipart\/form-data)/.test(type)
  ) {
    const text = await c.req.text();
    if (text.trim() === "") return {};
    if (!/^application\/([a-z.+-]*\+)?json\b/.test(type)) {
      throw new BadRequest(
        type === ""
          ? "send the body as application/json or a form"
          : `content-type ${
            type.split(";")[0]
          } is not supported; send application/json or a form`,
        415,
      );
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

/** Names used elsewhere (`enable()`, the CLI) for the fields. */
const FIELD_ALIASES: Readonly<Record<string, string>> = {
  startsAt: "from",
  endsAt: "until",
  start: "from",
  end: "until",
  duration: "for",
};

/**
 * Refuses a field not in `known` (`where` names the route), with the field meant when
 * it looks like a typo or another name of it; `by` is not a field at all.
 */
function checkFields(
  fields: Record<string, unknown>,
  known: readonly string[],
  where: string,
  by: string,
): void {
  for (const k of Object.keys(fields)) {
    if (known.includes(k)) continue;
    if (k === "by" || k === "updatedBy") {
      throw new BadRequest(
        `${k} is not a field: a write is recorded under the name authorize ` +
          `returns (for this request, "${by}")`,
      );
    }
    const instead =
      Object.hasOwn(FIELD_ALIASES, k) && known.includes(FIELD_ALIASES[k])
        ? FIELD_ALIASES[k]
        : closest(k, known);
    throw new BadRequest(
      `unknown field "${k}"${
        instead ? `; did you mean ${instead}?` : ""
      } (${where} takes ${known.join(", ")})`,
    );
  }
}

function text(value: unknown, name: string): string | undefined {
  if (value === undefined || typeof value === "string") return value;
  throw new BadRequest(`${name} must be a string`);
}

/**
 * `for`: milliseconds as a number, or a duration as text (`90s`, `30m`, `2h`, `1d`,
 * `1h30m`), as the CLI's `on --for`.
 */
function duration(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value === "string") {
    try {
      return parseDuration(value);
    } catch (e) {
      throw new BadRequest(`for: ${(e as Error).message}`);
    }
  }
  if (
    typeof value === "number" && Number.isInteger(value) && value > 0 &&
    value <= MAX_DURATION_MS
  ) {
    return value;
  }
  throw new BadRequest(
    `for must be a duration such as "30m" or "2h", or a whole number of ` +
      `milliseconds from 1 to ${MAX_DURATION_MS} (365 days) (got ${
        JSON.stringify(value) ?? String(value)
      })`,
  );
}

/**
 * The `enable()` options a `POST /on` asks for (recorded as written `by` the
 * operator), and the secret it asks to generate.
 */
function toEnableOptions(
  fields: Record<string, unknown>,
  by: string,
): { options: EnableOptions; generated?: string } {
  checkFields(fields, FIELDS, "POST /on", by);
  const message = text(fields.message, "message");
  const secret = text(fields.secret, "secret");
  const note = text(fields.note, "note");
  const withSecret = flag(fields.withSecret, "withSecret");
  if (withSecret && secret !== undefined) {
    throw new BadRequest(
      "give either secret or withSecret (generate one), not both",
    );
  }
  const forMs = duration(fields.for);
  if (forMs !== undefined && fields.until !== undefined) {
    throw new BadRequest(
      "give either for (how long, such as 30m) or until (an end time), not both",
    );
  }
  const generated = withSecret ? generateSecret() : undefined;
  const options: EnableOptions = {
    message,
    readOnly: flag(fields.readOnly, "readOnly") || undefined,
    retryAfter: seconds(fields.retryAfter, "retryAfter"),
    refresh: seconds(fields.refresh, "refresh"),
    startsAt: instant(fields.from, "from"),
    endsAt: instant(fields.until, "until"),
    // enable() counts it from `from` when there is one, as the CLI's --for.
    for: forMs,
    secret: generated ?? secret,
    by,
    note,
  };
  return { options, generated };
}

/**
 * What is wrong with `by`, the name `authorize` returned, as the state's `updatedBy`
 * (at most 200 characters, no control characters); `undefined` when nothing is.
 */
function badName(by: string): string | undefined {
  const length = [...by].length;
  // deno-lint-ignore no-control-regex
  const control = /[\u0000-\u001f\u007f-\u009f]/.test(by);
  if (length <= MAX_BY && !control) return undefined;
  return `authorize returned a name ${
    control ? "with control characters" : `of ${length} characters`
  }, which the state cannot record as updatedBy (at most ${MAX_BY} characters, ` +
    `no control characters): return a shorter name, or true (recorded as "${DEFAULT_BY}")`;
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
      "adminRoutes needs an authorize function, (c) => true, a name, or false " +
        "(or a Promise of one): " +
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
  /** Who each request that passed `authorize` is, for the write it makes. */
  const operators = new WeakMap<Context, string>();
  const gate: MiddlewareHandler = async (c, next) => {
    c.header("cache-control", "no-store");
    if (!/^(GET|HEAD|OPTIONS)$/.test(c.req.method) && !sameOrigin(c, origins)) {
      return c.json({
        error: "forbidden",
        message: "cross-site request refused: post from this site, or from " +
          "a script without an Origin header (with Authorization: Bearer, or JSON)",
      }, 403);
    }
    const who = await authorize(c);
    const by = who === true
      ? DEFAULT_BY
      : typeof who === "string" && who.trim() !== ""
      ? who.trim()
      : undefined;
    if (by === undefined) {
      c.header("www-authenticate", 'Bearer realm="maintenance"');
      return c.json({ error: "unauthorized" }, 401);
    }
    const bad = badName(by);
    if (bad !== undefined) {
      // The app's authorize is at fault, not the client: a 500 that says what to fix.
      return c.json({ error: "bad_authorize", message: bad }, 500);
    }
    operators.set(c, by);
    await next();
  };
  const limit = bodyLimit({
    maxSize: MAX_BODY,
    onError: (c) =>
      c.json({
        error: "too_large",
        message: `the body must be at most ${MAX_BODY} bytes`,
      }, 413),
  });

  /**
   * A 400 (or 415) for what the client sent, in the fields' names (`until` for the
   * end that `for` set: the end `for` sets); anything else is thrown on.
   */
  function refused(c: Context, e: unknown, forGiven = false): Response {
    if (e instanceof BadRequest) {
      return c.json({
        error: e.status === 415 ? "unsupported_media_type" : "bad_request",
        message: e.message,
      }, e.status);
    }
    if (e instanceof TypeError || e instanceof RangeError) {
      const message = e.message
        .replace(/\bendsAt\b/g, forGiven ? "the end that for sets," : "until")
        .replace(/\bstartsAt\b/g, "from");
      return c.json({ error: "bad_request", message }, 400);
    }
    throw e;
  }

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
  app.post("/on", own, gate, limit, async (c) => {
    const by = operators.get(c)!;
    let state: MaintenanceState;
    let generated: string | undefined;
    let fields: Record<string, unknown> = {};
    let asked: { options: EnableOptions; generated?: string } | undefined;
    try {
      fields = await readFields(c);
      asked = toEnableOptions(fields, by);
      generated = asked.generated;
      state = await enabledState(asked.options, now());
    } catch (e) {
      return refused(c, e, asked !== undefined && fields.for !== undefined);
    }
    return write(c, state, generated);
  });
  app.post("/off", own, gate, limit, async (c) => {
    const by = operators.get(c)!;
    let state: MaintenanceState;
    try {
      const fields = await readFields(c);
      checkFields(fields, OFF_FIELDS, "POST /off", by);
      state = disabledState({ by, note: text(fields.note, "note") });
    } catch (e) {
      return refused(c, e);
    }
    return write(c, state);
  });
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
 * (RFC 6750), e.g. from `openssl rand -hex 32`. It answers `true`, naming no one, so
 * writes are recorded as `updatedBy: "admin"`; to name who holds a token, wrap it:
 * `const ci = bearerToken(CI_TOKEN);` and `authorize: async (c) => (await ci(c)) && "ci"`.
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
