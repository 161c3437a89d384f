/**
 * The maintenance state: what a store holds, how it is parsed and written, and its
 * snapshot, the form the hot path reads.
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

/** The last instant a state can hold (9999-12-31T23:59:59.999Z). */
export const MAX_INSTANT: number = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/** How a bad option value reads in a message: a string is shown as one. */
export function shown(value: unknown): string {
  return typeof value === "string"
    ? `the string ${JSON.stringify(value)}`
    : String(value);
}

/** Whether `value` is a whole number of seconds from 0 to a year (31536000). */
function isSeconds(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= 0 &&
    (value as number) <= 31_536_000;
}

/**
 * `value` when it is a whole number of seconds from 0 to 31536000 (or undefined);
 * else a `RangeError` naming the option `name` and what it got.
 */
export function checkSeconds(
  value: number | undefined,
  name: string,
): number | undefined {
  if (value === undefined || isSeconds(value)) return value;
  throw new RangeError(
    `${name} must be a whole number of seconds from 0 to 31536000 (got ${
      shown(value)
    })`,
  );
}

/** RFC 3339: a date, or a date and time with `Z` or an offset; seconds optional. */
const INSTANT_RE =
  /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(?:([Zz])|([+-])(\d{2}):(\d{2})))?$/;

/** A date and time without `Z` or an offset: each server would read its own zone. */
const NAIVE_RE = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?$/;

/**
 * Milliseconds since the epoch of an RFC 3339 date or date-time (`2030-01-01` at UTC
 * midnight, `2030-01-01T14:00:00Z`, `2030-01-01T14:00+02:00`), or `NaN`. A date-time
 * needs `Z` or an offset (without one, each server would read its own zone). Unlike
 * `Date.parse` it refuses other spellings (`1`, `2030/01/01`, which runtimes read
 * differently), days and times that do not exist (`2030-02-30`, `24:00`, leap
 * seconds), and instants before 1970 or after 9999.
 */
export function parseInstant(text: string): number {
  const m = typeof text === "string" ? INSTANT_RE.exec(text) : null;
  if (!m) return NaN;
  const [year, month, day, hour, minute, second, offHours, offMinutes] = [
    m[1],
    m[2],
    m[3],
    m[4],
    m[5],
    m[6],
    m[10],
    m[11],
  ].map((v) => Number(v ?? 0));
  // Day 0 of the next month is the last day of this one.
  const days = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (
    year < 1970 || month < 1 || month > 12 || day < 1 || day > days ||
    hour > 23 ||
    minute > 59 || second > 59 || offHours > 23 || offMinutes > 59
  ) {
    return NaN;
  }
  const ms = Number((m[7] ?? "").padEnd(3, "0").slice(0, 3));
  const t = Date.UTC(year, month - 1, day, hour, minute, second, ms) -
    (m[9] === "-" ? -1 : 1) * (offHours * 60 + offMinutes) * 60_000;
  return t >= 0 && t <= MAX_INSTANT ? t : NaN;
}

/** Whether `text` is a date and time without `Z` or an offset (`2030-01-01T14:00`). */
export function isNaiveDateTime(text: string): boolean {
  return NAIVE_RE.test(text);
}

/**
 * Whether a text is a well-formed instant but for its year: one before 1970 or after
 * 9999 (`1969-12-31T00:00:00Z`, `10000-01-01T00:00:00Z`, `+010000-01-01`).
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

/** What to add to a message about a time that is not one: `""` unless there is advice. */
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
  if (raw === true || raw === 1) return { enabled: true };
  if (raw === false || raw === 0) return { enabled: false };
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
    if (v === undefined) return v;
    if (typeof v !== "string") {
      throw new StateParseError(`"${key}" must be a string`);
    }
    if (v.length > max && [...v].length > max) {
      throw new StateParseError(`"${key}" is longer than ${max} characters`);
    }
    return v;
  }
  function seconds(key: string): number | undefined {
    const v = given(key);
    if (v === undefined || isSeconds(v)) return v;
    throw new StateParseError(
      `"${key}" must be a whole number of seconds (0 to 31536000)`,
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
  function hash(v = str("bypass", 200)): string | undefined {
    if (v === undefined || /^[0-9a-f]{32}:[0-9a-f]{64}$/.test(v)) return v;
    throw new StateParseError('"bypass" must be "salt:hash" in hex');
  }
  return defined({
    enabled,
    message: str("message"),
    retryAfter: seconds("retryAfter"),
    refresh: seconds("refresh"),
    startsAt: instant("startsAt", "start"),
    endsAt: instant("endsAt", "end"),
    bypass: hash(),
    updatedAt: instant("updatedAt"),
  });
}

/** `state` without the keys whose value is `undefined`. */
export function defined(state: MaintenanceState): MaintenanceState {
  for (const [k, v] of Object.entries(state)) {
    if (v === undefined) {
      delete (state as Partial<MaintenanceState>)[k as keyof MaintenanceState];
    }
  }
  return state;
}

/**
 * Serializes a state for a store (JSON, one line, with a trailing newline), stamping
 * `updatedAt` when it has none. Throws `TypeError` on a state that
 * {@linkcode parseState} would reject, so nothing ever writes a state that every
 * reader then reports as corrupt.
 */
export function serializeState(state: MaintenanceState): string {
  if (typeof state?.enabled !== "boolean") {
    throw new TypeError(
      "a maintenance state is an object with enabled: true or false",
    );
  }
  const { enabled, message, retryAfter, startsAt, endsAt, refresh, bypass } =
    state;
  const text = JSON.stringify({
    enabled,
    message,
    retryAfter,
    startsAt,
    endsAt,
    refresh,
    bypass,
    updatedAt: state.updatedAt ?? new Date().toISOString(),
  }) + "\n";
  try {
    parseState(text);
  } catch (e) {
    throw new TypeError(
      `invalid maintenance state: ${
        (e as Error).message.replace(/^maintenance state is corrupt: /, "")
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
   * The state without its `bypass` hash, which could mint a bypass cookie (when no
   * `cookieKey` is set): what handlers (`c.get("maintenance").state`) and `render`
   * see.
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
  const { bypass: _, ...rest } = state;
  return Object.freeze({
    state: Object.freeze({ ...state }),
    shown: Object.freeze(rest),
    enabled: state.enabled,
    startsAtMs: state.startsAt ? Date.parse(state.startsAt) : -Infinity,
    endsAtMs: state.endsAt ? Date.parse(state.endsAt) : Infinity,
  });
}

/** Whether a snapshot's state is in force at `now` (ms since epoch). */
export function isActive(snap: Snapshot, now: number): boolean {
  return snap.enabled && now >= snap.startsAtMs && now < snap.endsAtMs;
}
