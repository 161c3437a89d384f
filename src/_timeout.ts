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
  return new Promise<T>((resolve, reject) => {
    timer = setTimeout(() => {
      const err = new TimeoutError(what, ms);
      controller.abort(err);
      reject(err);
    }, ms);
    // A call that throws rejects; one that answers with a plain value (not a
    // promise) resolves; a late rejection of the abandoned call is handled here, not
    // an unhandled rejection.
    Promise.resolve(fn(controller.signal)).then(resolve, reject);
  }).finally(() => clearTimeout(timer));
}

/** Runs `fn` in `ms` without keeping the process alive for it (Deno, Bun, Node). */
export function unrefTimeout(
  fn: () => void,
  ms: number,
): ReturnType<typeof setTimeout> {
  const id = setTimeout(fn, ms);
  if (typeof id === "number") {
    const deno = (globalThis as { Deno?: { unrefTimer?(id: number): void } })
      .Deno;
    deno?.unrefTimer?.(id);
  } else (id as { unref?(): void }).unref?.();
  return id;
}
