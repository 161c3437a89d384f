/**
 * The maintenance state: what a store holds, how it is parsed and written.
 *
 * @module
 */

/**
 * What a {@linkcode StateStore} holds, as JSON.
 *
 * @example
 * ```ts
 * import type { MaintenanceState } from "@x/maintenance";
 * const state: MaintenanceState = { enabled: true, message: "Back soon", retryAfter: 600 };
 * ```
 */
export interface MaintenanceState {
  /** Whether maintenance is switched on (within `startsAt`/`endsAt` when given). */
  enabled: boolean;
  /** Message shown on the page and in the JSON body. Plain text; it is escaped. */
  message?: string;
  /** Seconds for the `Retry-After` header when no `endsAt` is known. */
  retryAfter?: number;
  /** ISO-8601 instant before which requests still pass (a scheduled window). */
  startsAt?: string;
  /** ISO-8601 instant after which maintenance is over, without any write. */
  endsAt?: string;
  /** Seconds for a `Refresh` header on the page. */
  refresh?: number;
  /** Salted SHA-256 of the bypass secret (`salt:hash`, hex); never the secret itself. */
  bypass?: string;
  /** ISO-8601 instant of the write that produced this state. */
  updatedAt?: string;
}

/**
 * Raised when a store holds text that is not a maintenance state.
 *
 * @example
 * ```ts
 * import { parseState, StateParseError } from "@x/maintenance";
 * try { parseState("{oops"); } catch (e) { console.log(e instanceof StateParseError); }
 * ```
 */
export class StateParseError extends Error {
  /** Creates the error; `detail` says what is wrong with the text. */
  constructor(detail: string) {
    super(`maintenance state is corrupt: ${detail}`);
    this.name = "StateParseError";
  }
}

/**
 * The state that means "off", used when a store holds nothing.
 *
 * @example
 * ```ts
 * import { OFF_STATE } from "@x/maintenance";
 * console.log(OFF_STATE.enabled); // false
 * ```
 */
export const OFF_STATE: Readonly<MaintenanceState> = Object.freeze({
  enabled: false,
});

/**
 * The longest message a state holds, in characters (code points, so an emoji is one).
 *
 * @example
 * ```ts
 * import { MAX_MESSAGE, textLength } from "./_state.ts";
 * textLength("🔧".repeat(MAX_MESSAGE)) <= MAX_MESSAGE; // true
 * ```
 */
export const MAX_MESSAGE = 2000;

/**
 * The length of a text in characters (code points), as a person counts them: an
 * emoji is one, where `String.length` counts two.
 *
 * @example
 * ```ts
 * import { textLength } from "./_state.ts";
 * textLength("🔧 ok"); // 4
 * ```
 */
export function textLength(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    // A high surrogate followed by a low one is one character.
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

function optionalString(
  obj: Record<string, unknown>,
  key: string,
  max = MAX_MESSAGE,
): string | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") {
    throw new StateParseError(`"${key}" must be a string`);
  }
  if (v.length > max && textLength(v) > max) {
    throw new StateParseError(`"${key}" is longer than ${max} characters`);
  }
  return v;
}

function optionalSeconds(
  obj: Record<string, unknown>,
  key: string,
): number | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (
    typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 31_536_000
  ) {
    throw new StateParseError(
      `"${key}" must be a whole number of seconds (0 to 31536000)`,
    );
  }
  return v;
}

/** RFC 3339: a date, or a date and time with `Z` or an offset; seconds optional. */
const INSTANT_RE =
  /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(?:([Zz])|([+-])(\d{2}):(\d{2})))?$/;

/** A date and time without `Z` or an offset: each server would read its own zone. */
const NAIVE_RE = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?$/;

/**
 * The last instant a state can hold (9999-12-31T23:59:59.999Z): {@linkcode parseInstant}
 * takes 1970 to 9999.
 *
 * @example
 * ```ts
 * import { MAX_INSTANT } from "./_state.ts";
 * new Date(MAX_INSTANT).toISOString(); // "9999-12-31T23:59:59.999Z"
 * ```
 */
export const MAX_INSTANT: number = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/**
 * Milliseconds since the epoch of an RFC 3339 date or date-time (`2030-01-01` at UTC
 * midnight, `2030-01-01T14:00:00Z`, `2030-01-01T14:00+02:00`), or `NaN` when the text is
 * not one. A date-time needs `Z` or an offset: without one, each server would read it
 * in its own time zone (see {@linkcode isNaiveDateTime}). Unlike `Date.parse` it refuses
 * other spellings (`1`, `2030/01/01`, which runtimes read differently), days and times
 * that do not exist (`2030-02-30`, `24:00`, leap seconds), and years before 1970 or
 * after 9999.
 *
 * @example
 * ```ts
 * import { parseInstant } from "./_state.ts";
 * parseInstant("2030-01-01T14:00:00Z"); // 1893506400000
 * parseInstant("2030-02-30T00:00:00Z"); // NaN
 * parseInstant("2030-01-01T14:00:00"); // NaN: which zone?
 * ```
 */
export function parseInstant(text: string): number {
  if (typeof text !== "string") return NaN;
  const m = INSTANT_RE.exec(text);
  if (!m) return NaN;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  // Day 0 of the next month is the last day of this one.
  const days = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (year < 1970 || month < 1 || month > 12 || day < 1 || day > days) {
    return NaN;
  }
  const hour = Number(m[4] ?? 0);
  const minute = Number(m[5] ?? 0);
  const second = Number(m[6] ?? 0);
  const ms = Number((m[7] ?? "").padEnd(3, "0").slice(0, 3));
  const sign = m[9] === "-" ? -1 : 1;
  const offHours = Number(m[10] ?? 0);
  const offMinutes = Number(m[11] ?? 0);
  if (
    hour > 23 || minute > 59 || second > 59 || offHours > 23 || offMinutes > 59
  ) {
    return NaN;
  }
  const t = Date.UTC(year, month - 1, day, hour, minute, second, ms) -
    sign * (offHours * 60 + offMinutes) * 60_000;
  return t >= 0 && t <= MAX_INSTANT ? t : NaN;
}

/**
 * Whether `text` is a date and time without `Z` or an offset, such as
 * `2030-01-01T14:00`: {@linkcode parseInstant} refuses it, and a message can say to
 * add the zone.
 *
 * @example
 * ```ts
 * import { isNaiveDateTime } from "./_state.ts";
 * isNaiveDateTime("2030-01-01T14:00"); // true
 * isNaiveDateTime("2030-01-01T14:00Z"); // false
 * ```
 */
export function isNaiveDateTime(text: string): boolean {
  return NAIVE_RE.test(text);
}

/**
 * What to add to a date-time without a zone, for messages: `""` for any other text.
 *
 * @example
 * ```ts
 * import { instantHelp } from "./_state.ts";
 * instantHelp("2030-01-01T14:00"); // '; "2030-01-01T14:00" has no time zone: add ...'
 * ```
 */
export function instantHelp(text: unknown): string {
  if (typeof text !== "string") return "";
  if (isNaiveDateTime(text)) {
    return `; "${text}" has no time zone: add Z for UTC or an offset, such as ${text}Z or ${text}+02:00`;
  }
  return isOutOfRange(text)
    ? "; it names an instant before 1970-01-01T00:00:00Z or after 9999-12-31T23:59:59Z, which a state cannot hold"
    : "";
}

/**
 * Whether a text is a well-formed instant but for its year: one before 1970 or after
 * 9999 (`1969-12-31T00:00:00Z`, `10000-01-01T00:00:00Z`, `+010000-01-01`).
 *
 * @example
 * ```ts
 * import { isOutOfRange } from "./_state.ts";
 * isOutOfRange("10000-01-01T00:00:00Z"); // true
 * isOutOfRange("2030-02-30T00:00:00Z"); // false: no such day, whatever the year
 * ```
 */
export function isOutOfRange(text: string): boolean {
  const m = /^[+-]?(\d{4,6})(-\d{2}-\d{2}.*)$/.exec(text);
  if (m === null || !Number.isNaN(parseInstant(text))) return false;
  const year = Number(m[1]);
  if (year >= 1970 && year <= 9999 && !text.startsWith("-")) {
    // An offset can carry 1970-01-01 into 1969 (1970-01-01T00:30:00+01:00).
    return m[1].length === 4 && year === 1970 &&
      !Number.isNaN(parseInstant(`1971${m[2]}`));
  }
  // The same date and time in a year that is in range (2000 and 2004 cover Feb 29).
  return !Number.isNaN(parseInstant(`2000${m[2]}`)) ||
    !Number.isNaN(parseInstant(`2004${m[2]}`));
}

function optionalInstant(
  obj: Record<string, unknown>,
  ...keys: string[]
): string | undefined {
  for (const key of keys) {
    const v = obj[key];
    if (v === undefined || v === null) continue;
    const ms = typeof v === "string" ? parseInstant(v) : NaN;
    if (Number.isNaN(ms)) {
      throw new StateParseError(
        `"${key}" must be an ISO-8601 date such as 2030-01-01T14:00:00Z${
          instantHelp(v)
        }`,
      );
    }
    return new Date(ms).toISOString();
  }
  return undefined;
}

/**
 * Parses what a store holds. `null` or empty text (absent) is off; `"1"`/`"0"` is the
 * Django file format; JSON is this package's format or upstream Django's schedule
 * `{"start", "end"}`. Throws {@linkcode StateParseError} on anything else.
 *
 * @example
 * ```ts
 * import { parseState } from "@x/maintenance";
 * parseState("1"); // { enabled: true }
 * parseState('{"enabled":true,"message":"Back at 14:00"}');
 * ```
 */
export function parseState(text: string | null): MaintenanceState {
  if (text === null) return { enabled: false };
  const t = text.trim();
  if (t === "" || t === "0") return { enabled: false };
  if (t === "1") return { enabled: true };
  if (t.length > 65_536) throw new StateParseError("larger than 64 KiB");
  let raw: unknown;
  try {
    raw = JSON.parse(t);
  } catch {
    throw new StateParseError("neither 0, 1 nor JSON");
  }
  if (raw === true || raw === 1) return { enabled: true };
  if (raw === false || raw === 0) return { enabled: false };
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new StateParseError("JSON is not an object");
  }
  const obj = raw as Record<string, unknown>;
  let enabled: boolean;
  if (typeof obj.enabled === "boolean") enabled = obj.enabled;
  else if (obj.enabled === undefined && ("start" in obj || "end" in obj)) {
    enabled = true;
  } else throw new StateParseError('"enabled" must be true or false');
  const state: MaintenanceState = { enabled };
  const message = optionalString(obj, "message");
  if (message !== undefined) state.message = message;
  const retryAfter = optionalSeconds(obj, "retryAfter");
  if (retryAfter !== undefined) state.retryAfter = retryAfter;
  const refresh = optionalSeconds(obj, "refresh");
  if (refresh !== undefined) state.refresh = refresh;
  const startsAt = optionalInstant(obj, "startsAt", "start");
  if (startsAt !== undefined) state.startsAt = startsAt;
  const endsAt = optionalInstant(obj, "endsAt", "end");
  if (endsAt !== undefined) state.endsAt = endsAt;
  const bypass = optionalString(obj, "bypass", 200);
  if (bypass !== undefined) {
    if (!/^[0-9a-f]{32}:[0-9a-f]{64}$/.test(bypass)) {
      throw new StateParseError('"bypass" must be "salt:hash" in hex');
    }
    state.bypass = bypass;
  }
  const updatedAt = optionalInstant(obj, "updatedAt");
  if (updatedAt !== undefined) state.updatedAt = updatedAt;
  return state;
}

/**
 * Serializes a state for a store (JSON, one line, with a trailing newline). Throws
 * `TypeError` on a state that {@linkcode parseState} would reject, so nothing ever
 * writes a state that every reader then reports as corrupt.
 *
 * @example
 * ```ts
 * import { serializeState } from "@x/maintenance";
 * serializeState({ enabled: true, message: "Back soon" });
 * ```
 */
export function serializeState(state: MaintenanceState): string {
  if (
    state === null || typeof state !== "object" ||
    typeof state.enabled !== "boolean"
  ) {
    throw new TypeError(
      "a maintenance state is an object with enabled: true or false",
    );
  }
  const out: MaintenanceState = { enabled: state.enabled };
  if (state.message !== undefined) out.message = state.message;
  if (state.retryAfter !== undefined) out.retryAfter = state.retryAfter;
  if (state.startsAt !== undefined) out.startsAt = state.startsAt;
  if (state.endsAt !== undefined) out.endsAt = state.endsAt;
  if (state.refresh !== undefined) out.refresh = state.refresh;
  if (state.bypass !== undefined) out.bypass = state.bypass;
  out.updatedAt = state.updatedAt ?? new Date().toISOString();
  const text = JSON.stringify(out) + "\n";
  try {
    parseState(text);
  } catch (e) {
    const detail = (e as Error).message.replace(
      /^maintenance state is corrupt: /,
      "",
    );
    throw new TypeError(`invalid maintenance state: ${detail}`);
  }
  return text;
}

/**
 * Whether a state puts requests into maintenance at instant `now` (ms since epoch):
 * enabled, and inside its `startsAt`/`endsAt` window when it has one.
 *
 * @example
 * ```ts
 * import { isActiveAt } from "@x/maintenance";
 * isActiveAt({ enabled: true, endsAt: "2000-01-01T00:00:00Z" }, Date.now()); // false
 * ```
 */
export function isActiveAt(state: MaintenanceState, now: number): boolean {
  if (!state.enabled) return false;
  if (state.startsAt !== undefined && now < Date.parse(state.startsAt)) {
    return false;
  }
  if (state.endsAt !== undefined && now >= Date.parse(state.endsAt)) {
    return false;
  }
  return true;
}
