/**
 * The apps the benchmark compares. Every variant has the same routes; they differ only
 * in what runs before them: nothing (bare), a no-op middleware (the floor any Hono
 * middleware pays), this package's middleware, or this package's fetch-level guard.
 *
 * @module
 */
import { Hono, type MiddlewareHandler } from "hono";
import { createGuard, type GuardedFetch } from "../src/guard.ts";
import type { Maintenance } from "../mod.ts";

/** A fetch handler as the benchmark calls it. */
export type Fetch = (
  req: Request,
  info?: unknown,
) => Response | Promise<Response>;

/** The path of the route that answers a maintenance-like page (for `noop_page`). */
export const PAGE_PATH = "/page";

/** The maintenance page as the middleware answers it, copied for the `noop_page` route. */
export interface PageCopy {
  /** The body. */
  body: string;
  /** The status (503). */
  status: number;
  /** The headers, as the middleware sends them. */
  headers: Record<string, string>;
}

/**
 * The no-op middleware: the shape of a Hono middleware that does nothing.
 *
 * @example
 * ```ts
 * app.use(noop);
 * ```
 */
export const noop: MiddlewareHandler = async (_c, next) => {
  await next();
};

/**
 * Adds the benchmark's routes, the same in every variant.
 *
 * @example
 * ```ts
 * const app = new Hono();
 * addRoutes(app, page);
 * ```
 */
export function addRoutes(app: Hono, page: PageCopy): Hono {
  app.get("/", (c) => c.text("hello"));
  app.get("/healthz", (c) => c.text("ok"));
  app.get("/users/:id", (c) => c.json({ id: c.req.param("id") }));
  app.post("/items", (c) => c.json({ ok: true }, 201));
  app.get(
    PAGE_PATH,
    () =>
      new Response(page.body, { status: page.status, headers: page.headers }),
  );
  return app;
}

/**
 * An app with `mw` (or nothing) before the routes.
 *
 * @example
 * ```ts
 * const app = makeApp(page, noop);
 * ```
 */
export function makeApp(page: PageCopy, mw?: MiddlewareHandler): Hono {
  const app = new Hono();
  if (mw) app.use(mw);
  return addRoutes(app, page);
}

/**
 * The controller's guard around `fetch`: `mm.guard` once the controller has it,
 * else `createGuard` over the controller's cache.
 *
 * @example
 * ```ts
 * Deno.serve(guardOf(mm, app.fetch));
 * ```
 */
export function guardOf(mm: Maintenance, fetch: Fetch): GuardedFetch {
  const withGuard = mm as Maintenance & {
    guard?: (fetch: Fetch) => GuardedFetch;
  };
  return typeof withGuard.guard === "function"
    ? withGuard.guard(fetch)
    : createGuard(mm.cache, fetch);
}

/**
 * The page and headers `mm`'s middleware answers with while maintenance is on.
 *
 * @example
 * ```ts
 * const page = await copyPage(mmOn);
 * ```
 */
export async function copyPage(mm: Maintenance): Promise<PageCopy> {
  const app = new Hono();
  app.use(mm.middleware());
  app.get("/", (c) => c.text("hello"));
  const res = await app.fetch(new Request("http://localhost/"));
  const headers: Record<string, string> = {};
  res.headers.forEach((v, k) => headers[k] = v);
  return { body: await res.text(), status: res.status, headers };
}
