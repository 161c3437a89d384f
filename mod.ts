/**
 * Maintenance mode for Hono apps: while it is on, requests get a 503 page (HTML or
 * JSON, with `Retry-After` and `Cache-Control: no-store`) or a redirect; exempt paths,
 * client IPs and CIDR ranges, users (a predicate), tests and routes registered before
 * the middleware pass through. The state lives in a store (a local file, memory, or
 * one S3 object from `@x/maintenance/s3`) shared by every instance, behind a
 * read-through cache.
 *
 * A port of django-maintenance-mode (with its S3 fork's storage and cache).
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { bearerToken, createMaintenance, FileStore } from "@x/maintenance";
 *
 * const mm = createMaintenance({ store: new FileStore("maintenance_mode_state.txt") });
 * const app = new Hono();
 * app.get("/healthz", (c) => c.text("ok")); // registered before: never in maintenance
 * app.use(mm.middleware({ ignorePaths: [/^\/status/] }));
 * app.get("/", (c) => c.text("hello"));
 *
 * app.route(
 *   "/maintenance-mode", // GET state, POST /on, POST /off
 *   mm.adminRoutes({ authorize: bearerToken("a-long-random-token-from-your-secret-store") }),
 * );
 *
 * await mm.enable({ message: "Back at 14:00", retryAfter: 600 });
 * await mm.isEnabled(); // true
 * await mm.disable();
 * ```
 *
 * @module
 */
export {
  buildEnabledState,
  enabledState,
  type EnableOptions,
} from "./src/enable.ts";
export {
  type AdminRoutesOptions,
  type AdminTarget,
  type Authorize,
  bearerToken,
  createAdminRoutes,
} from "./src/admin.ts";
export {
  type BypassCookie,
  bypassCookieOk,
  type BypassOptions,
  checkSecret,
  createBypassCookie,
  generateSecret,
  hashSecret,
  verifySecret,
} from "./src/bypass.ts";
export { timingSafeEqual } from "./src/timing_safe.ts";
export {
  createMaintenance,
  type Maintenance,
  maintenance,
  type MaintenanceOptions,
} from "./src/maintenance.ts";
export {
  createGuard,
  type FetchHandler,
  type GuardedFetch,
  type GuardInternals,
  type GuardOptions,
} from "./src/guard.ts";
export {
  createMiddleware,
  forceMaintenance,
  type MaintenanceInfo,
  type MaintenanceMiddleware,
  type MaintenanceVariables,
  type MiddlewareInternals,
  type MiddlewareOptions,
} from "./src/middleware.ts";
export {
  type CacheOptions,
  StateCache,
  type StateCacheOptions,
} from "./src/cache.ts";
export {
  isActiveAt,
  type MaintenanceState,
  OFF_STATE,
  parseState,
  serializeState,
  StateParseError,
} from "./src/state.ts";
export { isActive, type Snapshot, toSnapshot } from "./src/snapshot.ts";
export { decide, type DecisionRules, type RequestFacts } from "./src/decide.ts";
export {
  compileIpRules,
  compilePathRules,
  type IpRule,
  isCanonicalPath,
  type ParsedIp,
  parseIp,
  type PathRule,
} from "./src/rules.ts";
export { clientIp, connectionIp } from "./src/client_ip.ts";
export {
  createResponder,
  type RenderResult,
  type Responder,
  type ResponseOptions,
  retryAfterSeconds,
} from "./src/response.ts";
export { escapeHtml, type PageOptions, renderPage } from "./src/page.ts";
export { TimeoutError, withTimeout } from "./src/timeout.ts";
export { isTestRun } from "./src/test_env.ts";
export type { CacheStore, StateStore } from "./stores/types.ts";
export { StoreError } from "./stores/store_error.ts";
export { MemoryStore } from "./stores/memory.ts";
export { DEFAULT_STATE_FILE, FileStore } from "./stores/file.ts";
export { MemoryCache, type MemoryCacheOptions } from "./stores/memory_cache.ts";
export {
  type IoRedisLikeClient,
  type NodeRedisLikeClient,
  redisCache,
  type RedisCacheOptions,
  type RedisLikeClient,
} from "./stores/redis_cache.ts";
