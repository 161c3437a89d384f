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
 * import { createMaintenance, FileStore } from "@x/maintenance";
 * import { adminRoutes, bearerToken } from "@x/maintenance/admin";
 *
 * const mm = createMaintenance({ store: new FileStore("maintenance_mode_state.txt") });
 * const app = new Hono();
 * app.get("/healthz", (c) => c.text("ok")); // registered before: never in maintenance
 * app.use(mm.middleware({ ignorePaths: [/^\/status/] }));
 * app.get("/", (c) => c.text("hello"));
 *
 * app.route(
 *   "/maintenance-mode", // GET state, POST /on, POST /off
 *   adminRoutes(mm, { authorize: bearerToken("a-long-random-token-from-your-secret-store") }),
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
  createMaintenance,
  type Maintenance,
  maintenance,
  type MaintenanceOptions,
} from "./src/maintenance.ts";
export {
  forceMaintenance,
  type MaintenanceInfo,
  type MaintenanceMiddleware,
  type MaintenanceVariables,
  type MiddlewareOptions,
} from "./src/middleware.ts";
export type { SharedOptions } from "./src/_engine.ts";
export type { EnableOptions } from "./src/_enable.ts";
export type { BypassOptions } from "./src/_bypass.ts";
export type { CacheOptions } from "./src/_cache.ts";
export type { MaintenanceState } from "./src/_state.ts";
export type { IpRule, PathRule } from "./src/_rules.ts";
export type { RenderResult } from "./src/_response.ts";
export type { PageOptions } from "./src/_page.ts";
export type { CacheStore, StateStore } from "./stores/_types.ts";
export { StoreError } from "./stores/_store_error.ts";
export { MemoryStore } from "./stores/memory.ts";
export { FileStore } from "./stores/file.ts";
