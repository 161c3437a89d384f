/**
 * What `onError` does when none is given: one line on stderr.
 *
 * @module
 */

/**
 * The default `onError` of the controller, and of a middleware or guard made without
 * one: `[maintenance] <message>` on stderr.
 *
 * @example
 * ```ts
 * import { logError } from "./_log_error.ts";
 * logError(new Error("cannot read maintenance state")); // [maintenance] cannot read ...
 * ```
 */
export function logError(error: Error): void {
  console.error(`[maintenance] ${error.message}`);
}
