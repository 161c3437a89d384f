/**
 * Validates what `enable()` and the CLI's `on` take into a state, before anything is
 * written.
 *
 * @module
 */
import { checkSecret, hashSecret } from "./_bypass.ts";
import {
  instantHelp,
  isOutOfRange,
  type MaintenanceState,
  MAX_INSTANT,
  MAX_MESSAGE,
  parseInstant,
  textLength,
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
  /** Seconds for a `Refresh` header on the page. */
  refresh?: number;
  /**
   * Bypass secret (16 to 128 letters, digits, `-`, `_`): visiting `/<secret>` sets a
   * cookie that lets the browser through. Only a salted hash is stored.
   */
  secret?: string;
}

/** What `enable()` takes; anything else is a mistake (a typo, the CLI's `until`). */
const KNOWN: readonly string[] = [
  "message",
  "retryAfter",
  "startsAt",
  "endsAt",
  "refresh",
  "secret",
];
/** Names used elsewhere (the CLI, the admin routes, the state) for `enable()`'s. */
const ALIASES: Readonly<Record<string, string>> = {
  from: "startsAt",
  until: "endsAt",
  start: "startsAt",
  end: "endsAt",
  withSecret: "secret: generateSecret()",
};

function toIso(
  value: Date | string | undefined,
  name: string,
): string | undefined {
  if (value === undefined) return undefined;
  const ms = value instanceof Date
    ? value.getTime()
    : typeof value === "string"
    ? parseInstant(value)
    : NaN;
  // A string that is an instant but for its year: the range is what to change.
  if (typeof value === "string" && Number.isNaN(ms) && isOutOfRange(value)) {
    throw new RangeError(
      `${name} must be from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z (got ${value})`,
    );
  }
  if (
    typeof value !== "string" && !(value instanceof Date) || Number.isNaN(ms)
  ) {
    throw new TypeError(
      `${name} must be a Date or an ISO-8601 string like 2030-01-01T14:00:00Z${
        instantHelp(value)
      }`,
    );
  }
  // A Date can be any year; a state holds 1970 to 9999 (as strings are parsed).
  if (ms < 0 || ms > MAX_INSTANT) {
    throw new RangeError(
      `${name} must be from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z`,
    );
  }
  return new Date(ms).toISOString();
}

function checkSeconds(
  value: number | undefined,
  name: string,
): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isInteger(value) || value < 0 || value > 31_536_000) {
    throw new RangeError(
      `${name} must be a whole number of seconds from 0 to 31536000`,
    );
  }
  return value;
}

/**
 * Validates `enable()` options into a state. Throws `TypeError`/`RangeError` saying
 * what to change (an unknown option, a window that ends before it starts, or has
 * already ended, a time outside 1970 to 9999, a message too long or with control
 * characters, a secret too short).
 *
 * Synchronous, so it checks a `secret` but leaves it out of the state: hashing takes
 * Web Crypto, which is async. {@linkcode enabledState} does both.
 *
 * @example
 * ```ts
 * import { buildEnabledState } from "@x/maintenance";
 * buildEnabledState({ message: "Back soon", retryAfter: 600 }, Date.now());
 * ```
 */
export function buildEnabledState(
  options: EnableOptions,
  now: number,
): MaintenanceState {
  if (options === null || typeof options !== "object") {
    throw new TypeError(
      "enable() takes an options object, such as { message: 'Back soon' }",
    );
  }
  for (const k of Object.keys(options)) {
    if (!KNOWN.includes(k)) {
      const hint = Object.hasOwn(ALIASES, k)
        ? `; did you mean ${ALIASES[k]}?`
        : "";
      throw new TypeError(
        `unknown enable() option "${k}" (known: ${KNOWN.join(", ")})${hint}`,
      );
    }
  }
  const state: MaintenanceState = { enabled: true };
  if (options.message !== undefined) {
    if (typeof options.message !== "string") {
      throw new TypeError("message must be a string");
    }
    if (
      options.message.length > MAX_MESSAGE &&
      textLength(options.message) > MAX_MESSAGE
    ) {
      throw new RangeError(
        `message must be at most ${MAX_MESSAGE} characters (it has ${
          textLength(options.message)
        })`,
      );
    }
    // C0 and C1 controls (but tab and newline): terminals act on them.
    // deno-lint-ignore no-control-regex
    if (/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/.test(options.message)) {
      throw new TypeError(
        "message must not contain control characters (newlines are fine)",
      );
    }
    if (options.message.trim() !== "") state.message = options.message;
  }
  const retryAfter = checkSeconds(options.retryAfter, "retryAfter");
  if (retryAfter !== undefined) state.retryAfter = retryAfter;
  const refresh = checkSeconds(options.refresh, "refresh");
  if (refresh !== undefined) state.refresh = refresh;
  const startsAt = toIso(options.startsAt, "startsAt");
  const endsAt = toIso(options.endsAt, "endsAt");
  if (endsAt !== undefined && Date.parse(endsAt) <= now) {
    throw new RangeError(
      `endsAt ${endsAt} is in the past; give a future time or leave it out`,
    );
  }
  if (
    startsAt !== undefined && endsAt !== undefined &&
    Date.parse(startsAt) >= Date.parse(endsAt)
  ) {
    throw new RangeError(
      `startsAt ${startsAt} must be before endsAt ${endsAt}`,
    );
  }
  if (startsAt !== undefined) state.startsAt = startsAt;
  if (endsAt !== undefined) state.endsAt = endsAt;
  if (options.secret !== undefined) checkSecret(options.secret);
  return state;
}

/**
 * Validates `enable()` options into the state to write, with the secret (if any)
 * hashed into `bypass`. Rejects with `TypeError`/`RangeError` as
 * {@linkcode buildEnabledState} throws.
 *
 * @example
 * ```ts
 * import { enabledState, generateSecret } from "@x/maintenance";
 * const state = await enabledState({ message: "Back soon", secret: generateSecret() }, Date.now());
 * state.bypass; // "salt:hash", hex
 * ```
 */
export async function enabledState(
  options: EnableOptions,
  now: number,
): Promise<MaintenanceState> {
  const state = buildEnabledState(options, now);
  if (options.secret !== undefined) {
    state.bypass = await hashSecret(options.secret);
  }
  return state;
}
