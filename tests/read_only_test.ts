/**
 * Read-only maintenance (issue 16 item 1): `enable({ readOnly: true })` lets `GET`,
 * `HEAD` and `OPTIONS` through as if maintenance were off (with
 * `c.get("maintenance").readOnly`), and answers every other method with the
 * maintenance response, routed or not; exemptions apply as usual; the guard does the
 * same. Through `app.fetch` on a real Hono app and through a real HTTP server on
 * 127.0.0.1.
 */
import { after, before, describe, it } from "node:test";
import { bypassCookie } from "../src/bypass.ts";
import assert from "node:assert/strict";
import { Hono } from "hono";
import { createMaintenance, type Maintenance } from "../src/maintenance.ts";
import type { EnableOptions } from "../src/_enable.ts";
import {
  forceMaintenance,
  type MaintenanceInfo,
  type MaintenanceVariables,
  type MiddlewareOptions,
} from "../src/middleware.ts";
import { guard } from "../src/guard.ts";
import { MemoryStore } from "../stores/memory.ts";
import { serveFetch, type TestServer } from "./helpers.ts";

type App = Hono<{ Variables: MaintenanceVariables }>;

const READ_ONLY_TEXT =
  "The site is read-only for now: you can browse, but changes are paused.";
const SECRET = "read-only-bypass-secret-0123456789";
const WRITES = ["POST", "PUT", "PATCH", "DELETE"] as const;
const READS = ["GET", "HEAD", "OPTIONS"] as const;

/**
 * A real Hono app over a MemoryStore, switched on with `state` (or left off): the
 * middleware, then `/items` routed for every method (answering `app METHOD path`),
 * `/healthz` and `/ro` for GET only. Every `c.get("maintenance")` a handler saw is kept.
 */
async function setup(
  state: EnableOptions | false,
  options: MiddlewareOptions = {},
  extra?: (app: App) => void,
): Promise<{ app: App; mm: Maintenance; seen: MaintenanceInfo[] }> {
  const mm = createMaintenance({
    bypass: bypassCookie(),
    store: new MemoryStore(),
    cache: { ttlMs: 60_000 },
  });
  if (state !== false) await mm.enable(state);
  const app: App = new Hono();
  const seen: MaintenanceInfo[] = [];
  app.use(mm.middleware(options));
  extra?.(app);
  app.all("/items", (c) => {
    seen.push(c.get("maintenance"));
    return c.text(`app ${c.req.method} ${c.req.path}`);
  });
  app.get("/healthz", (c) => c.text("ok"));
  return { app, mm, seen };
}

function req(
  method: string,
  path: string,
  headers: Record<string, string> = {},
): Request {
  const body = ["GET", "HEAD", "OPTIONS"].includes(method.toUpperCase())
    ? undefined
    : "a=1";
  return new Request(`http://localhost${path}`, { method, headers, body });
}

async function statusOf(
  app: { fetch(req: Request): Response | Promise<Response> },
  method: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<number> {
  const res = await app.fetch(req(method, path, headers));
  await res.body?.cancel();
  return res.status;
}

describe("read-only maintenance: methods (app.fetch)", () => {
  it("GET, HEAD and OPTIONS reach the handler; c.get('maintenance') says enabled and readOnly", async () => {
    const { app, seen } = await setup({ readOnly: true, message: "Migrating" });
    for (const method of READS) {
      const res = await app.fetch(req(method, "/items"));
      assert.equal(res.status, 200, method);
      const text = await res.text();
      if (method !== "HEAD") assert.equal(text, `app ${method} /items`);
    }
    assert.equal(seen.length, 3);
    for (const info of seen) {
      assert.equal(info.enabled, true);
      assert.equal(info.readOnly, true);
      assert.equal(info.scheduled, false);
      assert.equal(info.state.readOnly, true);
      assert.equal(info.state.message, "Migrating");
    }
  });

  it("POST, PUT, PATCH and DELETE get the 503 with Retry-After and no-store; the handler is not run", async () => {
    const { app, seen } = await setup({ readOnly: true, retryAfter: 120 });
    for (const method of WRITES) {
      const res = await app.fetch(req(method, "/items"));
      assert.equal(res.status, 503, method);
      assert.equal(res.headers.get("retry-after"), "120", method);
      assert.equal(res.headers.get("cache-control"), "no-store", method);
      assert.match(res.headers.get("content-type") ?? "", /text\/html/);
      assert.match(await res.text(), /<!doctype html>/i);
    }
    assert.equal(seen.length, 0, "no write reached the handler");
  });

  it("a write gets JSON by Accept with readOnly: true and the message", async () => {
    const { app } = await setup({
      readOnly: true,
      message: "Orders are paused",
    });
    const res = await app.fetch(
      req("POST", "/items", { accept: "application/json" }),
    );
    assert.equal(res.status, 503);
    assert.match(res.headers.get("content-type") ?? "", /application\/json/);
    const body = await res.json();
    assert.equal(body.readOnly, true);
    assert.equal(body.message, "Orders are paused");
    assert.equal(body.error, "maintenance");
  });

  it("full maintenance's JSON has no readOnly", async () => {
    const { app } = await setup({ message: "down" });
    const res = await app.fetch(
      req("POST", "/items", { accept: "application/json" }),
    );
    assert.equal(res.status, 503);
    const body = await res.json();
    assert.equal(body.readOnly, undefined);
    assert.equal(body.message, "down");
  });

  it("the HTML page says the site is read-only; full maintenance's page does not", async () => {
    const { app } = await setup({ readOnly: true, message: "Migrating" });
    const res = await app.fetch(req("DELETE", "/items"));
    const html = await res.text();
    assert.ok(html.includes(READ_ONLY_TEXT), html);
    assert.match(html, /Migrating/);
    const full = await setup({ message: "Migrating" });
    const html2 = await (await full.app.fetch(req("DELETE", "/items"))).text();
    assert.ok(!html2.includes(READ_ONLY_TEXT));
    assert.ok(!/read-only/i.test(html2), "no read-only text when fully down");
  });

  it("page.readOnly replaces the sentence, escaped", async () => {
    const { app } = await setup({ readOnly: true }, {
      page: { readOnly: 'Nur lesen <script>alert("x")</script> & so' },
    });
    const html = await (await app.fetch(req("PUT", "/items"))).text();
    assert.ok(!html.includes(READ_ONLY_TEXT));
    assert.ok(!html.includes("<script>alert"), "escaped");
    assert.ok(
      html.includes(
        "Nur lesen &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; so",
      ) ||
        html.includes(
          "Nur lesen &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; so",
        ),
      html,
    );
  });

  it("a write to a path with no route gets the 503 too; a read of it the app's 404", async () => {
    const { app } = await setup({ readOnly: true });
    assert.equal(await statusOf(app, "POST", "/nowhere"), 503);
    assert.equal(await statusOf(app, "PATCH", "/healthz"), 503);
    assert.equal(await statusOf(app, "GET", "/nowhere"), 404);
  });

  it("a lowercase or unusual method is not a read", async () => {
    const { app } = await setup({ readOnly: true });
    // Request normalizes get/post/..., not other names: PROPFIND is a write here.
    assert.equal(await statusOf(app, "PROPFIND", "/items"), 503);
    assert.equal(await statusOf(app, "get", "/items"), 200);
  });
});

describe("read-only maintenance: state", () => {
  it("off: readOnly false, every method reaches the app", async () => {
    const { app, seen } = await setup(false);
    for (const method of [...READS, ...WRITES]) {
      assert.equal(await statusOf(app, method, "/items"), 200, method);
    }
    for (const info of seen) {
      assert.equal(info.enabled, false);
      assert.equal(info.readOnly, false);
    }
  });

  it("after disable(): writes pass again and readOnly is false", async () => {
    const { app, mm, seen } = await setup({ readOnly: true });
    assert.equal(await statusOf(app, "POST", "/items"), 503);
    await mm.disable();
    assert.equal(await statusOf(app, "POST", "/items"), 200);
    assert.equal(seen.at(-1)!.readOnly, false);
  });

  it("switching from read-only to full maintenance blocks reads too", async () => {
    const { app, mm } = await setup({ readOnly: true });
    assert.equal(await statusOf(app, "GET", "/items"), 200);
    await mm.enable({});
    assert.equal(await statusOf(app, "GET", "/items"), 503);
  });

  it("a scheduled read-only window (startsAt ahead): everything passes, readOnly false", async () => {
    const startsAt = new Date(Date.now() + 3_600_000);
    const { app, seen } = await setup({ readOnly: true, startsAt });
    for (const method of [...READS, ...WRITES]) {
      assert.equal(await statusOf(app, method, "/items"), 200, method);
    }
    for (const info of seen) {
      assert.equal(info.enabled, false);
      assert.equal(info.scheduled, true);
      assert.equal(info.readOnly, false);
    }
  });

  it("a read-only window in force (ending later): writes 503, reads pass", async () => {
    const endsAt = new Date(Date.now() + 3_600_000);
    const { app, seen } = await setup({ readOnly: true, endsAt });
    assert.equal(await statusOf(app, "GET", "/items"), 200);
    assert.equal(seen[0].readOnly, true);
    assert.equal(await statusOf(app, "POST", "/items"), 503);
  });

  it("enabled: true (forced) with a read-only state: reads pass with readOnly, writes 503", async () => {
    const { app, seen } = await setup({ readOnly: true }, { enabled: true });
    assert.equal(await statusOf(app, "GET", "/items"), 200);
    assert.equal(seen[0].enabled, true);
    assert.equal(seen[0].readOnly, true);
    assert.equal(await statusOf(app, "POST", "/items"), 503);
  });

  it("enabled: true (forced) while the store is off: full maintenance, reads 503 too", async () => {
    const { app } = await setup(false, { enabled: true });
    assert.equal(await statusOf(app, "GET", "/items"), 503);
    assert.equal(await statusOf(app, "POST", "/items"), 503);
  });

  it("enabled: false (forced off) with a read-only state: writes pass", async () => {
    const { app, seen } = await setup({ readOnly: true }, { enabled: false });
    assert.equal(await statusOf(app, "POST", "/items"), 200);
    assert.equal(seen[0].readOnly, false);
  });
});

describe("read-only maintenance: response options", () => {
  it("redirectTo: a write gets 303 to the target, a read reaches the app", async () => {
    const { app } = await setup({ readOnly: true }, {
      redirectTo: "/maintenance",
    });
    const post = await app.fetch(req("POST", "/items"));
    await post.body?.cancel();
    assert.equal(post.status, 303);
    assert.equal(post.headers.get("location"), "/maintenance");
    assert.equal(await statusOf(app, "GET", "/items"), 200);
  });

  it("page.readOnly must be a string", () => {
    const mm = createMaintenance({
      bypass: bypassCookie(),
      store: new MemoryStore(),
    });
    assert.throws(
      () => mm.middleware({ page: { readOnly: 5 as unknown as string } }),
      /page\.readOnly must be a string/,
    );
  });

  it("the page is the same for a write with Accept: text/html and a form post", async () => {
    const { app } = await setup({ readOnly: true });
    const a = await app.fetch(req("POST", "/items", { accept: "text/html" }));
    const b = await app.fetch(
      req("POST", "/items", {
        "content-type": "application/x-www-form-urlencoded",
      }),
    );
    const [ta, tb] = [await a.text(), await b.text()];
    assert.equal(ta, tb);
    assert.ok(ta.includes(READ_ONLY_TEXT));
  });
});

describe("read-only maintenance: exemptions", () => {
  it("ignorePaths lets writes to an exempt path through", async () => {
    const { app } = await setup({ readOnly: true }, {
      ignorePaths: ["/items"],
    });
    assert.equal(await statusOf(app, "POST", "/items"), 200);
    assert.equal(await statusOf(app, "POST", "/other"), 503);
  });

  it("forceMaintenance(false) lets writes through; forceMaintenance(true) blocks even a GET", async () => {
    const { app } = await setup({ readOnly: true }, {}, (a) => {
      a.all("/open", forceMaintenance(false), (c) => c.text("open"));
      a.all("/closed", forceMaintenance(true), (c) => c.text("never"));
    });
    assert.equal(await statusOf(app, "POST", "/open"), 200);
    assert.equal(await statusOf(app, "DELETE", "/open"), 200);
    assert.equal(await statusOf(app, "GET", "/closed"), 503);
    assert.equal(await statusOf(app, "HEAD", "/closed"), 503);
    assert.equal(await statusOf(app, "POST", "/closed"), 503);
  });

  it("ignoreRequest is asked for writes only, and lets them through", async () => {
    const asked: string[] = [];
    const { app } = await setup({ readOnly: true }, {
      ignoreRequest: (c) => {
        asked.push(c.req.method);
        return c.req.header("x-staff") === "yes";
      },
    });
    assert.equal(await statusOf(app, "GET", "/items"), 200);
    assert.equal(
      await statusOf(app, "POST", "/items", { "x-staff": "yes" }),
      200,
    );
    assert.equal(await statusOf(app, "POST", "/items"), 503);
    assert.deepEqual(asked, ["POST", "POST"]);
  });

  it("render is called for a blocked write with the state (readOnly true)", async () => {
    const states: unknown[] = [];
    const { app } = await setup({ readOnly: true, message: "m" }, {
      render: (_c, state) => {
        states.push(state);
        return "<p>custom</p>";
      },
    });
    assert.equal(await statusOf(app, "GET", "/items"), 200);
    assert.equal(states.length, 0);
    const res = await app.fetch(req("POST", "/items"));
    assert.equal(res.status, 503);
    assert.equal(await res.text(), "<p>custom</p>");
    assert.equal((states[0] as { readOnly: boolean }).readOnly, true);
  });
});

describe("read-only maintenance over HTTP (real server on 127.0.0.1)", () => {
  let mm: Maintenance;
  let server: TestServer;
  let proxied: TestServer;
  let seen: MaintenanceInfo[];

  before(async () => {
    const s = await setup({
      readOnly: true,
      message: "Migrating",
      secret: SECRET,
    });
    mm = s.mm;
    seen = s.seen;
    server = await serveFetch(s.app.fetch);
    const p = await setup({ readOnly: true }, {
      ignoreIps: ["203.0.113.7"],
      trustedProxies: 1,
    });
    proxied = await serveFetch(p.app.fetch);
  });
  after(async () => {
    await server?.stop();
    await proxied?.stop();
  });

  async function call(
    base: string,
    method: string,
    path: string,
    headers: Record<string, string> = {},
  ): Promise<Response> {
    const body = ["GET", "HEAD", "OPTIONS"].includes(method)
      ? undefined
      : "a=1";
    return await fetch(`${base}${path}`, {
      method,
      headers,
      body,
      redirect: "manual",
    });
  }

  it("reads 200 with readOnly in c.get('maintenance'); writes 503 with Retry-After", async () => {
    for (const method of READS) {
      const res = await call(server.url, method, "/items");
      await res.body?.cancel();
      assert.equal(res.status, 200, method);
    }
    assert.equal(seen.at(-1)!.readOnly, true);
    for (const method of WRITES) {
      const res = await call(server.url, method, "/items", {
        accept: "application/json",
      });
      assert.equal(res.status, 503, method);
      assert.ok(res.headers.get("retry-after"), method);
      assert.equal(res.headers.get("cache-control"), "no-store");
      const body = await res.json();
      assert.equal(body.readOnly, true);
      assert.equal(body.message, "Migrating");
    }
    assert.equal(await mm.isEnabled(), true);
  });

  it("the bypass cookie lets writes through", async () => {
    const visit = await call(server.url, "GET", `/${SECRET}`);
    await visit.body?.cancel();
    assert.equal(visit.status, 302);
    const cookie = visit.headers.get("set-cookie")!.split(";")[0];
    const res = await call(server.url, "POST", "/items", { cookie });
    assert.equal(res.status, 200);
    assert.equal(await res.text(), "app POST /items");
    const without = await call(server.url, "POST", "/items");
    await without.body?.cancel();
    assert.equal(without.status, 503);
  });

  it("ignoreIps with trustedProxies lets an exempt client's writes through", async () => {
    const ok = await call(proxied.url, "POST", "/items", {
      "x-forwarded-for": "203.0.113.7",
    });
    assert.equal(ok.status, 200);
    assert.equal(await ok.text(), "app POST /items");
    const other = await call(proxied.url, "POST", "/items", {
      "x-forwarded-for": "198.51.100.1",
    });
    await other.body?.cancel();
    assert.equal(other.status, 503);
    const read = await call(proxied.url, "GET", "/items", {
      "x-forwarded-for": "198.51.100.1",
    });
    await read.body?.cancel();
    assert.equal(read.status, 200);
  });
});

describe("read-only maintenance: the guard", () => {
  async function guarded(state: EnableOptions | false, options = {}) {
    const mm = createMaintenance({
      bypass: bypassCookie(),
      store: new MemoryStore(),
      cache: { ttlMs: 60_000 },
    });
    if (state !== false) await mm.enable(state);
    const app = new Hono();
    let calls = 0;
    app.all("*", (c) => {
      calls++;
      return c.text(`app ${c.req.method} ${c.req.path}`);
    });
    return {
      fetch: guard(mm, app.fetch, options),
      calls: () => calls,
      mm,
    };
  }

  it("GET, HEAD, OPTIONS pass; POST, PUT, PATCH, DELETE get the 503 (JSON says readOnly)", async () => {
    const g = await guarded({ readOnly: true, message: "Migrating" });
    for (const method of READS) {
      assert.equal(await statusOf(g, method, "/x"), 200, method);
    }
    assert.equal(g.calls(), 3);
    for (const method of WRITES) {
      const res = await g.fetch(
        req(method, "/x", { accept: "application/json" }),
      );
      assert.equal(res.status, 503, method);
      assert.ok(res.headers.get("retry-after"));
      assert.equal(res.headers.get("cache-control"), "no-store");
      const body = await res.json();
      assert.equal(body.readOnly, true);
      assert.equal(body.message, "Migrating");
    }
    assert.equal(g.calls(), 3, "no write reached the app");
  });

  it("ignorePaths exempts writes under the guard; off lets everything through", async () => {
    const g = await guarded({ readOnly: true }, { ignorePaths: ["/api"] });
    assert.equal(await statusOf(g, "POST", "/api/x"), 200);
    assert.equal(await statusOf(g, "POST", "/x"), 503);
    await g.mm.disable();
    assert.equal(await statusOf(g, "POST", "/x"), 200);
  });

  it("over HTTP: the guarded server answers a GET and refuses a POST", async () => {
    const g = await guarded({ readOnly: true });
    const server = await serveFetch(g.fetch);
    try {
      const get = await fetch(`${server.url}/x`);
      assert.equal(get.status, 200);
      assert.equal(await get.text(), "app GET /x");
      const post = await fetch(`${server.url}/x`, {
        method: "POST",
        body: "a=1",
      });
      await post.body?.cancel();
      assert.equal(post.status, 503);
    } finally {
      await server.stop();
    }
  });
});
