/**
 * Bounds a call that takes an `AbortSignal` by a timeout, even when the callee ignores
 * the signal.
 *
 * @module
 */

/**
 * Raised when a bounded call takes longer than its timeout.
 */
export class TimeoutError extends Error {
  /** Always `"TIMEOUT"`. */
  readonly code = "TIMEOUT";
  /** Creates the error for `what` after `ms`. */
  constructor(what: string, ms: number) {
    super(`${what} did not finish within ${ms} ms`);
    this.name = "TimeoutError";
  }
}

/**
 * Runs `fn` with a signal that aborts after `ms`, and rejects with
 * {@linkcode TimeoutError} at that moment whether or not `fn` honours the signal.
 */
export function withTimeout<T>(
  fn: (signal: AbortSignal) => Promise<T>,
  ms: number,
  what: string,
): Promise<T> {
  const controller = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = new TimeoutError(what, ms);
      controller.abort(err);
      reject(err);
    }, ms);
  });
  let work: Promise<T>;
  try {
    // Promise.resolve: a store that answers with a plain value (not a promise) works too.
    work = Promise.resolve(fn(controller.signal));
  } catch (e) {
    clearTimeout(timer);
    return Promise.reject(e);
  }
  // A late rejection of the abandoned call must not become an unhandled rejection.
  work.catch(() => {});
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
