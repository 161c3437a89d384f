/**
 * `ignoreRequest` made safe to call on every blocked request: a predicate that throws
 * (a staff check whose database is down for the very maintenance) means "not exempt",
 * and is reported once per failure streak, instead of turning the maintenance page
 * into a 500 for everyone.
 *
 * @module
 */

/**
 * Wraps a predicate so that a throw or a rejection reads as `false` and is reported
 * to `onError` once until the predicate answers again. A predicate that answers
 * synchronously still does.
 *
 * @example
 * ```ts
 * import { failClosed } from "./_exempt_predicate.ts";
 * const isStaff = failClosed((req: Request) => {
 *   throw new Error("session store down");
 * }, (e) => console.error(e.message), "ignoreRequest");
 * isStaff(new Request("http://localhost/")); // false, and one message
 * ```
 */
export function failClosed<A extends unknown[]>(
  predicate: (...args: A) => boolean | Promise<boolean>,
  onError: (error: Error) => void,
  name: string,
): (...args: A) => boolean | Promise<boolean> {
  let failing = false;
  function failed(e: unknown): false {
    if (!failing) {
      failing = true;
      const why = e instanceof Error ? e.message : String(e);
      const error = new Error(
        `${name} threw: ${why}; the request got the maintenance response ` +
          "(told once until it answers again)",
        { cause: e },
      );
      try {
        onError(error);
      } catch {
        // an onError that throws must not break a request
      }
    }
    return false;
  }
  return function exempt(...args: A): boolean | Promise<boolean> {
    let answer: boolean | Promise<boolean>;
    try {
      answer = predicate(...args);
    } catch (e) {
      return failed(e);
    }
    if (answer instanceof Promise) {
      return answer.then((yes) => {
        failing = false;
        return yes;
      }, failed);
    }
    failing = false;
    return answer;
  };
}
