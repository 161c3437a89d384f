/**
 * The middleware meeting the rest of Hono: router options (`strict`, `getPath`),
 * sub-apps, Hono's own middleware before and after it, and real servers.
 */
import { guard } from "../src/guard.ts";
import { bypassCookie } from "../src/bypass.ts";
import { adminRoutes } from "../src/admin.ts";
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { connect } from "node:net";
import { Hono } from "hono";
import { cors } from "hono/cors";
import { setCookie } from "hono/cookie";
import { createMaintenance } from "../src/maintenance.ts";
import type { EnableOptions } from "../src/_enable.ts";
import { forceMaintenance, type MiddlewareOptions } from "../src/middleware.ts";
import { MemoryStore } from "../stores/memory.ts";

const SECRET = "hono-integration-secret-0123456789";

/** A controller whose state is switched on with `state`, cached for a minute. */
async function controller(
  state: EnableOptions = {},
): Promise<ReturnType<typeof createMaintenance>> {
  const mm = createMaintenance({
    bypass: bypassCookie(),
    store: new MemoryStore(),
    cache: { ttlMs: 60_000 },
  });
  await mm.enable(state);
  return mm;
}

async function send(
  app: Hono,
  url: string,
  init?: RequestInit,
): Promise<{ status: number; headers: Headers; body: string }> {
  const res = await app.request(url, init);
  return { status: res.status, headers: res.headers, body: await res.text() };
}

/** `Deno.serve` or `Bun.serve` on `hostname`, port 0; `undefined` if it cannot listen. */
interface Served {
  port: number;
  stop(): Promise<void>;
}
type Fetch = (req: Request, info: unknown) => Response | Promise<Response>;
interface DenoLike {
  serve(
    options: {
      hostname: string;
      port: number;
      onListen?: (addr: { port: number }) => void;
    },
    handler: Fetch,
  ): { shutdown(): Promise<void> };
}
interface BunLike {
  serve(options: { hostname: string; port: number; fetch: Fetch }): {
    port: number;
    stop(force?: boolean): void | Promise<void>;
  };
}

async function serveOn(
  hostname: string,
  fetch: Fetch,
): Promise<Served | undefined> {
  const g = globalThis as { Deno?: DenoLike; Bun?: BunLike };
  try {
    if (g.Bun) {
      const s = g.Bun.serve({ hostname, port: 0, fetch });
      return {
        port: s.port,
        stop: async () => {
          await s.stop(true);
        },
      };
    }
    const deno = g.Deno!;
    return await new Promise<Served>((resolve) => {
      const s = deno.serve({
        hostname,
        port: 0,
        onListen: ({ port }) => resolve({ port, stop: () => s.shutdown() }),
      }, fetch);
    });
  } catch {
    return undefined;
  }
}

/** The status line's code of a raw HTTP/1.1 exchange on 127.0.0.1. */
function rawStatus(port: number, request: string): Promise<number> {
  return new Promise((resolve, reject) => {
    let data = "";
    const socket = connect(port, "127.0.0.1", () => socket.write(request));
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => data += chunk);
    socket.on("error", reject);
    socket.on("end", () => resolve(Number(data.split(" ")[1])));
  });
}

describe("redirectTo and Hono's router options", () => {
  it("strict: false: the target with a trailing slash is served, not redirected to itself", async () => {
    const mm = await controller();
    const app = new Hono({ strict: false });
    app.use(mm.middleware({ redirectTo: "/maintenance/" }));
    app.get("/maintenance", (c) => c.text("maintenance page"));
    app.get("/", (c) => c.text("home"));

    const home = await send(app, "/");
    assert.equal(home.status, 302);
    assert.equal(home.headers.get("location"), "/maintenance/");
    // The client follows the Location: routing sees "/maintenance", the URL says
    // "/maintenance/". Before the fix this was a 302 to itself, forever.
    const target = await send(app, "/maintenance/");
    assert.equal(target.status, 200);
    assert.equal(target.body, "maintenance page");
  });

  it("a getPath that prefixes the host: the target is served, not redirected to itself", async () => {
    const mm = await controller();
    const app = new Hono({
      getPath: (req) =>
        "/" + new URL(req.url).hostname + new URL(req.url).pathname,
    });
    app.use(mm.middleware({ redirectTo: "/maintenance" }));
    app.get("/www.example.com/maintenance", (c) => c.text("maintenance page"));
    app.get("/www.example.com/", (c) => c.text("home"));

    const home = await send(app, "http://www.example.com/");
    assert.equal(home.status, 302);
    assert.equal(home.headers.get("location"), "/maintenance");
    const target = await send(app, "http://www.example.com/maintenance");
    assert.equal(target.status, 200);
    assert.equal(target.body, "maintenance page");
  });
});

describe("the bypass link and Hono's router options", () => {
  it("a getPath that prefixes the host: /<secret> still sets the cookie", async () => {
    const mm = await controller({ secret: SECRET });
    const app = new Hono({
      getPath: (req) =>
        "/" + new URL(req.url).hostname + new URL(req.url).pathname,
    });
    app.use(mm.middleware());
    app.get("/www.example.com/", (c) => c.text("home"));

    const res = await send(app, `http://www.example.com/${SECRET}`);
    assert.equal(res.status, 302);
    assert.match(res.headers.get("set-cookie") ?? "", /^maintenance_bypass=/);
  });

  it("strict: false: /<secret>/ sets the cookie too", async () => {
    const mm = await controller({ secret: SECRET });
    const app = new Hono({ strict: false });
    app.use(mm.middleware());
    app.get("/", (c) => c.text("home"));
    const res = await send(app, `/${SECRET}/`);
    assert.equal(res.status, 302);
    assert.match(res.headers.get("set-cookie") ?? "", /^maintenance_bypass=/);
  });
});

describe("headers set earlier in the chain", () => {
  it("a Cache-Control set before the middleware never makes the 503 cacheable (cors before it)", async () => {
    const mm = await controller();
    const app = new Hono();
    // cors() touches c.res, after which Hono copies earlier headers onto the
    // response a middleware returns, and lets them win.
    app.use(cors());
    app.use(async (c, next) => {
      c.header("Cache-Control", "public, max-age=600");
      c.header("Vary", "Origin");
      await next();
    });
    app.use(mm.middleware());
    app.get("/", (c) => c.text("home"));

    const res = await send(app, "/", {
      headers: { origin: "https://a.example" },
    });
    assert.equal(res.status, 503);
    assert.equal(res.headers.get("cache-control"), "no-store");
    assert.equal(res.headers.get("retry-after"), "300");
    assert.equal(res.headers.get("access-control-allow-origin"), "*");
    // Both negotiations are declared: the page varies by Accept, the app by Origin.
    const vary = (res.headers.get("vary") ?? "").toLowerCase().split(/\s*,\s*/);
    assert.ok(vary.includes("accept") && vary.includes("origin"), vary.join());
  });

  it("a redirect keeps its own Location and Retry-After", async () => {
    const mm = await controller();
    const app = new Hono();
    app.use(cors());
    app.use(async (c, next) => {
      c.header("Retry-After", "86400");
      await next();
    });
    app.use(mm.middleware({ redirectTo: "/down" }));
    app.get("/", (c) => c.text("home"));
    const res = await send(app, "/");
    assert.equal(res.status, 302);
    assert.equal(res.headers.get("location"), "/down");
    assert.equal(res.headers.get("retry-after"), "300");
    assert.equal(res.headers.get("cache-control"), "no-store");
  });

  it("the bypass cookie survives a session cookie set before the middleware", async () => {
    const mm = await controller({ secret: SECRET });
    const app = new Hono();
    app.use(cors());
    app.use(async (c, next) => {
      setCookie(c, "sid", "s1");
      await next();
    });
    app.use(mm.middleware());
    app.get("/", (c) => c.text("home"));

    const res = await app.request(`/${SECRET}`);
    await res.body?.cancel();
    assert.equal(res.status, 302);
    const cookies = res.headers.getSetCookie();
    assert.ok(
      cookies.some((c) => c.startsWith("maintenance_bypass=")),
      `no bypass cookie in ${JSON.stringify(cookies)}`,
    );
    assert.ok(cookies.some((c) => c.startsWith("sid=")));
  });

  it("forceMaintenance(true) also answers with no-store after a Cache-Control set earlier", async () => {
    const mm = createMaintenance({
      bypass: bypassCookie(),
      store: new MemoryStore(),
    });
    const app = new Hono();
    app.use(cors());
    app.use(async (c, next) => {
      c.header("Cache-Control", "public, max-age=600");
      await next();
    });
    app.use(mm.middleware());
    app.get("/old", forceMaintenance(true), (c) => c.text("never"));
    const res = await send(app, "/old");
    assert.equal(res.status, 503);
    assert.equal(res.headers.get("cache-control"), "no-store");
  });
});

describe("forceMaintenance in sub-apps", () => {
  it("forceMaintenance(false) counts through two levels of sub-apps with their own onError", async () => {
    const mm = await controller();
    const app = new Hono();
    app.use(mm.middleware());
    const v1 = new Hono();
    v1.onError((_err, c) => c.text("v1 error", 500));
    v1.get("/status", forceMaintenance(false), (c) => c.text("reachable"));
    v1.get("/old", forceMaintenance(true), (c) => c.text("never"));
    const api = new Hono();
    api.onError((_err, c) => c.text("api error", 500));
    api.route("/v1", v1);
    app.route("/api", api);
    app.get("/", (c) => c.text("home"));

    const status = await send(app, "/api/v1/status");
    assert.equal(status.status, 200);
    assert.equal(status.body, "reachable");
    assert.equal((await send(app, "/api/v1/old")).status, 503);
    assert.equal((await send(app, "/")).status, 503);
  });
});

describe("Retry-After when the window has ended", () => {
  /** A state whose window ended a minute ago, still in the store. */
  async function ended(): Promise<ReturnType<typeof createMaintenance>> {
    let t = Date.parse("2030-01-01T12:00:00Z");
    const mm = createMaintenance({
      bypass: bypassCookie(),
      store: new MemoryStore(),
      cache: { ttlMs: 60_000 },
      now: () => t,
    });
    await mm.enable({ endsAt: new Date(t + 60_000).toISOString() });
    t += 120_000;
    return mm;
  }

  it("enabled: true after endsAt: the default, not 1 second", async () => {
    const mm = await ended();
    const app = new Hono();
    app.use(mm.middleware({ enabled: true, retryAfter: 120 }));
    app.get("/", (c) => c.text("home"));
    const res = await send(app, "/");
    assert.equal(res.status, 503);
    assert.equal(res.headers.get("retry-after"), "120");
  });

  it("forceMaintenance(true) after endsAt: the default, not 1 second", async () => {
    const mm = await ended();
    const app = new Hono();
    app.use(mm.middleware());
    app.get("/old", forceMaintenance(true), (c) => c.text("never"));
    app.get("/", (c) => c.text("home"));
    assert.equal((await send(app, "/")).status, 200);
    const res = await send(app, "/old");
    assert.equal(res.status, 503);
    assert.equal(res.headers.get("retry-after"), "300");
  });
});

describe("Hono around the middleware (behaviour kept)", () => {
  it("cors() registered before it answers preflights; the 503 carries CORS headers", async () => {
    const mm = await controller();
    const app = new Hono();
    app.use(cors({ origin: "https://a.example" }));
    app.use(mm.middleware());
    app.get("/", (c) => c.text("home"));
    const pre = await send(app, "/", {
      method: "OPTIONS",
      headers: {
        origin: "https://a.example",
        "access-control-request-method": "GET",
      },
    });
    assert.equal(pre.status, 204);
    const res = await send(app, "/", {
      headers: { origin: "https://a.example" },
    });
    assert.equal(res.status, 503);
    assert.equal(
      res.headers.get("access-control-allow-origin"),
      "https://a.example",
    );
    assert.equal(res.headers.get("cache-control"), "no-store");
  });

  it("a route that would be a 404 gets the 503, app.notFound is not asked", async () => {
    const mm = await controller();
    const app = new Hono();
    app.use(mm.middleware());
    app.notFound((c) => c.text("not found", 404));
    assert.equal((await send(app, "/nope")).status, 503);
  });

  it("HEAD gets the status and headers without a body", async () => {
    const mm = await controller();
    const app = new Hono();
    app.use(mm.middleware());
    app.get("/", (c) => c.text("home"));
    const res = await send(app, "/", { method: "HEAD" });
    assert.equal(res.status, 503);
    assert.equal(res.body, "");
    assert.equal(res.headers.get("retry-after"), "300");
  });

  it("basePath and route(): ignorePaths match the full path, as c.req.path has it", async () => {
    const mm = await controller();
    const options: MiddlewareOptions = { ignorePaths: ["/api/status"] };
    const api = new Hono().basePath("/api");
    api.use(mm.middleware(options));
    api.get("/status", (c) => c.text("ok"));
    api.get("/orders", (c) => c.text("orders"));
    assert.equal((await send(api, "/api/status")).status, 200);
    assert.equal((await send(api, "/api/orders")).status, 503);
  });
});

describe("client addresses through the runtime's server", () => {
  it("an IPv4 client of a dual-stack listener matches an IPv4 rule", async () => {
    const mm = await controller();
    const app = new Hono();
    app.use(mm.middleware({ ignoreIps: ["127.0.0.0/8"] }));
    app.get("/", (c) => c.text("ok"));
    const server = await serveOn("::", app.fetch);
    if (server === undefined) return; // no IPv6 on this machine
    try {
      const res = await fetch(`http://127.0.0.1:${server.port}/`);
      await res.body?.cancel();
      assert.equal(res.status, 200);
    } finally {
      await server.stop();
    }
  });

  it("trustedProxies reads several X-Forwarded-For header lines as one list", async () => {
    const mm = await controller();
    const app = new Hono();
    app.use(
      mm.middleware({ ignoreIps: ["203.0.113.7"], trustedProxies: 1 }),
    );
    app.get("/", (c) => c.text("ok"));
    const server = await serveOn("127.0.0.1", app.fetch);
    assert.ok(server);
    try {
      // Two header lines on the wire: the last proxy's entry is the last line's.
      const lines = (first: string, last: string) =>
        rawStatus(
          server.port,
          `GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: ${first}\r\n` +
            `X-Forwarded-For: ${last}\r\nConnection: close\r\n\r\n`,
        );
      assert.equal(await lines("198.51.100.1", "203.0.113.7"), 200);
      assert.equal(await lines("203.0.113.7", "198.51.100.1"), 503);
    } finally {
      await server.stop();
    }
  });
});

describe("X-Forwarded-For entries with a port", () => {
  it("1.2.3.4:5678 and [2001:db8::1]:443 match the address's rules; junk still does not", async () => {
    const mm = await controller();
    const app = new Hono();
    app.use(
      mm.middleware({
        ignoreIps: ["203.0.113.7", "2001:db8::/32"],
        trustedProxies: 1,
      }),
    );
    app.get("/", (c) => c.text("ok"));
    const status = async (xff: string) =>
      (await app.request("/", { headers: { "x-forwarded-for": xff } })).status;
    assert.equal(await status("203.0.113.7:5678"), 200);
    assert.equal(await status("10.0.0.1, 203.0.113.7:443"), 200);
    assert.equal(await status("[2001:db8::1]:443"), 200);
    assert.equal(await status("[2001:db8::1]"), 200);
    assert.equal(await status("203.0.113.8:5678"), 503);
    assert.equal(await status("203.0.113.7:99999999"), 503);
    assert.equal(await status("[203.0.113.7:1]"), 503);
  });
});

describe("clients let through for who they are get private answers", () => {
  it("bypass cookie, exempt IP, ignoreRequest: private, no-store; exempt paths and off keep the app's", async () => {
    const mm = createMaintenance({
      bypass: bypassCookie(),
      store: new MemoryStore(),
    });
    const app = new Hono();
    const cached = (c: { header(k: string, v: string): void }) =>
      c.header("cache-control", "public, max-age=600");
    app.use(
      mm.middleware({
        ignorePaths: ["/healthz"],
        ignoreIps: ["203.0.113.7"],
        trustedProxies: 1,
        ignoreRequest: (c) => c.req.header("x-staff") === "yes",
      }),
    );
    app.get("*", (c) => {
      cached(c);
      return c.text("app");
    });
    const guarded = guard(mm, app.fetch, {
      ignorePaths: ["/healthz"],
      ignoreIps: ["203.0.113.7"],
      trustedProxies: 1,
      ignoreRequest: (req) => req.headers.get("x-staff") === "yes",
    });
    const secret = "a-bypass-secret-of-enough-length";
    await mm.enable({ message: "down", secret });
    const visit = await app.request(`/${secret}`);
    const cookie = (visit.headers.get("set-cookie") ?? "").split(";")[0];
    assert.match(cookie, /^maintenance_bypass=/);
    const cases: [string, Record<string, string>, string][] = [
      ["/", { cookie }, "private, no-store"],
      ["/", { "x-forwarded-for": "203.0.113.7" }, "private, no-store"],
      ["/", { "x-staff": "yes" }, "private, no-store"],
      ["/healthz", {}, "public, max-age=600"],
    ];
    for (const [path, headers, want] of cases) {
      for (
        const [name, fetch] of [
          ["middleware", (r: Request) => app.fetch(r)],
          ["guard", (r: Request) => guarded(r)],
        ] as const
      ) {
        const res = await fetch(new Request(`http://x${path}`, { headers }));
        assert.equal(
          res.status,
          200,
          `${name} ${path} ${JSON.stringify(headers)}`,
        );
        assert.equal(await res.text(), "app");
        assert.equal(
          res.headers.get("cache-control"),
          want,
          `${name} ${path} ${JSON.stringify(headers)}`,
        );
      }
    }
    await mm.disable();
    const off = await app.request("/", { headers: { cookie } });
    assert.equal(off.headers.get("cache-control"), "public, max-age=600");
  });
});

describe("app routes registered before the admin mount", () => {
  it("app.all() there is held back like app.get() (503), middleware is not", async () => {
    const mm = createMaintenance({
      bypass: bypassCookie(),
      store: new MemoryStore(),
    });
    await mm.enable({ message: "down" });
    const app = new Hono();
    app.use(mm.middleware());
    let used = 0;
    app.use("/maintenance-mode/*", async (_c, next) => {
      used++;
      await next();
    });
    app.all("/maintenance-mode", (c) => c.text("legacy"));
    app.route(
      "/maintenance-mode",
      adminRoutes(mm, { authorize: () => true }),
    );
    const legacy = await app.request("/maintenance-mode");
    assert.equal(legacy.status, 503);
    assert.doesNotMatch(await legacy.text(), /legacy/);
    // The admin routes no app route shadows still answer, through the middleware.
    const on = await app.request("/maintenance-mode/on", {
      method: "POST",
      headers: { "sec-fetch-site": "same-origin" },
    });
    assert.equal(on.status, 200, await on.text());
    assert.ok(used > 0);
  });
});
