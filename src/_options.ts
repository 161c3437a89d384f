/**
 * Checks the options the middleware and the fetch-level guard share, once, at
 * construction, with messages that say what to change.
 *
 * @module
 */
import type { DecisionRules } from "./_decide.ts";
import {
  compileIpRules,
  compilePathRules,
  type IpRule,
  type PathRule,
} from "./_rules.ts";
import { isTestRun } from "./_test_env.ts";

/** Edits (insert, delete, replace) that turn `a` into `b`. */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(
        prev[j] + 1,
        cur[j - 1] + 1,
        prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    prev = cur;
  }
  return prev[b.length];
}

/** The known name closest to `name`, when it is close enough to be a typo. */
export function closest(
  name: string,
  known: Iterable<string>,
): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of known) {
    const d = k.toLowerCase() === name.toLowerCase()
      ? 0
      : editDistance(name, k);
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  return best !== undefined && name.length > 1 &&
      bestDistance <= Math.max(1, Math.min(3, Math.floor(best.length / 3)))
    ? best
    : undefined;
}

/**
 * The one option checker: throws a `TypeError` unless `options` is a plain object whose
 * keys are all `known`, naming an unknown key, the closest known one ("did you mean"),
 * or what `aliases` says to write instead (`until` → `endsAt`). `what` names the
 * options in messages, such as `"createMaintenance"`; `hint` ends a message about an
 * unknown key.
 */
export function checkOptions(
  options: unknown,
  what: string,
  known: readonly string[],
  aliases: Readonly<Record<string, string>> = {},
  hint = "",
): asserts options is Record<string, unknown> {
  if (
    options === null || typeof options !== "object" || Array.isArray(options)
  ) {
    throw new TypeError(
      `${what} takes an options object, such as { ${known[0]} }`,
    );
  }
  for (const k of Object.keys(options)) {
    if (known.includes(k)) continue;
    const instead = Object.hasOwn(aliases, k) ? aliases[k] : closest(k, known);
    throw new TypeError(
      `unknown ${what} option "${k}"${
        instead ? `; did you mean ${instead}?` : ""
      } (known: ${known.join(", ")})${hint}`,
    );
  }
}

/** Option names the middleware and the guard both take. */
const KNOWN: ReadonlySet<string> = new Set([
  "enabled",
  "ignorePaths",
  "ignoreIps",
  "getClientIp",
  "trustedProxies",
  "ignoreRequest",
  "ignoreTests",
  "render",
  "status",
  "retryAfter",
  "redirectTo",
  "page",
]);

/** The shared options, as far as checking them needs. */
export interface SharedOptions {
  /** Force on/off. */
  enabled?: boolean;
  /** Client IP function. */
  getClientIp?: unknown;
  /** Request predicate. */
  ignoreRequest?: unknown;
  /** Custom page. */
  render?: unknown;
  /** Never block in tests. */
  ignoreTests?: boolean;
  /** Redirect target. */
  redirectTo?: string;
  /** Proxies that append to X-Forwarded-For. */
  trustedProxies?: number;
}

/**
 * Throws `TypeError`/`RangeError` for options that are unknown or of the wrong type.
 * `what` names the thing being built in messages; `extra` are further accepted names.
 *
 * @example
 * ```ts
 * import { checkSharedOptions } from "./_options.ts";
 * checkSharedOptions({ ignoreTests: true }, "maintenance middleware", []);
 * ```
 */
export function checkSharedOptions(
  options: SharedOptions,
  what: string,
  extra: readonly string[],
): void {
  if (options === null || typeof options !== "object") {
    throw new TypeError(`${what} options must be an object, such as {}`);
  }
  for (const k of Object.keys(options)) {
    if (!KNOWN.has(k) && !extra.includes(k)) {
      throw new TypeError(
        `unknown ${what} option "${k}"; known options: ${
          [...KNOWN].join(", ")
        }`,
      );
    }
  }
  if (options.enabled !== undefined && typeof options.enabled !== "boolean") {
    throw new TypeError(
      "enabled must be true, false or left out (read the store)",
    );
  }
  for (const k of ["getClientIp", "ignoreRequest", "render"] as const) {
    if (options[k] !== undefined && typeof options[k] !== "function") {
      throw new TypeError(`${k} must be a function`);
    }
  }
  if (
    options.ignoreTests !== undefined &&
    typeof options.ignoreTests !== "boolean"
  ) {
    throw new TypeError("ignoreTests must be true or false");
  }
  if (options.redirectTo !== undefined && options.render !== undefined) {
    throw new TypeError(
      "give redirectTo or render, not both: a redirect has no page to render",
    );
  }
  const tp = options.trustedProxies;
  if (tp !== undefined && (!Number.isInteger(tp) || tp < 0 || tp > 10)) {
    throw new RangeError(
      "trustedProxies must be a whole number from 0 (default) to 10",
    );
  }
}

/** The shared options the decision's rules are compiled from. */
export interface RuleOptions {
  /** Force on/off. */
  enabled?: boolean;
  /** Never block in tests. */
  ignoreTests?: boolean;
  /** Exempt client IPs. */
  ignoreIps?: IpRule[];
  /** Exempt paths. */
  ignorePaths?: PathRule[];
}

/**
 * Compiles the rules `decide()` uses, once, for the middleware and the guard alike.
 *
 * @example
 * ```ts
 * import { compileDecisionRules } from "./_options.ts";
 * const rules = compileDecisionRules({ ignorePaths: ["/healthz"] }, undefined, undefined);
 * rules.path("/healthz"); // true
 * ```
 */
export function compileDecisionRules(
  options: RuleOptions,
  redirectPath: string | undefined,
  ownPath: ((path: string) => boolean) | undefined,
): DecisionRules {
  return {
    forced: options.enabled,
    ownPath: ownPath ?? (() => false),
    skipForTests: options.ignoreTests === true && isTestRun(),
    ip: compileIpRules(options.ignoreIps),
    path: compilePathRules(options.ignorePaths),
    redirectPath,
  };
}
