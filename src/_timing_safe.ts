/**
 * Constant-time comparison of secrets.
 *
 * @module
 */

/**
 * Whether two strings are equal, in time that depends only on their length, not on
 * where they differ. Strings of different lengths are unequal at once, so use it on
 * values whose length is not secret (digests, fixed-size tokens); to compare a
 * user-chosen secret, compare digests of both.
 *
 * @example
 * ```ts
 * import { timingSafeEqual } from "@x/maintenance";
 * timingSafeEqual("a1b2", "a1b2"); // true
 * timingSafeEqual("a1b2", "a1b3"); // false
 * ```
 */
export function timingSafeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) {
    diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  }
  return diff === 0;
}
