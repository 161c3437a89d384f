/**
 * What `onError` does when none is given: one line on stderr.
 *
 * @module
 */

/**
 * The default `onError` of the controller, and of a middleware or guard made without
 * one: `[maintenance] <message>` on stderr.
 */
export function logError(error: Error): void {
  console.error(`[maintenance] ${error.message}`);
}
