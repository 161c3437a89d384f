/**
 * The decision, as one pure function: does this request get the maintenance response?
 * Same order as upstream Django: per-route force, state, the library's own routes,
 * tests, client IP, paths, the redirect target itself. (`ignoreRequest`, the one rule
 * that needs the app, is asked by the caller only when this says "maintenance".)
 *
 * @module
 */
import { isActive, type Snapshot } from "./_snapshot.ts";

/**
 * Compiled rules the decision uses (see `compileRules` in the middleware).
 *
 * @example
 * ```ts
 * import type { DecisionRules } from "@x/maintenance";
 * const rules: DecisionRules = {
 *   forced: undefined,
 *   ownPath: () => false,
 *   skipForTests: false,
 *   ip: () => false,
 *   path: (p) => p === "/healthz",
 *   redirectPath: undefined,
 * };
 * ```
 */
export interface DecisionRules {
  /** `enabled` option: `true`/`false` forces, `undefined` reads the state. */
  readonly forced: boolean | undefined;
  /** Paths of the library's own routes (admin, bypass) that are never blocked. */
  readonly ownPath: (path: string) => boolean;
  /** Whether this process runs tests and `ignoreTests` is on. */
  readonly skipForTests: boolean;
  /** Exempt client IPs. */
  readonly ip: (ip: string | undefined) => boolean;
  /** Exempt paths. */
  readonly path: (path: string) => boolean;
  /** The redirect target's path on this site, never redirected to itself. */
  readonly redirectPath: string | undefined;
}

/**
 * What the decision knows of a request.
 *
 * @example
 * ```ts
 * import type { RequestFacts } from "@x/maintenance";
 * const facts: RequestFacts = { path: "/orders", ip: "203.0.113.7" };
 * ```
 */
export interface RequestFacts {
  /** The request path, as routing sees it. */
  readonly path: string;
  /**
   * The path of the request URL, when routing sees another spelling (Hono's
   * `strict: false` drops a trailing slash; a `getPath` option may prefix the host).
   * A client that follows the redirect asks for this path, so the redirect target
   * itself is recognised by it too. Default: `path`.
   */
  readonly urlPath?: string;
  /** The client address (see `getClientIp`), if known. */
  readonly ip: string | undefined;
  /** Per-route `forceMaintenance(value)`, if the route has it. */
  readonly force?: boolean;
}

/**
 * `"maintenance"` when the request gets the maintenance response (unless
 * `ignoreRequest` lets it through), `"pass"` otherwise.
 *
 * @example
 * ```ts
 * import { decide, toSnapshot } from "@x/maintenance";
 * const rules = {
 *   forced: undefined, ownPath: () => false, skipForTests: false,
 *   ip: () => false, path: (p: string) => p === "/healthz", redirectPath: undefined,
 * };
 * decide(rules, toSnapshot({ enabled: true }), Date.now(), { path: "/", ip: undefined });
 * // "maintenance"
 * ```
 */
export function decide(
  rules: DecisionRules,
  snap: Snapshot,
  now: number,
  facts: RequestFacts,
): "pass" | "maintenance" {
  if (facts.force !== undefined) return facts.force ? "maintenance" : "pass";
  const on = rules.forced ?? isActive(snap, now);
  if (!on) return "pass";
  if (rules.ownPath(facts.path)) return "pass";
  if (rules.skipForTests) return "pass";
  if (rules.ip(facts.ip)) return "pass";
  if (rules.path(facts.path)) return "pass";
  if (
    rules.redirectPath !== undefined &&
    (facts.path === rules.redirectPath || facts.urlPath === rules.redirectPath)
  ) {
    return "pass";
  }
  return "maintenance";
}
