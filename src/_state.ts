/**
 * The maintenance state: what a store holds, how it is parsed and written, and its
 * snapshot, the form the hot path reads.
 *
 * @module
 */

/**
 * What a {@linkcode StateStore} holds, as JSON. Fields this version does not know (a
 * newer one wrote them) are kept on a round trip (`setState(await getState())`).
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
  /** Read-only maintenance: `GET`, `HEAD` and `OPTIONS` pass, other methods get the 503. */
  readOnly?: boolean;
  /** Who wrote it (`alice@web-1`, what `authorize` returned); operators only, never shown. */
  updatedBy?: string;
  /** Why, for operators (`status`, `getState()`); never shown to visitors. */
  note?: string;
}

/** Raised when a store holds text that is not a maintenance state. */
export class StateParseError extends Error {
  /** `detail` says what is wrong with the text. */
  constructor(detail: string) {
    super(`maintenance state is corrupt: ${detail}`);
    this.name = "StateParseError";
  }
}

/** The longest message a state holds, in characters (code points: an emoji is one). */
export const MAX_MESSAGE = 2000;

/** The longest `updatedBy`, in characters. */
export const MAX_BY = 200;

/** The last instant a state can hold (9999-12-31T23:59:59.999Z). */
export const MAX_INSTANT: number = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/** The stored hash of a bypass secret: `salt:hash`, hex. */
export const HASH_RE = /^([0-9a-f]{32}):([0-9a-f]{64})$/;

/**
 * `text`'s length in characters (code points: an emoji is one), counted only when its
 * UTF-16 length is past `max`: below that it cannot be too long.
 */
export function characters(text: string, max: number): number {
  return text.length > max ? [...text].length : text.length;
}

/** How a bad value reads in a message: a string is shown as one (`"60"` is not `60`). */
export function shown(value: unknown): string {
  return typeof value === "string"
    ? `the string ${JSON.stringify(value)}`
    : String(value);
}

/** The longest a number of seconds can be: a year. */
const YEAR = 31_536_000;

/** Whether `value` is a whole number from `min` to `max`. */
function isInt(value: unknown, min: number, max: number): value is number {
  return Number.isInteger(value) && (value as number) >= min &&
    (value as number) <= max;
}

/**
 * `value` when it is undefined or a whole number from `min` to `max` (by default,
 * seconds from 0 to a year), else a `RangeError` naming the option `name`, what it
 * must be, and what it got.
 */
export function checkInt<T extends number | undefined>(
  value: T,
  name: string,
  what = "a whole number of seconds",
  min = 0,
  max = YEAR,
): T {
  if (value === undefined || isInt(value, min, max)) return value;
  throw new RangeError(
    `${name} must be ${what} from ${min} to ${max} (got ${shown(value)})`,
  );
}

/**
 * RFC 3339: a date, or a date and time with `Z` or an offset; seconds optional. A
 * year may be signed or longer (`+010000`, as `Date#toISOString` writes it) only to
 * be refused as out of range.
 */
const INSTANT_RE =
  /^([+-]?\d{4,6})-(\d\d)-(\d\d)(?:[Tt ](\d\d):(\d\d)(?::(\d\d)(\.\d{1,9})?)?(?:[Zz]|([+-])(\d\d):(\d\d)))?$/;

/**
 * Milliseconds since the epoch of an RFC 3339 date or date-time; `Infinity` for one
 * that exists but is before 1970 or after 9999 (a state cannot hold it); `NaN` for
 * anything else.
 */
export function readInstant(text: unknown): number {
  const m = typeof text === "string" ? INSTANT_RE.exec(text) : null;
  if (!m) return NaN;
  // Absent fields (and the offset's sign) are 0; the fraction is a fraction of a second.
  const [, year, month, day, hour, minute, second, fraction, , offH, offM] = m
    .map((v) => +v || 0);
  // The calendar repeats every 400 years: 2000 + year % 400 has this year's Feb 29.
  // Day 0 of the next month is the last day of this one.
  const days = new Date(Date.UTC(2000 + year % 400, month, 0)).getUTCDate();
  if (
    month < 1 || month > 12 || day < 1 || day > days || hour > 23 ||
    minute > 59 || second > 59 || offH > 23 || offM > 59
  ) {
    return NaN;
  }
  // Date.UTC truncates the milliseconds (.123456789 s is 123 ms).
  const t =
    Date.UTC(year, month - 1, day, hour, minute, second, fraction * 1000) -
    (m[8] === "-" ? -1 : 1) * (offH * 60 + offM) * 60_000;
  // The year itself is checked: Date.UTC reads 0 to 99 as 1900 to 1999, and an offset
  // can carry 1969-12-31 into 1970. A longer or signed year in range (`+002030`) is
  // not RFC 3339 either.
  return year < 1970 || year > 9999 || t < 0 || t > MAX_INSTANT
    ? Infinity
    : m[1].length > 4
    ? NaN
    : t;
}

/**
 * Milliseconds since the epoch of an RFC 3339 date or date-time (`2030-01-01` at UTC
 * midnight, `2030-01-01T14:00:00Z`, `2030-01-01T14:00+02:00`), or `NaN`. A date-time
 * needs `Z` or an offset (without one, each server would read its own zone). Unlike
 * `Date.parse` it refuses other spellings (`1`, `2030/01/01`, which runtimes read
 * differently), days and times that do not exist (`2030-02-30`, `24:00`, leap
 * seconds), and instants before 1970 or after 9999.
 */
export function parseInstant(text: string): number {
  const t = readInstant(text);
  return t < Infinity ? t : NaN;
}

/** Whether `text` is a date and time but for `Z` or an offset (`2030-01-01T14:00`). */
export function isNaiveDateTime(text: unknown): boolean {
  return typeof text === "string" && !Number.isNaN(readInstant(text + "Z"));
}

/** What to add to a message about a time that is not one: `""` unless there is advice. */
export function instantHelp(text: unknown): string {
  return isNaiveDateTime(text)
    ? `; "${text}" has no time zone: add Z for UTC or an offset, such as ${text}Z or ${text}+02:00`
    : readInstant(text) === Infinity
    ? "; a state holds instants from 1970 to 9999 only"
    : "";
}

/**
 * Parses what a store holds. `null` or empty text (absent) is off; `"1"`/`"0"` is the
 * Django file format; JSON is this package's format or upstream Django's schedule
 * `{"start", "end"}`. Throws {@linkcode StateParseError} on anything else.
 */
export function parseState(text: string | null): MaintenanceState {
  const t = (text ?? "").trim();
  if (t === "" || t === "0") return { enabled: false };
  if (t === "1") return { enabled: true };
  if (t.length > 65_536) throw new StateParseError("larger than 64 KiB");
  let raw: unknown;
  try {
    raw = JSON.parse(t);
  } catch {
    throw new StateParseError("neither 0, 1 nor JSON");
  }
  if ([true, false, 1, 0].includes(raw as number)) return { enabled: !!raw };
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new StateParseError("JSON is not an object");
  }
  const obj = raw as Record<string, unknown>;
  const enabled = obj.enabled === undefined && ("start" in obj || "end" in obj)
    ? true
    : obj.enabled;
  if (typeof enabled !== "boolean") {
    throw new StateParseError('"enabled" must be true or false');
  }
  const given = (key: string) => obj[key] ?? undefined; // null is absent
  function str(key: string, max = MAX_MESSAGE): string | undefined {
    const v = given(key);
    if (v === undefined || typeof v === "string" && characters(v, max) <= max) {
      return v;
    }
    throw new StateParseError(
      `"${key}" must be a string of at most ${max} characters`,
    );
  }
  const readOnly = given("readOnly");
  if (readOnly !== undefined && typeof readOnly !== "boolean") {
    throw new StateParseError('"readOnly" must be true or false');
  }
  const bypass = given("bypass") as string | undefined;
  if (
    bypass !== undefined &&
    !(typeof bypass === "string" && HASH_RE.test(bypass))
  ) {
    throw new StateParseError('"bypass" must be "salt:hash" in hex');
  }
  function seconds(key: string): number | undefined {
    const v = given(key);
    if (v === undefined || isInt(v, 0, YEAR)) return v;
    throw new StateParseError(
      `"${key}" must be a whole number of seconds (0 to ${YEAR})`,
    );
  }
  function instant(key: string, old = key): string | undefined {
    const k = given(key) === undefined ? old : key;
    const v = given(k);
    if (v === undefined) return v;
    const ms = parseInstant(v as string);
    if (Number.isNaN(ms)) {
      throw new StateParseError(
        `"${k}" must be an ISO-8601 date such as 2030-01-01T14:00:00Z${
          instantHelp(v)
        }`,
      );
    }
    return new Date(ms).toISOString();
  }
  const { start: _s, end: _e, ...rest } = obj;
  return defined({
    ...rest,
    enabled,
    message: str("message"),
    retryAfter: seconds("retryAfter"),
    refresh: seconds("refresh"),
    startsAt: instant("startsAt", "start"),
    endsAt: instant("endsAt", "end"),
    bypass,
    updatedAt: instant("updatedAt"),
    readOnly: readOnly || undefined,
    updatedBy: str("updatedBy", MAX_BY),
    note: str("note"),
  });
}

/** `state` without the keys whose value is `undefined`. */
export function defined(state: MaintenanceState): MaintenanceState {
  const s = state as unknown as Record<string, unknown>;
  for (const k in s) if (s[k] === undefined) delete s[k];
  return state;
}

/** The known keys in the order they are written; a newer version's follow. */
const ORDER = {
  enabled: undefined,
  message: undefined,
  retryAfter: undefined,
  startsAt: undefined,
  endsAt: undefined,
  refresh: undefined,
  readOnly: undefined,
  bypass: undefined,
  updatedAt: undefined,
  updatedBy: undefined,
  note: undefined,
};

/** The fields handlers, `render` and the page see: not `bypass`, `updatedBy`, `note`. */
const SHOWN = Object.keys(ORDER).filter((k) =>
  !["bypass", "updatedBy", "note"].includes(k)
);

/**
 * Serializes a state for a store (JSON, one line, with a trailing newline), stamping
 * `updatedAt` when it has none. Throws `TypeError` on a state that
 * {@linkcode parseState} would reject (saying why), so nothing ever writes a state
 * that every reader then reports as corrupt.
 */
export function serializeState(state: MaintenanceState): string {
  const text = JSON.stringify({
    ...ORDER,
    ...state,
    readOnly: state?.readOnly || undefined,
    updatedAt: state?.updatedAt ?? new Date().toISOString(),
  }) + "\n";
  try {
    parseState(text);
  } catch (e) {
    // The reader's reason, without its "maintenance state is corrupt: ".
    throw new TypeError(
      `invalid maintenance state: ${
        (e as Error).message.replace(/^.*?: /, "")
      }`,
    );
  }
  return text;
}

/**
 * One state as the hot path uses it, made once per state: the window as epoch
 * milliseconds, so deciding whether it is active is two comparisons.
 */
export interface Snapshot {
  /** The state as read. */
  readonly state: Readonly<MaintenanceState>;
  /**
   * The state's public fields: not its `bypass` hash, which could mint a bypass
   * cookie (when no `cookieKey` is set), nor the operators' `updatedBy` and `note`,
   * nor fields of a newer version: what handlers (`c.get("maintenance").state`) and
   * `render` see.
   */
  readonly shown: Readonly<MaintenanceState>;
  /** `state.enabled`. */
  readonly enabled: boolean;
  /** `startsAt` in ms, or `-Infinity`. */
  readonly startsAtMs: number;
  /** `endsAt` in ms, or `Infinity`. */
  readonly endsAtMs: number;
}

/** Makes the snapshot of a state. */
export function toSnapshot(state: MaintenanceState): Snapshot {
  // Only the fields known to be public: a newer version's may be for operators.
  const shown = {} as Record<string, unknown>;
  for (const k of SHOWN) shown[k] = state[k as keyof MaintenanceState];
  return Object.freeze({
    state: Object.freeze({ ...state }),
    shown: Object.freeze(defined(shown as unknown as MaintenanceState)),
    enabled: state.enabled,
    startsAtMs: state.startsAt ? Date.parse(state.startsAt) : -Infinity,
    endsAtMs: state.endsAt ? Date.parse(state.endsAt) : Infinity,
  });
}

/** Whether a snapshot's state is in force at `now` (ms since epoch). */
export function isActive(snap: Snapshot, now: number): boolean {
  return snap.enabled && now >= snap.startsAtMs && now < snap.endsAtMs;
}
