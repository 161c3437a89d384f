import { guard } from "../src/guard.ts";
import { bypassCookie } from "../src/bypass.ts";
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { connect } from "node:net";
import { writeFile } from "node:fs/promises";
import { Hono } from "hono";
import { createMaintenance, maintenance } from "../src/maintenance.ts";
import type { EnableOptions } from "../src/_enable.ts";
import {
  forceMaintenance,
  type MaintenanceInfo,
  type MaintenanceVariables,
  type MiddlewareOptions,
} from "../src/middleware.ts";
import { isTestRun } from "../src/_test_env.ts";
import { MemoryStore } from "../stores/memory.ts";
import {
  cleanEnv,
  makeTempDir,
  removeDir,
  ROOT,
  runProcess,
  RUNTIMES,
  scriptCommand,
  serveFetch,
  type TestServer,
} from "./helpers.ts";

type App = Hono<{ Variables: MaintenanceVariables }>;

/**
 * A real Hono app: `/healthz` registered before the middleware, then the middleware,
 * then a catch-all route that answers 200 with the path it saw. The state lives in a
 * MemoryStore switched on (with `state`) or left off (`state: false`).
 */
async function setup(
  options: MiddlewareOptions = {},
  state: EnableOptions | false = {},
): Promise<{ app: App; mm: ReturnType<typeof createMaintenance> }> {
  const mm = createMaintenance({
    store: new MemoryStore(),
    cache: { ttlMs: 60_000 },
  });
  if (state !== false) await mm.enable(state);
  const app: App = new Hono();
  app.get("/healthz", (c) => c.text("ok"));
  app.use(mm.middleware(options));
  app.all("*", (c) => c.text(`app ${c.req.path}`));
  return { app, mm };
}

async function statusOf(
  app: { fetch(req: Request): Response | Promise<Response> },
  path: string,
  init?: RequestInit,
): Promise<number> {
  const res = await app.fetch(new Request(`http://localhost${path}`, init));
  await res.body?.cancel();
  return res.status;
}

describe("middleware option enabled", () => {
  it("undefined follows the store", async () => {
    const { app, mm } = await setup({}, false);
    assert.equal(await statusOf(app, "/"), 200);
    await mm.enable();
    assert.equal(await statusOf(app, "/"), 503);
    await mm.disable();
    assert.equal(await statusOf(app, "/"), 200);
  });
  it("true forces maintenance on while the store says off", async () => {
    const { app } = await setup({ enabled: true }, false);
    assert.equal(await statusOf(app, "/"), 503);
  });
  it("false forces it off while the store says on", async () => {
    const { app } = await setup({ enabled: false }, {});
    assert.equal(await statusOf(app, "/"), 200);
  });
});

describe("routes registered before the middleware", () => {
  it("stay reachable while maintenance is on; later routes do not", async () => {
    const { app } = await setup();
    const res = await app.fetch(new Request("http://localhost/healthz"));
    assert.equal(res.status, 200);
    assert.equal(await res.text(), "ok");
    assert.equal(await statusOf(app, "/other"), 503);
  });
});

describe("middleware option ignorePaths", () => {
  const ignorePaths = ["/status", /^\/static\/.*\.css$/];

  it("a string exempts that path and below; a RegExp what it matches", async () => {
    const { app } = await setup({ ignorePaths });
    for (const p of ["/status", "/status/", "/status/db", "/static/site.css"]) {
      const res = await app.fetch(new Request(`http://localhost${p}`));
      assert.equal(res.status, 200, p);
      assert.equal(await res.text(), `app ${p}`);
    }
    for (const p of ["/", "/statusx", "/static/site.js", "/x/status"]) {
      assert.equal(await statusOf(app, p), 503, p);
    }
  });

  it("percent-encoded and unicode spellings of an exempt path are exempt", async () => {
    const { app } = await setup({ ignorePaths: ["/café"] });
    assert.equal(await statusOf(app, "/caf%C3%A9/menu"), 200);
    assert.equal(await statusOf(app, "/café"), 200);
    assert.equal(await statusOf(app, "/cafe"), 503);
  });

  it("non-canonical spellings and other case are never exempt", async () => {
    const { app } = await setup({ ignorePaths });
    for (
      const p of [
        "/status/../x", // the URL parser makes this /x
        "/status/%2e%2e/x", // and this
        "//status",
        "//status/db",
        "/status//db",
        "/status%2f..%2fx",
        "/status/..%2fx",
        "/STATUS",
        "/Status/db",
        "/static/../static/site.css/..%2f..%2fadmin",
      ]
    ) {
      assert.equal(await statusOf(app, p), 503, p);
    }
  });

  describe("over a real loopback server, raw request targets", () => {
    let server: TestServer;
    before(async () => {
      const { app } = await setup({ ignorePaths });
      server = await serveFetch(app.fetch);
    });
    after(() => server?.stop());

    /** Sends a request line byte for byte (no client-side normalization). */
    function rawStatus(target: string): Promise<number> {
      const { port, hostname } = new URL(server.url);
      return new Promise((resolve, reject) => {
        const socket = connect(Number(port), hostname);
        let data = "";
        socket.setEncoding("utf8");
        socket.setTimeout(10_000, () => {
          socket.destroy();
          reject(new Error(`no answer for ${target}`));
        });
        socket.on("error", reject);
        socket.on("data", (d: string) => {
          data += d;
          const m = data.match(/^HTTP\/1\.[01] (\d{3})/);
          if (m) {
            socket.destroy();
            resolve(Number(m[1]));
          }
        });
        socket.on("end", () => reject(new Error(`closed: ${data}`)));
        socket.write(
          `GET ${target} HTTP/1.1\r\nHost: ${hostname}\r\nConnection: close\r\n\r\n`,
        );
      });
    }

    it("exempt targets pass; traversal and doubled slashes do not", async () => {
      assert.equal(await rawStatus("/status/db"), 200);
      for (
        const t of [
          "/status/../admin",
          "/status/%2e%2e/admin",
          "/status/%2E%2E/admin",
          "//status",
          "/status%2f..%2fadmin",
          "/STATUS",
        ]
      ) {
        const s = await rawStatus(t);
        assert.notEqual(s, 200, `${t} answered ${s}`);
      }
    });
  });
});

describe("middleware option ignoreIps with getClientIp(c)", () => {
  const fromHeader = (c: { req: { header(n: string): string | undefined } }) =>
    c.req.header("x-test-client");
  const call = (app: App, ip: string) =>
    statusOf(app, "/", { headers: { "x-test-client": ip } });

  it("v4 and v6 addresses, in any spelling", async () => {
    const { app } = await setup({
      ignoreIps: ["192.0.2.7", "2001:db8::7"],
      getClientIp: fromHeader,
    });
    assert.equal(await call(app, "192.0.2.7"), 200);
    assert.equal(await call(app, "192.0.2.8"), 503);
    assert.equal(await call(app, "2001:db8::7"), 200);
    assert.equal(await call(app, "2001:0db8:0:0:0:0:0:7"), 200);
    assert.equal(await call(app, "2001:db8::8"), 503);
  });
  it("v4 and v6 CIDR ranges", async () => {
    const { app } = await setup({
      ignoreIps: ["10.0.0.0/8", "2001:db8:1::/48"],
      getClientIp: fromHeader,
    });
    assert.equal(await call(app, "10.20.30.40"), 200);
    assert.equal(await call(app, "11.0.0.1"), 503);
    assert.equal(await call(app, "2001:db8:1:ffff::1"), 200);
    assert.equal(await call(app, "2001:db8:2::1"), 503);
  });
  it("an IPv4-mapped v6 client against v4 rules", async () => {
    const { app } = await setup({
      ignoreIps: ["10.0.0.1", "172.16.0.0/12"],
      getClientIp: fromHeader,
    });
    assert.equal(await call(app, "::ffff:10.0.0.1"), 200);
    assert.equal(await call(app, "::ffff:172.31.0.9"), 200);
    assert.equal(await call(app, "::ffff:10.0.0.2"), 503);
  });
  it("RegExp rules", async () => {
    const { app } = await setup({
      ignoreIps: [/^192\.168\./],
      getClientIp: fromHeader,
    });
    assert.equal(await call(app, "192.168.9.9"), 200);
    assert.equal(await call(app, "::ffff:192.168.9.9"), 200);
    assert.equal(await call(app, "192.169.0.1"), 503);
  });
  it("an unknown client address is not exempt", async () => {
    const { app } = await setup({
      ignoreIps: ["0.0.0.0/0", "::/0"],
      getClientIp: () => undefined,
    });
    assert.equal(await statusOf(app, "/"), 503);
  });
  it("without a server (app.fetch alone) the default client IP is unknown", async () => {
    const { app } = await setup({ ignoreIps: ["0.0.0.0/0", "::/0"] });
    assert.equal(await statusOf(app, "/"), 503);
  });
});

describe(`default client IP on a real loopback server (${"Bun" in globalThis ? "Bun.serve" : "Deno.serve"})`, () => {
  const servers: TestServer[] = [];
  async function serve(options: MiddlewareOptions): Promise<string> {
    const { app } = await setup(options);
    const s = await serveFetch(app.fetch);
    servers.push(s);
    return s.url;
  }
  after(async () => {
    for (const s of servers) await s.stop();
  });
  async function get(
    url: string,
    headers: Record<string, string> = {},
  ): Promise<number> {
    const res = await fetch(url, { headers });
    await res.body?.cancel();
    return res.status;
  }

  it("the peer address 127.0.0.1 is matched by v4, CIDR and mapped-v6 rules", async () => {
    assert.equal(await get(await serve({ ignoreIps: ["127.0.0.1"] })), 200);
    assert.equal(await get(await serve({ ignoreIps: ["127.0.0.0/8"] })), 200);
    assert.equal(
      await get(await serve({ ignoreIps: ["::ffff:127.0.0.1"] })),
      200,
    );
    assert.equal(await get(await serve({ ignoreIps: ["10.0.0.0/8"] })), 503);
  });
  it("X-Forwarded-For is ignored by default", async () => {
    const url = await serve({ ignoreIps: ["203.0.113.7"] });
    assert.equal(await get(url, { "x-forwarded-for": "203.0.113.7" }), 503);
  });
  it("X-Forwarded-For is honoured with trustedProxies: 1", async () => {
    const url = await serve({ ignoreIps: ["203.0.113.7"], trustedProxies: 1 });
    assert.equal(await get(url, { "x-forwarded-for": "203.0.113.7" }), 200);
    // The rightmost hop is the one the trusted proxy added; what the client wrote
    // to the left of it counts for nothing.
    assert.equal(
      await get(url, { "x-forwarded-for": "203.0.113.7, 198.51.100.1" }),
      503,
    );
    // No header: no client IP (the peer is a proxy), so nothing is exempt.
    assert.equal(await get(url), 503);
  });
  it("with trustedProxies, a header too short or with an empty hop is no client IP, never the peer", async () => {
    // The peer 127.0.0.1 stands for the trusted proxy, and its range is exempt.
    const one = await serve({ ignoreIps: ["127.0.0.0/8"], trustedProxies: 1 });
    assert.equal(await get(one), 503);
    assert.equal(await get(one, { "x-forwarded-for": "10.0.0.7," }), 503);
    assert.equal(await get(one, { "x-forwarded-for": "not-an-ip" }), 503);
    assert.equal(await get(one, { "x-forwarded-for": "127.0.0.9" }), 200);
    const two = await serve({ ignoreIps: ["127.0.0.0/8"], trustedProxies: 2 });
    assert.equal(await get(two, { "x-forwarded-for": "198.51.100.1" }), 503);
    assert.equal(
      await get(two, { "x-forwarded-for": "127.0.0.9, 198.51.100.1" }),
      200,
    );
  });
});

describe("middleware option ignoreRequest", () => {
  it("lets a request through when it returns true (sync)", async () => {
    const { app } = await setup({
      ignoreRequest: (c) => c.req.header("x-staff") === "yes",
    });
    assert.equal(
      await statusOf(app, "/", { headers: { "x-staff": "yes" } }),
      200,
    );
    assert.equal(
      await statusOf(app, "/", { headers: { "x-staff": "no" } }),
      503,
    );
  });
  it("awaits a promise (async)", async () => {
    const { app } = await setup({
      ignoreRequest: async (c) => {
        await new Promise((r) => setTimeout(r, 5));
        return c.req.header("x-staff") === "yes";
      },
    });
    assert.equal(
      await statusOf(app, "/", { headers: { "x-staff": "yes" } }),
      200,
    );
    assert.equal(await statusOf(app, "/"), 503);
  });
  it("is not asked when maintenance is off or the path is exempt", async () => {
    let calls = 0;
    const { app, mm } = await setup({
      ignorePaths: ["/status"],
      ignoreRequest: () => {
        calls++;
        return false;
      },
    }, false);
    assert.equal(await statusOf(app, "/"), 200);
    await mm.enable();
    assert.equal(await statusOf(app, "/status"), 200);
    assert.equal(calls, 0);
    assert.equal(await statusOf(app, "/"), 503);
    assert.equal(calls, 1);
  });
});

describe("middleware option ignoreTests", () => {
  it(`this run is a test run (${"Bun" in globalThis ? "bun test" : "deno test"})`, () => {
    assert.equal(isTestRun(), true);
  });
  it("true lets every request through under the test runner", async () => {
    const { app } = await setup({ ignoreTests: true });
    assert.equal(await statusOf(app, "/"), 200);
  });
  it("false (and by default) still blocks", async () => {
    assert.equal(
      await statusOf((await setup({ ignoreTests: false })).app, "/"),
      503,
    );
    assert.equal(await statusOf((await setup({})).app, "/"), 503);
  });
  for (const runtime of RUNTIMES) {
    it(`isTestRun() is false in a plain ${runtime} program`, async () => {
      const dir = await makeTempDir();
      try {
        const script = `${dir}/probe.ts`;
        await writeFile(
          script,
          `import { isTestRun } from "${ROOT}/src/_test_env.ts";\nconsole.log(JSON.stringify(isTestRun()));\n`,
        );
        const [cmd, args] = scriptCommand(runtime, script);
        const r = await runProcess(cmd, args, { env: cleanEnv() });
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout.trim(), "false");
      } finally {
        await removeDir(dir);
      }
    });
  }
});

describe("middleware options status, retryAfter, render", () => {
  it("status and retryAfter shape the response", async () => {
    const { app } = await setup({ status: 500, retryAfter: 42 });
    const res = await app.fetch(new Request("http://localhost/"));
    await res.body?.cancel();
    assert.equal(res.status, 500);
    assert.equal(res.headers.get("retry-after"), "42");
  });
  it("render returning a string: our status and headers around your HTML", async () => {
    let seen: unknown;
    const { app } = await setup({
      render: (_c, state) => {
        seen = state;
        return `<h1>Custom: ${state.message}</h1>`;
      },
    }, { message: "Back soon" });
    const res = await app.fetch(new Request("http://localhost/"));
    assert.equal(res.status, 503);
    assert.equal(await res.text(), "<h1>Custom: Back soon</h1>");
    assert.match(res.headers.get("content-type") ?? "", /^text\/html/);
    assert.equal(res.headers.get("cache-control"), "no-store");
    assert.equal(res.headers.get("retry-after"), "300");
    assert.equal((seen as { message: string }).message, "Back soon");
  });
  it("render returning a non-2xx Response (async): its status and headers win, ours are added", async () => {
    const { app } = await setup({
      render: async (c, state) => {
        await Promise.resolve();
        return c.json({ down: true, message: state.message }, 503, {
          "retry-after": "5",
          "x-custom": "1",
        });
      },
    }, { message: "m" });
    const res = await app.fetch(new Request("http://localhost/"));
    assert.equal(res.status, 503);
    assert.deepEqual(await res.json(), { down: true, message: "m" });
    assert.equal(res.headers.get("retry-after"), "5");
    assert.equal(res.headers.get("x-custom"), "1");
    assert.equal(res.headers.get("cache-control"), "no-store");
  });
  it("render returning a 2xx Response (c.html): our status, no-store and Retry-After", async () => {
    const { app } = await setup({
      render: (c) =>
        c.html("<h1>Back soon</h1>", 200, {
          "cache-control": "public, max-age=3600",
          "x-custom": "1",
        }),
    });
    const res = await app.fetch(new Request("http://localhost/"));
    assert.equal(res.status, 503);
    assert.equal(await res.text(), "<h1>Back soon</h1>");
    assert.match(res.headers.get("content-type") ?? "", /^text\/html/);
    assert.equal(res.headers.get("cache-control"), "no-store");
    assert.equal(res.headers.get("retry-after"), "300");
    assert.equal(res.headers.get("x-custom"), "1");
    const other = await setup({
      status: 502,
      render: (c) => c.json({ down: true }, 201),
    });
    const res2 = await other.app.fetch(new Request("http://localhost/"));
    assert.equal(res2.status, 502);
    assert.deepEqual(await res2.json(), { down: true });
  });
  it("render returning a 500 or a redirect keeps that status, with no-store", async () => {
    const { app } = await setup({
      render: (c) => c.text("broken", 500, { "cache-control": "max-age=60" }),
    });
    const res = await app.fetch(new Request("http://localhost/"));
    assert.equal(res.status, 500);
    assert.equal(await res.text(), "broken");
    assert.equal(res.headers.get("cache-control"), "no-store");
    const moved = await setup({
      render: (c) => c.redirect("https://status.example.com/", 302),
    });
    const res2 = await moved.app.fetch(new Request("http://localhost/"));
    await res2.body?.cancel();
    assert.equal(res2.status, 302);
    assert.equal(
      res2.headers.get("location"),
      "https://status.example.com/",
    );
    assert.equal(res2.headers.get("cache-control"), "no-store");
  });
  it("render is not called for requests that pass", async () => {
    let calls = 0;
    const { app } = await setup({
      ignorePaths: ["/status"],
      render: () => {
        calls++;
        return "down";
      },
    });
    assert.equal(await statusOf(app, "/status"), 200);
    assert.equal(calls, 0);
  });
});

describe("middleware option redirectTo", () => {
  it("answers GET and HEAD with 302, Location, no-store and Retry-After", async () => {
    const { app } = await setup({ redirectTo: "/down" });
    for (const method of ["GET", "HEAD"]) {
      const res = await app.fetch(
        new Request("http://localhost/page", { method }),
      );
      assert.equal(res.status, 302, method);
      assert.equal(res.headers.get("location"), "/down");
      assert.equal(res.headers.get("cache-control"), "no-store");
      assert.equal(res.headers.get("retry-after"), "300");
    }
  });
  it("answers POST and other methods with 303: a form is not re-posted to the target", async () => {
    const { app } = await setup({ redirectTo: "https://status.example.com/" });
    for (const method of ["POST", "PUT", "PATCH", "DELETE"]) {
      const res = await app.fetch(
        new Request("http://localhost/login", {
          method,
          headers: { "content-type": "application/x-www-form-urlencoded" },
          body: "user=ada&password=secret",
        }),
      );
      assert.equal(res.status, 303, method);
      assert.equal(res.headers.get("location"), "https://status.example.com/");
      assert.equal(res.headers.get("cache-control"), "no-store");
    }
  });
  it("never redirects its own target (query, encoding and dot segments aside)", async () => {
    for (
      const [target, path] of [
        ["/down", "/down"],
        ["/down?from=mm#top", "/down"],
        ["/under%20way", "/under%20way"],
        ["/a/../down", "/down"],
      ]
    ) {
      const { app } = await setup({ redirectTo: target });
      const res = await app.fetch(new Request(`http://localhost${path}`));
      assert.equal(res.status, 200, `${target} on ${path}`);
      await res.body?.cancel();
      assert.equal(await statusOf(app, "/elsewhere"), 302, target);
    }
  });
  it("an absolute URL to this very site does not loop either", async () => {
    const { app } = await setup({ redirectTo: "http://localhost/down" });
    const res = await app.fetch(new Request("http://localhost/page"));
    assert.equal(res.status, 302);
    assert.equal(res.headers.get("location"), "http://localhost/down");
    // The target itself: the maintenance page, not a redirect to itself.
    const self = await app.fetch(new Request("http://localhost/down"));
    await self.body?.cancel();
    assert.equal(self.status, 503);
    // Same path on another host is still redirected.
    assert.equal(
      (await app.fetch(new Request("http://other.example/down"))).status,
      302,
    );
  });
  it("an https target seen as http (and another port) behind a TLS proxy does not loop", async () => {
    const { app } = await setup({
      redirectTo: "https://example.com/maintenance",
    });
    for (
      const url of [
        "http://example.com/maintenance",
        "http://example.com:8000/maintenance",
        "https://example.com/maintenance",
        "http://EXAMPLE.com/maintenance?from=x",
      ]
    ) {
      // The maintenance page itself, not a redirect to itself.
      const res = await app.fetch(new Request(url));
      await res.body?.cancel();
      assert.equal(res.status, 503, url);
      assert.equal(res.headers.get("location"), null, url);
    }
    for (
      const url of [
        "http://example.com/",
        "http://example.com/maintenance/x",
        "http://www.example.com/maintenance",
      ]
    ) {
      const res = await app.fetch(new Request(url));
      assert.equal(res.status, 302, url);
      assert.equal(
        res.headers.get("location"),
        "https://example.com/maintenance",
      );
    }
  });
  it("absolute http(s) URLs elsewhere are allowed", async () => {
    const { app } = await setup({ redirectTo: "https://status.example.com/" });
    const res = await app.fetch(new Request("http://localhost/"));
    assert.equal(res.status, 302);
    assert.equal(res.headers.get("location"), "https://status.example.com/");
  });
  it("rejects unsafe targets when the middleware is built", () => {
    const mm = createMaintenance({
      store: new MemoryStore(),
    });
    for (
      const bad of [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "data:text/html,<b>x</b>",
        "//evil.example/",
        "/\\evil.example/",
        "/down\r\nSet-Cookie: a=b",
        "/down\nx",
        "down",
        "ftp://files.example/",
      ]
    ) {
      assert.throws(
        () => mm.middleware({ redirectTo: bad }),
        (e: Error) => e instanceof TypeError && /redirectTo/.test(e.message),
        JSON.stringify(bad),
      );
    }
  });
});

describe("forceMaintenance per route", () => {
  async function forcedApp(state: EnableOptions | false, enabled?: boolean) {
    const mm = createMaintenance({
      store: new MemoryStore(),
    });
    if (state !== false) await mm.enable(state);
    const app: App = new Hono();
    app.use(mm.middleware({
      enabled,
      ignoreRequest: () => true, // must not rescue a forceMaintenance(true) route
      ignorePaths: ["/old"],
    }));
    app.get("/open", forceMaintenance(false), (c) => c.text("open"));
    app.get("/old", forceMaintenance(true), (c) => c.text("never"));
    app.get("/", (c) => c.text("home"));
    return app;
  }
  it("false after per-route middleware of your own still exempts the route", async () => {
    const mm = createMaintenance({
      store: new MemoryStore(),
    });
    await mm.enable();
    const app: App = new Hono();
    app.use(mm.middleware());
    app.get(
      "/open",
      async (c, next) => {
        c.header("x-seen", "1");
        await next();
      },
      forceMaintenance(false),
      (c) => c.text("open"),
    );
    const res = await app.fetch(new Request("http://localhost/open"));
    assert.equal(res.status, 200);
    assert.equal(await res.text(), "open");
  });
  it("true answers with the maintenance response even when off", async () => {
    const app = await forcedApp(false);
    const res = await app.fetch(new Request("http://localhost/old"));
    assert.equal(res.status, 503);
    assert.match(await res.text(), /<!doctype html>/i);
    assert.equal(await statusOf(app, "/"), 200);
  });
  it("true wins over ignoreRequest and ignorePaths while on", async () => {
    const app = await forcedApp({});
    assert.equal(await statusOf(app, "/old"), 503);
    assert.equal(await statusOf(app, "/"), 200); // ignoreRequest lets it through
  });
  it("false keeps a route reachable while on, even with enabled: true", async () => {
    const app = await forcedApp({}, true);
    const res = await app.fetch(new Request("http://localhost/open"));
    assert.equal(res.status, 200);
    assert.equal(await res.text(), "open");
  });
  it("true without the middleware in front answers the default maintenance page", async () => {
    const app = new Hono();
    let handled = false;
    app.onError((_e, c) => c.text("error", 500));
    app.get("/old", forceMaintenance(true), (c) => {
      handled = true;
      return c.text("never");
    });
    app.get("/open", forceMaintenance(false), (c) => c.text("open"));
    const res = await app.request("/old");
    assert.equal(res.status, 503);
    assert.equal(res.headers.get("cache-control"), "no-store");
    assert.ok(res.headers.get("retry-after"));
    assert.match(res.headers.get("content-type") ?? "", /text\/html/);
    assert.match(await res.text(), /maintenance/i);
    const json = await app.request("/old", {
      headers: { accept: "application/json" },
    });
    assert.equal(json.status, 503);
    assert.match(json.headers.get("content-type") ?? "", /json/);
    await json.body?.cancel();
    assert.equal(handled, false);
    assert.equal(await statusOf(app, "/open"), 200);
  });
  it("takes a boolean only", () => {
    assert.throws(
      () => forceMaintenance("yes" as unknown as boolean),
      TypeError,
    );
  });
});

describe('c.get("maintenance") on every request', () => {
  async function infoApp(
    options: MiddlewareOptions,
    state: EnableOptions | false,
  ) {
    const { mm } = await setup({}, false);
    if (state !== false) await mm.enable(state);
    const app: App = new Hono();
    const seen: MaintenanceInfo[] = [];
    app.use(mm.middleware(options));
    app.get("*", (c) => {
      seen.push(c.get("maintenance"));
      return c.text("ok");
    });
    return { app, seen };
  }

  it("off: not enabled, not scheduled, the state", async () => {
    const { app, seen } = await infoApp({}, false);
    for (let i = 0; i < 3; i++) assert.equal(await statusOf(app, "/"), 200);
    assert.equal(seen.length, 3);
    for (const info of seen) {
      assert.equal(info.enabled, false);
      assert.equal(info.scheduled, false);
      assert.equal(info.state.enabled, false);
    }
  });
  it("on, on an exempt path: enabled, with the message", async () => {
    const { app, seen } = await infoApp({ ignorePaths: ["/status"] }, {
      message: "Back at 14:00",
    });
    assert.equal(await statusOf(app, "/status"), 200);
    assert.equal(seen[0].enabled, true);
    assert.equal(seen[0].scheduled, false);
    assert.equal(seen[0].state.message, "Back at 14:00");
  });
  it("a window that has not started: scheduled, not enabled", async () => {
    const startsAt = new Date(Date.now() + 3_600_000).toISOString();
    const { app, seen } = await infoApp({}, { startsAt });
    assert.equal(await statusOf(app, "/"), 200);
    assert.equal(seen[0].enabled, false);
    assert.equal(seen[0].scheduled, true);
    assert.equal(seen[0].state.startsAt, startsAt);
  });
  it("enabled: true forces enabled in the info too", async () => {
    const { app, seen } = await infoApp({
      enabled: true,
      ignorePaths: ["/status"],
    }, false);
    assert.equal(await statusOf(app, "/status"), 200);
    assert.equal(seen[0].enabled, true);
  });
});

describe("option validation", () => {
  const mm = createMaintenance({
    store: new MemoryStore(),
  });
  const cases: [
    string,
    unknown,
    typeof TypeError | typeof RangeError,
    RegExp,
  ][] = [
    [
      "unknown option",
      { ignorePath: ["/x"] },
      TypeError,
      /unknown maintenance option "ignorePath"/,
    ],
    ["options not an object", "yes", TypeError, /must be an object/],
    [
      "enabled",
      { enabled: "yes" },
      TypeError,
      /enabled must be true or false \(or left out/,
    ],
    [
      "ignorePaths not an array",
      { ignorePaths: "/x" },
      TypeError,
      /ignorePaths must be an array/,
    ],
    [
      "ignorePaths null",
      { ignorePaths: null },
      TypeError,
      /ignorePaths must be an array/,
    ],
    [
      "ignorePaths relative",
      { ignorePaths: ["x"] },
      TypeError,
      /ignorePaths: "x" is not a path/,
    ],
    [
      "ignoreIps bad address",
      { ignoreIps: ["10.0.0.300"] },
      TypeError,
      /ignoreIps: "10\.0\.0\.300"/,
    ],
    [
      "ignoreIps bad prefix",
      { ignoreIps: ["10.0.0.0/40"] },
      RangeError,
      /prefix length/,
    ],
    [
      "getClientIp",
      { getClientIp: "x-forwarded-for" },
      TypeError,
      /getClientIp must be a function/,
    ],
    [
      "ignoreRequest",
      { ignoreRequest: true },
      TypeError,
      /ignoreRequest must be a function/,
    ],
    [
      "render",
      { render: "<h1>down</h1>" },
      TypeError,
      /render must be a function/,
    ],
    [
      "trustedProxies negative",
      { trustedProxies: -1 },
      RangeError,
      /trustedProxies/,
    ],
    [
      "trustedProxies fraction",
      { trustedProxies: 1.5 },
      RangeError,
      /trustedProxies/,
    ],
    ["status", { status: 99 }, RangeError, /status must be an HTTP status/],
    [
      "status as a string",
      { status: "503" as unknown as number },
      RangeError,
      /\(got the string "503"\)/,
    ],
    [
      "retryAfter as a string",
      { retryAfter: "60" as unknown as number },
      RangeError,
      /retryAfter must be a whole number of seconds .*\(got the string "60"\)/,
    ],
    [
      "page with a mistyped key",
      { page: { titel: "x" } as never },
      TypeError,
      /unknown page option "titel" \(known: title, defaultMessage, lang, badge/,
    ],
    [
      "retryAfter",
      { retryAfter: -5 },
      RangeError,
      /retryAfter must be a whole number/,
    ],
    [
      "redirectTo",
      { redirectTo: "javascript:alert(1)" },
      TypeError,
      /redirectTo/,
    ],
    [
      "page not an object",
      { page: "Down" },
      TypeError,
      /page options must be an object/,
    ],
    [
      "page.title",
      { page: { title: 5 } },
      TypeError,
      /page\.title must be a string/,
    ],
  ];
  for (const [name, options, type, message] of cases) {
    it(`${name} → ${type.name}`, () => {
      assert.throws(
        () => mm.middleware(options as MiddlewareOptions),
        (e: Error) => {
          assert.ok(e instanceof type, `${e.name}: ${e.message}`);
          assert.match(e.message, message);
          return true;
        },
      );
    });
  }
  it("createMaintenance: unknown option points to mm.middleware", () => {
    assert.throws(
      () =>
        createMaintenance(
          { ignorePaths: ["/x"] } as never,
        ),
      (e: Error) =>
        e instanceof TypeError &&
        /unknown createMaintenance option "ignorePaths"/.test(e.message) &&
        /mm\.middleware/.test(e.message),
    );
  });
  it("maintenance({ bypass: bypassCookie() }): controller and middleware options in one object", async () => {
    const store = new MemoryStore("1");
    const app: App = new Hono();
    app.use(
      maintenance({ bypass: bypassCookie(), store, ignorePaths: ["/healthz"] }),
    );
    app.get("*", (c) => c.text("ok"));
    assert.equal(await statusOf(app, "/healthz"), 200);
    assert.equal(await statusOf(app, "/"), 503);
    assert.throws(
      () => maintenance({ bypass: bypassCookie(), stor: store } as never),
      TypeError,
    );
  });
});

describe("controller: writes land in the order they were called", () => {
  /** A MemoryStore whose writes land at once but are acknowledged after `delays`. */
  class LateAckStore extends MemoryStore {
    delays: number[];
    constructor(delays: number[]) {
      super();
      this.delays = delays;
    }
    override async write(text: string): Promise<void> {
      await super.write(text);
      const ms = this.delays.shift() ?? 0;
      await new Promise((r) => setTimeout(r, ms));
    }
  }

  it("enable() then disable(), not awaited in between: ends off, in the store and here", async () => {
    const store = new MemoryStore();
    const mm = createMaintenance({
      store,
      cache: { ttlMs: null },
    });
    const app: App = new Hono();
    app.use(mm.middleware());
    app.get("*", (c) => c.text("ok"));
    const on = mm.enable({ message: "Back soon" });
    const off = mm.disable();
    await Promise.all([on, off]);
    assert.equal(JSON.parse((await store.read())!).enabled, false);
    assert.equal(await mm.isEnabled(), false);
    assert.equal(await statusOf(app, "/"), 200);
  });

  it("overlapping writes: this process serves the state the store kept", async () => {
    // The first write is acknowledged last (as S3 may do): the store keeps the
    // second, and so must the cache, which here never expires.
    const store = new LateAckStore([60, 0]);
    const mm = createMaintenance({
      store,
      cache: { ttlMs: null },
    });
    await Promise.all([
      mm.enable({ message: "first" }),
      mm.enable({ message: "second" }),
    ]);
    assert.equal(JSON.parse((await store.read())!).message, "second");
    assert.equal((await mm.getState()).message, "second");
  });

  it("a write that fails may have landed: the next check reads the store", async () => {
    class TimesOutAfterLanding extends MemoryStore {
      override async write(text: string): Promise<void> {
        await super.write(text);
        throw new Error("write timed out");
      }
    }
    const store = new TimesOutAfterLanding();
    const mm = createMaintenance({
      store,
      cache: { ttlMs: null },
      onError: () => {},
    });
    assert.equal(await mm.isEnabled(), false);
    await assert.rejects(mm.enable(), /write timed out/);
    assert.equal(await mm.isEnabled(), true, "the store says on");
  });

  it("a failed write does not hold up the writes after it", async () => {
    let fail = true;
    class FailsOnce extends MemoryStore {
      override async write(text: string): Promise<void> {
        if (fail) {
          fail = false;
          throw new Error("store down");
        }
        await super.write(text);
      }
    }
    const mm = createMaintenance({
      store: new FailsOnce(),
      onError: () => {},
    });
    const first = mm.enable({ message: "lost" });
    const second = mm.enable({ message: "kept" });
    await assert.rejects(first, /store down/);
    assert.equal((await second).message, "kept");
    assert.equal((await mm.getState()).message, "kept");
    // A bad option still rejects at once, and the queue goes on after it.
    await assert.rejects(mm.enable({ retryAfter: -1 }), RangeError);
    assert.equal((await mm.disable()).enabled, false);
  });
});

describe("the bypass hash never reaches handlers or render", () => {
  it("c.get('maintenance').state and render's state leave it out; .bypass says one is set", async () => {
    // The stored hash keys the cookie's HMAC when no cookieKey is set: a handler that
    // returns c.get("maintenance") (a status endpoint) would hand out bypass cookies.
    const mm = createMaintenance({
      bypass: bypassCookie(),
      store: new MemoryStore(),
    });
    const written = await mm.enable({
      message: "down",
      secret: "a-secret-of-enough-length",
    });
    assert.ok(written.bypass, "the store holds a hash");
    const seen: unknown[] = [];
    const app = new Hono();
    app.use(
      mm.middleware({
        render: (c, state) => {
          seen.push(state);
          return c.text("custom");
        },
      }),
    );
    app.get("/", (c) => c.text("app"));
    // A public status endpoint that returns the variable as it is.
    const app2 = new Hono<{ Variables: MaintenanceVariables }>();
    app2.use(mm.middleware());
    app2.get(
      "/status",
      forceMaintenance(false),
      (c) => c.json(c.get("maintenance")),
    );
    const r = await app2.request("/status");
    assert.equal(r.status, 200);
    const body = await r.text();
    for (const part of written.bypass!.split(":")) {
      assert.ok(!body.includes(part), `hash shown: ${body}`);
    }
    const info = JSON.parse(body);
    assert.equal(info.bypass, true);
    assert.equal(info.state.message, "down");
    assert.equal(info.state.bypass, undefined);
    assert.equal((await app.request("/")).status, 503);
    assert.equal(seen.length, 1);
    assert.equal((seen[0] as { bypass?: string }).bypass, undefined);
    assert.equal((seen[0] as { message?: string }).message, "down");
    // The guard's render too.
    const guarded = guard(mm, () => new Response("app"), {
      render: (_req, state) => {
        seen.push(state);
        return "custom";
      },
    });
    assert.equal((await guarded(new Request("http://x/"))).status, 503);
    assert.equal((seen[1] as { bypass?: string }).bypass, undefined);
    // Off: bypass false.
    await mm.disable();
    assert.equal(
      JSON.parse(await (await app2.request("/status")).text()).bypass,
      false,
    );
  });
});

describe("createMaintenance: a write that never settles", () => {
  it("holds up the next write for 10 × timeoutMs at most, not for ever (fault injected: a hung store)", async () => {
    // A store whose first write hangs, as on a hung NFS mount: no real store hangs on cue.
    let hang = true;
    class HangsOnce extends MemoryStore {
      override write(text: string): Promise<void> {
        if (hang) {
          hang = false;
          return new Promise<void>(() => {});
        }
        return super.write(text);
      }
    }
    const store = new HangsOnce();
    const mm = createMaintenance({
      store,
      timeoutMs: 30,
      onError: () => {},
    });
    void mm.enable({ message: "hung" });
    const t0 = Date.now();
    const off = await mm.disable();
    const waited = Date.now() - t0;
    assert.equal(off.enabled, false);
    assert.ok(waited >= 250 && waited < 2000, `waited ${waited} ms`);
    assert.equal(await mm.isEnabled(), false);
  });
});

describe("createMaintenance: options checked at construction", () => {
  it("now must be a function: Date.now() (a number) says so", () => {
    assert.throws(
      () =>
        createMaintenance({
          store: new MemoryStore(),
          now: 0 as never,
        }),
      (e: Error) =>
        e instanceof TypeError && /now must be a function/.test(e.message) &&
        /\(\) => Date\.now\(\)/.test(e.message),
    );
  });

  it("store: null is refused, not replaced by the default file store", () => {
    assert.throws(
      () => createMaintenance({ store: null as never }),
      (e: Error) =>
        e instanceof TypeError &&
        /store must have read\(\) and write\(\)/.test(e.message) &&
        /leave it out/.test(e.message),
    );
  });

  it("an unknown cache option (a typo of ttlMs) is refused, naming the known ones", () => {
    assert.throws(
      () =>
        createMaintenance({
          store: new MemoryStore(),
          cache: { ttl: 5000 } as never,
        }),
      (e: Error) =>
        e instanceof TypeError &&
        /unknown cache option "ttl"/.test(e.message) &&
        /key, ttlMs, store/.test(e.message),
    );
  });

  it("maintenance({ }) takes an options object: null or a number says so", () => {
    for (const bad of [null, 5, "x", []]) {
      assert.throws(
        () => maintenance(bad as never),
        (e: Error) =>
          e instanceof TypeError &&
          /maintenance takes an options object/.test(e.message),
        String(bad),
      );
    }
  });
});

describe("an ignoreRequest that throws", () => {
  it("means not exempt (the maintenance response, not a 500), told once per streak", async () => {
    const errors: string[] = [];
    const mm = createMaintenance({
      store: new MemoryStore(),
      onError: (e) => errors.push(e.message),
    });
    await mm.enable({ message: "down" });
    // A staff check whose session store is down for the very maintenance.
    let mode: "throw" | "reject" | "staff" = "throw";
    const isStaff = (): boolean | Promise<boolean> => {
      if (mode === "throw") throw new Error("session store down");
      if (mode === "reject") return Promise.reject(new Error("db gone"));
      return true;
    };
    const app = new Hono();
    app.use(mm.middleware({ ignoreRequest: isStaff }));
    app.get("/", (c) => c.text("app"));
    const guarded = guard(mm, () => new Response("app"), {
      ignoreRequest: isStaff,
    });
    for (let i = 0; i < 3; i++) {
      const r = await app.request("/");
      assert.equal(r.status, 503);
      assert.match(await r.text(), /down/);
    }
    assert.equal(errors.length, 1, errors.join("\n"));
    assert.match(
      errors[0],
      /^ignoreRequest threw: session store down; the request was blocked/,
    );
    mode = "reject";
    assert.equal((await app.request("/")).status, 503);
    assert.equal(errors.length, 1, "the same streak");
    mode = "staff";
    assert.equal((await app.request("/")).status, 200);
    mode = "reject";
    assert.equal((await app.request("/")).status, 503);
    assert.equal(errors.length, 2, "a new streak is told");
    assert.match(errors[1], /db gone/);
    // The guard does the same, with its own streak.
    mode = "throw";
    assert.equal((await guarded(new Request("http://x/"))).status, 503);
    assert.equal((await guarded(new Request("http://x/"))).status, 503);
    assert.equal(errors.length, 3);
    mode = "staff";
    assert.equal((await guarded(new Request("http://x/"))).status, 200);
  });
});

describe("forceMaintenance decides before anything about the client", () => {
  const secret = "force-test-secret-0123456789";
  const servers: TestServer[] = [];
  after(async () => {
    for (const s of servers) await s.stop();
  });
  /**
   * Over a real server: the middleware with an `ignoreRequest` that counts its calls
   * and says yes, then on `/old` a handler registered before the mark (its own route)
   * and one before it in the same route, each counting its runs, then the mark.
   */
  async function forcedServer(options: MiddlewareOptions = {}) {
    const mm = createMaintenance({
      bypass: bypassCookie(),
      store: new MemoryStore(),
    });
    await mm.enable({ secret });
    const seen = { asked: 0, ran: 0 };
    const app: App = new Hono();
    app.use(mm.middleware({
      ignoreRequest: () => {
        seen.asked++;
        return true; // a staff member, say: must not matter on a forced route
      },
      ...options,
    }));
    app.get("/old", async (_c, next) => {
      seen.ran++;
      await next();
    });
    app.get(
      "/old",
      async (_c, next) => {
        seen.ran++;
        await next();
      },
      forceMaintenance(true),
      (c) => c.text("never"),
    );
    app.get("/", (c) => c.text("home"));
    const s = await serveFetch(app.fetch);
    servers.push(s);
    return { url: s.url, seen };
  }

  it("never asks ignoreRequest, never runs a handler registered before the mark", async () => {
    const { url, seen } = await forcedServer();
    const res = await fetch(`${url}/old`);
    assert.equal(res.status, 503);
    assert.doesNotMatch(await res.text(), /never/);
    assert.equal(seen.asked, 0, "ignoreRequest was asked");
    assert.equal(seen.ran, 0, "a handler before the mark ran");
    // Elsewhere ignoreRequest is asked, and lets the request through.
    const home = await fetch(`${url}/`);
    assert.equal(home.status, 200);
    assert.equal(await home.text(), "home");
    assert.equal(seen.asked, 1);
  });
  it("with the bypass cookie: still no handler before the mark, still 503", async () => {
    const { url, seen } = await forcedServer();
    const visit = await fetch(`${url}/${secret}`, { redirect: "manual" });
    await visit.body?.cancel();
    assert.equal(visit.status, 302);
    const cookie = visit.headers.get("set-cookie")!.split(";")[0];
    const home = await fetch(`${url}/`, { headers: { cookie } });
    assert.equal(await home.text(), "home", "the cookie works elsewhere");
    const res = await fetch(`${url}/old`, { headers: { cookie } });
    assert.equal(res.status, 503);
    await res.body?.cancel();
    assert.equal(seen.ran, 0, "a handler before the mark ran");
    assert.equal(seen.asked, 0);
  });
  it("forceMaintenance(false) from an exempt IP keeps the app's Cache-Control: open to all, nothing to hide", async () => {
    const mm = createMaintenance({
      store: new MemoryStore(),
    });
    await mm.enable();
    const app: App = new Hono();
    app.use(mm.middleware({ ignoreIps: ["127.0.0.1"] }));
    app.get("/status", forceMaintenance(false), (c) => {
      c.header("cache-control", "public, max-age=60");
      return c.text("status");
    });
    app.get("/", (c) => {
      c.header("cache-control", "public, max-age=60");
      return c.text("home");
    });
    const s = await serveFetch(app.fetch);
    servers.push(s);
    const open = await fetch(`${s.url}/status`);
    assert.equal(await open.text(), "status");
    assert.equal(open.headers.get("cache-control"), "public, max-age=60");
    // Let through for who it is elsewhere: private.
    const home = await fetch(`${s.url}/`);
    assert.equal(await home.text(), "home");
    assert.equal(home.headers.get("cache-control"), "private, no-store");
  });
});
