/**
 * Maintenance mode for Hono apps. While it is on, requests get a 503 page (HTML or
 * JSON, with `Retry-After` and `Cache-Control: no-store`) or a redirect; exempt paths,
 * client IPs and CIDR ranges, users (a predicate), tests and routes registered before
 * the middleware pass through. The state lives in a store shared by every instance (a
 * local file, memory, or one S3 object), behind a read-through cache. A port of
 * django-maintenance-mode.
 *
 * Optional parts are entry points of their own: `@x/maintenance/admin` (admin routes),
 * `@x/maintenance/guard` (a check before Hono routes), `@x/maintenance/redis` (a shared
 * cache), `@x/maintenance/s3` (`S3Store`), `@x/maintenance/cloudflare` (Workers KV and R2
 * stores) and `@x/maintenance/cli`.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { createMaintenance, FileStore } from "@x/maintenance";
 *
 * const mm = createMaintenance({ store: new FileStore("maintenance_mode_state.txt") });
 * const app = new Hono();
 * app.get("/healthz", (c) => c.text("ok")); // registered before: never in maintenance
 * app.use(mm.middleware({ ignorePaths: [/^\/status/] }));
 * app.get("/", (c) => c.text("hello"));
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
export type { CacheOptions } from "./src/_cache.ts";
export type { MaintenanceState } from "./src/_state.ts";
export type { IpRule, PathRule } from "./src/_rules.ts";
export type { RenderResult } from "./src/_response.ts";
export type { PageOptions } from "./src/_page.ts";
export type { CacheStore, StateStore } from "./stores/_types.ts";
export { StoreError } from "./stores/_store_error.ts";
export { MemoryStore } from "./stores/memory.ts";
export { FileStore } from "./stores/file.ts";
