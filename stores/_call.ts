/**
 * One call to a store's backend (a Workers KV or R2 binding, a Deno.Kv) that gives up
 * when its signal aborts and turns what the backend throws into a
 * {@linkcode StoreError} naming the store.
 *
 * @module
 */
import { StoreError } from "./_store_error.ts";

/** The largest value read, in UTF-8 bytes (`parseState` accepts at most 64 KiB). */
export const MAX_BYTES = 65_536;

/** The `EFBIG` error for a value over {@linkcode MAX_BYTES} (`size`, when known). */
export function tooLargeError(description: string, size?: number): StoreError {
  return new StoreError(
    `cannot read maintenance state ${description}: the value is larger than 64 KiB${
      size === undefined ? "" : ` (${size} bytes)`
    }, too large for a state; point the store at the right key, or rewrite it with ` +
      "mm.enable() / mm.disable()",
    "EFBIG",
  );
}

/**
 * Throws {@linkcode tooLargeError} unless `text` fits in {@linkcode MAX_BYTES} of
 * UTF-8. UTF-8 takes one to three bytes per UTF-16 unit: it is encoded only when its
 * length alone does not decide.
 */
export function checkSize(text: string, description: string): void {
  if (text.length > MAX_BYTES) throw tooLargeError(description);
  if (text.length <= MAX_BYTES / 3) return;
  const size = new TextEncoder().encode(text).byteLength;
  if (size > MAX_BYTES) throw tooLargeError(description, size);
}

/** `e` as a {@linkcode StoreError} saying `what` failed, keeping `e` as its cause. */
export function storeError(
  what: string,
  e: unknown,
  advice = "",
): StoreError {
  if (e instanceof StoreError) return e;
  const err = (e ?? {}) as { name?: unknown; message?: unknown };
  const code = typeof err.name === "string" && err.name !== ""
    ? err.name
    : "Error";
  return new StoreError(
    `${what}: ${String(err.message ?? e)}${advice}`,
    code,
    { cause: e },
  );
}

/**
 * Runs `fn` for the `op` of the store `description`, giving up when `signal` aborts;
 * what it throws becomes a {@linkcode StoreError}, with `advice(e)` after its message
 * (by default, for a write, that the state may be unchanged).
 */
export async function callStore<T>(
  op: "read" | "write",
  description: string,
  signal: AbortSignal | undefined,
  fn: () => Promise<T>,
  advice: (e: unknown) => string = () =>
    op === "write" ? "; the state may be unchanged: read it to see" : "",
): Promise<T> {
  const what = `cannot ${op} maintenance state ${description}`;
  const aborted = () =>
    new StoreError(`${what}: the ${op} was cancelled`, "ABORTED", {
      cause: signal?.reason,
    });
  if (signal?.aborted) throw aborted();
  let onAbort: (() => void) | undefined;
  const stopped = new Promise<never>((_, reject) => {
    onAbort = () => reject(aborted());
    signal?.addEventListener("abort", onAbort, { once: true });
  });
  stopped.catch(() => {});
  const work = fn();
  work.catch(() => {}); // a late failure of an abandoned call
  try {
    return await (signal ? Promise.race([work, stopped]) : work);
  } catch (e) {
    throw storeError(what, e, advice(e));
  } finally {
    if (onAbort) signal?.removeEventListener("abort", onAbort);
  }
}
