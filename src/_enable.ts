/**
 * Validates what `enable()`, the admin routes and the CLI's `on` take into the state
 * to write, before anything is written.
 *
 * @module
 */
import { hashSecret } from "./_secret.ts";
import { checkOptions, checkTypes } from "./_options.ts";
import {
  characters,
  checkInt,
  defined,
  instantHelp,
  type MaintenanceState,
  MAX_BY,
  MAX_INSTANT,
  MAX_MESSAGE,
  readInstant,
  shown,
} from "./_state.ts";

/**
 * What `enable()` takes. Times are `Date`s or ISO-8601 strings from 1970 to 9999. Any
 * other key is refused with a `TypeError`, so a typo never switches maintenance on
 * without the window or message meant.
 *
 * @example
 * ```ts
 * import type { EnableOptions } from "@x/maintenance";
 * const opts: EnableOptions = { message: "Back at 14:00", endsAt: "2030-01-01T14:00:00Z" };
 * ```
 */
export interface EnableOptions {
  /** Shown on the page and in JSON (plain text, escaped). At most 2000 characters. */
  message?: string;
  /** `Retry-After` seconds when there is no `endsAt`. */
  retryAfter?: number;
  /** Start of a scheduled window; requests pass until then. */
  startsAt?: Date | string;
  /** End of the window; maintenance is over then without any write. */
  endsAt?: Date | string;
  /**
   * Ends it this many milliseconds from `startsAt`, else from now (sets `endsAt`; not
   * with `endsAt`).
   */
  for?: number;
  /** Read-only: `GET`, `HEAD` and `OPTIONS` pass, other methods get the 503. */
  readOnly?: boolean;
  /** Who switches it (`updatedBy`), such as `alice@web-1`. At most 200 characters. */
  by?: string;
  /** Why, for operators; never shown to visitors. At most 2000 characters. */
  note?: string;
  /** Seconds for a `Refresh` header on the page. */
  refresh?: number;
  /**
   * Bypass secret (16 to 128 letters, digits, `-`, `_`): visiting `/<secret>` sets a
   * cookie that lets the browser through. Only a salted hash is stored.
   */
  secret?: string;
}

const KNOWN = [
  "message",
  "retryAfter",
  "startsAt",
  "endsAt",
  "for",
  "refresh",
  "secret",
  "readOnly",
  "by",
  "note",
];
/** Names used elsewhere (the CLI, the admin routes, the state) for `enable()`'s. */
const ALIASES: Readonly<Record<string, string>> = {
  from: "startsAt",
  until: "endsAt",
  start: "startsAt",
  end: "endsAt",
  updatedBy: "by",
  readonly: "readOnly",
  withSecret: "secret: generateSecret()",
};

/**
 * A `Date` or RFC 3339 string as the ISO string a state holds: a `RangeError` for an
 * instant before 1970 or after 9999, a `TypeError` (with advice when there is some)
 * for anything else.
 */
function toIso(value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined;
  const ms = value instanceof Date ? value.getTime() : readInstant(value);
  if (Number.isNaN(ms)) {
    throw new TypeError(
      `${name} must be a Date or an ISO-8601 string like 2030-01-01T14:00:00Z${
        instantHelp(value)
      }`,
    );
  }
  // A Date can be any year, a string a well-formed one (readInstant's Infinity).
  if (ms < 0 || ms > MAX_INSTANT) {
    throw new RangeError(
      `${name} must be from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z${
        typeof value === "string" ? ` (got ${value})` : ""
      }`,
    );
  }
  return new Date(ms).toISOString();
}

/**
 * Validates `enable()` options into the state to write, the secret (if any) hashed
 * into `bypass`. Rejects with a `TypeError`/`RangeError` saying what to change: an
 * unknown option, a window that ends before it starts or has already ended, a time
 * outside 1970 to 9999, a message too long or with control characters, a secret too
 * short.
 */
export async function enabledState(
  options: EnableOptions,
  now: number,
): Promise<MaintenanceState> {
  checkOptions(options, "enable()", KNOWN, ALIASES);
  checkTypes(options, { readOnly: "boolean" });
  const { message, secret } = options;
  checkText(message, "message");
  const retryAfter = checkInt(options.retryAfter, "retryAfter");
  const refresh = checkInt(options.refresh, "refresh");
  const startsAt = toIso(options.startsAt, "startsAt");
  const ms = options.for;
  // From the start when there is one, as the CLI's --for with --from.
  const from = startsAt ? Date.parse(startsAt) : now;
  if (ms !== undefined) {
    if (options.endsAt !== undefined) {
      throw new TypeError("give for or endsAt, not both");
    }
    if (typeof ms !== "number" || !(ms > 0) || from + ms > MAX_INSTANT) {
      throw new RangeError(
        `for must be a number of milliseconds above 0, such as 1_800_000 for 30 minutes (got ${
          shown(ms)
        })`,
      );
    }
  }
  const endsAt = toIso(
    ms === undefined ? options.endsAt : new Date(from + Math.ceil(ms)),
    "endsAt",
  );
  if (endsAt !== undefined && Date.parse(endsAt) <= now) {
    throw new RangeError(
      `endsAt ${endsAt} is in the past; give a future time or leave it out`,
    );
  }
  // Both from toISOString, years 1970 to 9999: they compare as text.
  if (startsAt && endsAt && startsAt >= endsAt) {
    throw new RangeError(
      `startsAt ${startsAt} must be before endsAt ${endsAt}`,
    );
  }
  return defined({
    enabled: true,
    message: message?.trim() ? message : undefined,
    retryAfter,
    startsAt,
    endsAt,
    refresh,
    readOnly: options.readOnly || undefined,
    bypass: secret === undefined ? undefined : await hashSecret(secret),
    ...who(options),
  });
}

/**
 * The off state `disable()` writes, with who and why. Throws as `enable()` does.
 */
export function disabledState(
  options: Pick<EnableOptions, "by" | "note">,
): MaintenanceState {
  checkOptions(options, "disable()", ["by", "note"], ALIASES);
  return defined({ enabled: false, ...who(options) });
}

/** `by` and `note`, checked, as the state's `updatedBy` and `note`. */
function who(
  { by, note }: Pick<EnableOptions, "by" | "note">,
): Pick<MaintenanceState, "updatedBy" | "note"> {
  checkText(by, "by", MAX_BY, true);
  checkText(note, "note");
  return { updatedBy: by || undefined, note: note || undefined };
}

/**
 * Throws unless `value` is undefined or a string of at most `max` characters without
 * control characters (terminals act on them), but tab and newline unless `line`.
 */
function checkText(
  value: unknown,
  name: string,
  max = MAX_MESSAGE,
  line = false,
): void {
  if (value === undefined) return;
  if (typeof value !== "string") {
    throw new TypeError(`${name} must be a string`);
  }
  const length = characters(value, max);
  if (length > max) {
    throw new RangeError(
      `${name} must be at most ${max} characters (it has ${length})`,
    );
  }
  // deno-lint-ignore no-control-regex
  if ((line ? /[\0-\x1f\x7f-\x9f]/ : /[\0-\b\v-\x1f\x7f-\x9f]/).test(value)) {
    throw new TypeError(
      `${name} must not contain control characters${
        line ? ", newlines or tabs" : " (newlines are fine)"
      }`,
    );
  }
}
