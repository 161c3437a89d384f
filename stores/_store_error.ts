/**
 * The error every store raises: it names the store and says what to change.
 *
 * @module
 */

/**
 * A store could not be read or written. `message` names the store (path, bucket/key)
 * and the fix; `cause` keeps the original error.
 *
 * @example
 * ```ts
 * import { FileStore, StoreError } from "@x/maintenance";
 * try {
 *   await new FileStore("/no/such/dir/state.txt").write("1");
 * } catch (e) {
 *   if (e instanceof StoreError) console.error(e.message);
 * }
 * ```
 */
export class StoreError extends Error {
  /** A short machine-readable reason, such as `ENOENT`, `EACCES`, `TIMEOUT`, `AccessDenied`. */
  readonly code: string;
  /** Creates the error. */
  constructor(message: string, code: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "StoreError";
    this.code = code;
  }
}
