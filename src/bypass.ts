/**
 * The secret bypass link, as Laravel's `php artisan down --secret`: while maintenance
 * is on, whoever visits `/<secret>` gets a signed cookie and then passes. Optional, so
 * it lives beside the core: give the controller `bypass: bypassCookie()` and switch on
 * with a secret (`mm.enable({ secret })`, `maintenance on --with-secret`, the admin
 * routes' `secret`). The state holds only a salted hash of the secret.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { createMaintenance, MemoryStore } from "@x/maintenance";
 * import { bypassCookie } from "@x/maintenance/bypass";
 *
 * const mm = createMaintenance({ store: new MemoryStore(), bypass: bypassCookie() });
 * const app = new Hono();
 * app.use(mm.middleware());
 * await mm.enable({ secret: crypto.randomUUID() }); // visit /<secret> to pass
 * ```
 *
 * @module
 */
import {
  type BypassCookie,
  type BypassOptions,
  createBypassCookie,
} from "./_bypass.ts";

export type { BypassCookie, BypassOptions };

/**
 * The bypass cookie of a controller (`createMaintenance({ bypass })`): its name,
 * lifetime and signing key. Options are checked here, once.
 *
 * @example
 * ```ts
 * import { createMaintenance, MemoryStore } from "@x/maintenance";
 * import { bypassCookie } from "@x/maintenance/bypass";
 * const mm = createMaintenance({
 *   store: new MemoryStore(),
 *   bypass: bypassCookie({ cookieKey: "a-long-random-key-from-your-secret-store", maxAge: 3600 }),
 * });
 * ```
 */
export function bypassCookie(options?: BypassOptions): BypassCookie {
  return createBypassCookie(options);
}
