/**
 * The apps the benchmark compares. Every variant has the same routes; they differ only
 * in what runs before them: nothing (bare), a no-op middleware (the floor any Hono
 * middleware pays), this package's middleware, or this package's fetch-level guard.
 *
 * @module
 */
import { guard } from "../src/guard.ts";
import { Hono, type MiddlewareHandler } from "hono";
import type { GuardedFetch } from "../src/guard.ts";
import { createResponder } from "../src/_response.ts";
import type { Maintenance } from "../src/maintenance.ts";
import { toSnapshot } from "../src/_state.ts";

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
 * The no-op middleware, written the way Hono's documentation writes middleware
 * (`async (c, next) => { await next() }`): the floor the goals compare with.
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
 * The cheapest no-op there is: a plain function that hands on `next()`'s promise, no
 * async function of its own. For reference: the middleware's hot path has this shape.
 *
 * @example
 * ```ts
 * app.use(noopSync);
 * ```
 */
export const noopSync: MiddlewareHandler = (_c, next) => next();

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
 * The controller's guard around `fetch`.
 *
 * @example
 * ```ts
 * Deno.serve(guardOf(mm, app.fetch));
 * ```
 */
export function guardOf(mm: Maintenance, fetch: Fetch): GuardedFetch {
  return guard(mm, fetch);
}

/**
 * The page and headers the middleware answers with while `mm` is on, made by the same
 * responder it uses (without running the middleware, so no variant's code has run
 * before it is measured). The in-process benchmark checks it against the real answer.
 *
 * @example
 * ```ts
 * const page = await copyPage(mmOn);
 * ```
 */
export async function copyPage(mm: Maintenance): Promise<PageCopy> {
  const snap = toSnapshot(await mm.getState());
  const res = createResponder().respond(
    new Request("http://localhost/"),
    snap,
    Date.now(),
  );
  const headers: Record<string, string> = {};
  res.headers.forEach((v, k) => headers[k] = v);
  return { body: await res.text(), status: res.status, headers };
}
