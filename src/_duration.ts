/**
 * Durations as people type them (`90s`, `30m`, `2h`, `1d`, `1h30m`), for the CLI's
 * `on --for` and the admin routes' `for`.
 *
 * @module
 */

const UNIT_MS: Readonly<Record<string, number>> = {
  d: 86_400_000,
  h: 3_600_000,
  m: 60_000,
  s: 1000,
};

/** The longest duration taken: 365 days (as `Retry-After`'s bound of one year). */
export const MAX_DURATION_MS = 365 * UNIT_MS.d;

const EXAMPLES = "such as 90s, 30m, 2h, 1d or 1h30m";

/**
 * Milliseconds in `text`: one or more whole numbers each followed by a unit, `d`
 * (days), `h` (hours), `m` (minutes) or `s` (seconds), largest unit first, each unit
 * once (`1h30m`). Spaces around are ignored; none inside. A `TypeError` for anything
 * else (a bare number, `1.5h`, `30 min`, `-5m`), a `RangeError` for zero or more than
 * 365 days; both say what to write instead.
 */
export function parseDuration(text: string): number {
  if (typeof text !== "string") {
    throw new TypeError(`a duration must be a string ${EXAMPLES}`);
  }
  const t = text.trim();
  if (/^\d+$/.test(t)) {
    throw new TypeError(
      `duration "${text}" needs a unit: ${t}s, ${t}m, ${t}h or ${t}d`,
    );
  }
  const match = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/i.exec(t);
  if (t === "" || match === null) {
    throw new TypeError(
      `duration "${text}" is not understood; write whole numbers with a unit ` +
        `(d, h, m, s), ${EXAMPLES}`,
    );
  }
  let ms = 0;
  for (const [i, unit] of ["d", "h", "m", "s"].entries()) {
    const n = match[i + 1];
    // Number of a long digit string is large or Infinity: the bound below refuses it.
    if (n !== undefined) ms += Number(n) * UNIT_MS[unit];
  }
  if (ms === 0) {
    throw new RangeError(
      `duration "${text}" is zero; give a time such as 30m (to switch off now, use off)`,
    );
  }
  if (!(ms <= MAX_DURATION_MS)) {
    throw new RangeError(
      `duration "${text}" is more than 365 days; give at most 365d, or an end time`,
    );
  }
  return ms;
}
