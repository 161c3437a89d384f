/**
 * Checks the options the middleware and the fetch-level guard share, once, at
 * construction, with messages that say what to change.
 *
 * @module
 */
import type { DecisionRules } from "./decide.ts";
import {
  compileIpRules,
  compilePathRules,
  type IpRule,
  type PathRule,
} from "./rules.ts";
import { isTestRun } from "./test_env.ts";

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
 * import { checkSharedOptions } from "./options.ts";
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
 * import { compileDecisionRules } from "./options.ts";
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
