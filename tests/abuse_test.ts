/**
 * Abuse: hostile state messages, redirect targets, CR/LF, spoofed client addresses,
 * paths built to reach around `ignorePaths`, forged and replayed bypass cookies, and
 * admin requests without (or with the wrong) credentials or from another site. Every
 * case goes through a real HTTP server (`Deno.serve` / `Bun.serve` on 127.0.0.1); paths
 * and headers that `fetch()` would clean up are written raw on a `node:net` socket.
 */
import { adminRoutes } from "../src/admin.ts";
import { bypassCookie } from "../src/bypass.ts";
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { Hono } from "hono";
import { bearerToken } from "../src/admin.ts";
import { createMaintenance, type Maintenance } from "../src/maintenance.ts";
import { FileStore } from "../stores/file.ts";
import { MemoryStore } from "../stores/memory.ts";
import type { MiddlewareOptions } from "../src/middleware.ts";
import { serializeState } from "../src/_state.ts";
import { runCli } from "../main.ts";
import {
  type AppServer,
  rawHttp,
  type RawResponse,
  serveApp,
} from "../scripts/test_servers.ts";
import { bypassCookieValue } from "./helpers.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");

function get(port: number, target: string, headers: string[] = []) {
  return rawHttp(
    port,
    `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${
      headers.map((h) => h + "\r\n").join("")
    }Connection: close\r\n\r\n`,
  );
}

function header(res: RawResponse, name: string): string | undefined {
  return res.headers.find(([k]) => k === name)?.[1];
}

/** No header carries anything a state or option smuggled in. */
function assertCleanHead(res: RawResponse): void {
  for (const [k] of res.headers) {
    assert.ok(!["set-cookie", "x-injected"].includes(k), res.head);
  }
  // Every line of the head is the status line or a header we know to send.
  for (const line of res.head.split("\r\n").slice(1)) {
    assert.match(
      line,
      /^[A-Za-z-]+: /,
      `odd header line ${JSON.stringify(line)}`,
    );
  }
  for (const [k, v] of res.headers) {
    // deno-lint-ignore no-control-regex
    assert.doesNotMatch(v, /[\u0000-\u001f\u007f-\uffff]/, `${k}: ${v}`);
  }
}

function unescapeHtml(s: string): string {
  return s.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'").replace(/&amp;/g, "&");
}

describe("abuse: the message is always escaped (HTML and JSON)", () => {
  const store = new MemoryStore();
  const mm = createMaintenance({ bypass: bypassCookie(), store, cache: false });
  const app = new Hono();
  app.use(mm.middleware());
  app.get("/", (c) => c.text("ok"));
  let server: AppServer;
  before(async () => server = await serveApp(app.fetch));
  after(() => server.stop());

  const MESSAGES = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "' onmouseover='alert(1)' x='",
    "</p></main><script src=//evil.example/x.js></script>",
    "<!-- --><![CDATA[ ]]></title></style><svg onload=alert(1)>",
    "&lt;already escaped&gt; &amp; & &#60;",
    "Wartung 🚧 — ünïcödé 中文 \u202eRTL\u202c \u2028line\u2029sep",
    "${7*7} {{constructor.constructor('alert(1)')()}}",
    "line one\n<b>line two</b>",
  ];
  for (const message of MESSAGES) {
    it(`HTML and JSON: ${JSON.stringify(message).slice(0, 60)}`, async () => {
      // setState writes what a state file could hold, without enable()'s checks.
      await mm.setState({ enabled: true, message });
      const html = await fetch(`${server.url}/`);
      assert.equal(html.status, 503);
      const body = await html.text();
      assert.doesNotMatch(
        body,
        /<script|<img|<svg/i,
        "no tag from the message",
      );
      const inner = /<p id="message">([\s\S]*?)<\/p>/.exec(body)?.[1];
      assert.ok(inner !== undefined, "the page shows the message");
      assert.doesNotMatch(inner, /[<>"']/, "no markup character left raw");
      assert.equal(unescapeHtml(inner), message, "shown as text, unchanged");

      const json = await fetch(`${server.url}/`, {
        headers: { accept: "application/json" },
      });
      assert.equal(json.status, 503);
      const raw = await json.text();
      assert.doesNotMatch(raw, /[<>&\u2028\u2029]/, "escaped as \\u00XX");
      assert.equal(JSON.parse(raw).message, message);
    });
  }

  it("page options (title, defaultMessage, lang) are escaped too", async () => {
    const mm2 = createMaintenance({
      bypass: bypassCookie(),
      store: new MemoryStore(serializeState({ enabled: true })),
      cache: false,
    });
    const app2 = new Hono();
    app2.use(mm2.middleware({
      page: {
        title: "<script>t</script>",
        defaultMessage: "<img src=x onerror=d>",
        lang: '"><script>l</script>',
      },
    }));
    const res = await app2.request("/");
    assert.equal(res.status, 503, "the page is served");
    const body = await res.text();
    assert.doesNotMatch(body, /<script|<img/);
    assert.ok(body.includes("&lt;script&gt;t&lt;/script&gt;"), body);
    assert.ok(body.includes("&lt;img src=x onerror=d&gt;"), body);
    assert.ok(
      body.includes('lang="&quot;&gt;&lt;script&gt;l&lt;/script&gt;"'),
      body,
    );
  });
});

describe("abuse: redirectTo takes only paths and http(s) URLs", () => {
  const REFUSED = [
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    " javascript:alert(1)",
    "java\tscript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "file:///etc/passwd",
    "ftp://example.com/",
    "mailto:x@example.com",
    "//evil.example/",
    "/\\evil.example/",
    "\\\\evil.example\\",
    "maintenance",
    "",
    "/m\r\nSet-Cookie: pwned=1",
    "https://example.com/\nX-Injected: 1",
  ];
  for (const target of REFUSED) {
    it(`refuses ${JSON.stringify(target)} when the middleware is made`, () => {
      const mm = createMaintenance({
        bypass: bypassCookie(),
        store: new MemoryStore(),
      });
      assert.throws(
        () => mm.middleware({ redirectTo: target }),
        TypeError,
      );
    });
  }

  const ACCEPTED: [string, string][] = [
    ["/maintenance", "/maintenance"],
    ["https://status.example.com/", "https://status.example.com/"],
    ["/wartung-€", "/wartung-%E2%82%AC"],
    ["/m%0d%0aSet-Cookie:%20pwned=1", "/m%0d%0aSet-Cookie:%20pwned=1"],
  ];
  for (const [target, location] of ACCEPTED) {
    it(`redirects to ${JSON.stringify(target)} with a clean Location`, async () => {
      const mm = createMaintenance({
        bypass: bypassCookie(),
        store: new MemoryStore(serializeState({ enabled: true })),
        cache: false,
      });
      const app = new Hono();
      app.use(mm.middleware({ redirectTo: target }));
      app.get("*", (c) => c.text("ok"));
      const server = await serveApp(app.fetch);
      try {
        const res = await get(server.port, "/");
        assert.equal(res.status, 302, res.head);
        assert.equal(header(res, "location"), location);
        assertCleanHead(res);
      } finally {
        await server.stop();
      }
    });
  }
});

describe("abuse: CR and LF never reach a header", () => {
  it("options and enable() refuse them before anything is served or written", async () => {
    const store = new MemoryStore();
    const mm = createMaintenance({ bypass: bypassCookie(), store });
    const bad = "600\r\nSet-Cookie: pwned=1" as unknown as number;
    assert.throws(() => mm.middleware({ retryAfter: bad }), RangeError);
    assert.throws(
      () =>
        mm.middleware({ status: "503\r\nX-Injected: 1" as unknown as number }),
      RangeError,
    );
    await assert.rejects(mm.enable({ retryAfter: bad }), RangeError);
    await assert.rejects(mm.enable({ refresh: bad }), RangeError);
    await assert.rejects(
      mm.enable({ message: "hi\r\nSet-Cookie: pwned=1" }),
      TypeError,
    );
    assert.equal(await store.read(), null, "nothing was written");
  });

  it("the CLI refuses them (exit 2) and writes nothing", async () => {
    const dir = mkdtempSync(join(tmpdir(), "maintenance-abuse-cli-"));
    try {
      const file = join(dir, "state.txt");
      for (
        const args of [
          ["on", "--retry-after", "5\r\nX-Injected: 1"],
          ["on", "--refresh", "5\r\nX-Injected: 1"],
          ["on", "--message", "hi\r\nSet-Cookie: pwned=1"],
        ]
      ) {
        const code = await runCli(["--file", file, ...args], {
          out: () => {},
          err: () => {},
        });
        assert.equal(code, 2, args.join(" "));
      }
      assert.throws(() => readFileSync(file), /ENOENT/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a state whose message holds CR/LF and header lines: only the body shows it", async () => {
    const mm = createMaintenance({
      bypass: bypassCookie(),
      store: new MemoryStore(),
      cache: false,
    });
    await mm.setState({
      enabled: true,
      message: "down\r\nSet-Cookie: pwned=1\r\nX-Injected: 1\r\n\r\n<b>",
      retryAfter: 60,
      refresh: 30,
    });
    const app = new Hono();
    app.use(mm.middleware());
    app.get("/", (c) => c.text("ok"));
    const server = await serveApp(app.fetch);
    try {
      for (const accept of ["text/html", "application/json"]) {
        const res = await get(server.port, "/", [`Accept: ${accept}`]);
        assert.equal(res.status, 503, res.head);
        assertCleanHead(res);
        assert.equal(header(res, "retry-after"), "60");
        assert.equal(header(res, "refresh"), "30");
      }
    } finally {
      await server.stop();
    }
  });

  it("a state file with CR/LF in retryAfter is corrupt: the last good state is served", async () => {
    const dir = mkdtempSync(join(tmpdir(), "maintenance-abuse-file-"));
    const path = join(dir, "state.txt");
    const errors: string[] = [];
    const mm = createMaintenance({
      bypass: bypassCookie(),
      store: new FileStore(path),
      cache: false,
      onError: (e) => errors.push(e.message),
    });
    const app = new Hono();
    app.use(mm.middleware());
    app.get("/", (c) => c.text("ok"));
    const server = await serveApp(app.fetch);
    try {
      await mm.enable({ retryAfter: 120 });
      writeFileSync(
        path,
        JSON.stringify({
          enabled: true,
          retryAfter: "1\r\nSet-Cookie: pwned=1",
        }),
      );
      const res = await get(server.port, "/");
      assert.equal(res.status, 503);
      assertCleanHead(res);
      assert.equal(header(res, "retry-after"), "120", "the last good state");
      assert.match(errors.join(), /"retryAfter" must be a whole number/);
    } finally {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** One app with a differently configured middleware under each `/<name>/` prefix. */
function ipApp(
  mm: Maintenance,
  configs: Record<string, MiddlewareOptions>,
): Hono {
  const app = new Hono();
  for (const [name, options] of Object.entries(configs)) {
    app.use(`/${name}/*`, mm.middleware(options));
  }
  app.get("*", (c) => c.text("through"));
  return app;
}

describe("abuse: X-Forwarded-For and other client-IP headers", () => {
  const mm = createMaintenance({
    bypass: bypassCookie(),
    store: new MemoryStore(serializeState({ enabled: true })),
  });
  const app = ipApp(mm, {
    plain: { ignoreIps: ["10.0.0.1"] },
    proxy1: { ignoreIps: ["10.0.0.0/8"], trustedProxies: 1 },
    proxy2: { ignoreIps: ["10.0.0.1"], trustedProxies: 2 },
    // The peer (127.0.0.1, standing for the trusted proxy) is in an exempt range.
    proxypeer: { ignoreIps: ["127.0.0.0/8"], trustedProxies: 2 },
    loop: { ignoreIps: ["127.0.0.1"] },
  });
  let server: AppServer;
  before(async () => server = await serveApp(app.fetch));
  after(() => server.stop());

  const CASES: [string, string[], number][] = [
    ["/plain/x", [], 503],
    ["/plain/x", ["X-Forwarded-For: 10.0.0.1"], 503],
    ["/plain/x", ["X-Forwarded-For: 10.0.0.1, 10.0.0.1"], 503],
    ["/plain/x", ["X-Real-IP: 10.0.0.1"], 503],
    ["/plain/x", ["Forwarded: for=10.0.0.1"], 503],
    ["/plain/x", ["CF-Connecting-IP: 10.0.0.1"], 503],
    ["/plain/x", ["True-Client-IP: 10.0.0.1"], 503],
    ["/plain/x", ["X-Client-IP: 10.0.0.1"], 503],
    ["/plain/x", ["X-Cluster-Client-IP: 10.0.0.1"], 503],
    ["/plain/x", ["Fastly-Client-IP: 10.0.0.1"], 503],
    // One trusted proxy: its hop (the rightmost) counts, what the client wrote does not.
    ["/proxy1/x", ["X-Forwarded-For: 10.1.2.3"], 200],
    ["/proxy1/x", ["X-Forwarded-For: 10.1.2.3, 6.6.6.6"], 503],
    ["/proxy1/x", ["X-Forwarded-For: 6.6.6.6, 10.1.2.3"], 200],
    [
      "/proxy1/x",
      ["X-Forwarded-For: 10.1.2.3", "X-Forwarded-For: 6.6.6.6"],
      503,
    ],
    // A port the proxy added is not part of the address (Azure writes one).
    ["/proxy1/x", ["X-Forwarded-For: 10.1.2.3:8080"], 200],
    ["/proxy1/x", ["X-Forwarded-For: 6.6.6.6:8080"], 503],
    ["/proxy1/x", ["X-Forwarded-For: 10.1.2.3:80808080"], 503],
    ["/proxy1/x", ["X-Forwarded-For: 010.1.2.3"], 503],
    ["/proxy1/x", ["X-Forwarded-For: ::10.1.2.3"], 503],
    ["/proxy1/x", ["X-Forwarded-For: 64:ff9b::10.1.2.3"], 503],
    ["/proxy1/x", ["X-Forwarded-For: ::ffff:10.1.2.3"], 200],
    ["/proxy1/x", ["X-Forwarded-For: ::ffff:a01:203"], 200],
    ["/proxy1/x", ["X-Forwarded-For: garbage"], 503],
    ["/proxy1/x", ["X-Forwarded-For: "], 503],
    // Two proxies, a header with one hop: too short, so no client IP at all.
    ["/proxy2/x", ["X-Forwarded-For: 10.0.0.1"], 503],
    // ... and never the peer, which is a proxy, not the client.
    ["/proxypeer/x", [], 503],
    ["/proxypeer/x", ["X-Forwarded-For: 6.6.6.6"], 503],
    ["/proxypeer/x", ["X-Forwarded-For: , 6.6.6.6"], 503],
    ["/proxypeer/x", ["X-Forwarded-For: 127.0.0.2, 6.6.6.6"], 200],
    ["/proxy2/x", ["X-Forwarded-For: 10.0.0.1, 192.168.0.9"], 200],
    // An exempt peer stays exempt whatever the headers say.
    ["/loop/x", ["X-Forwarded-For: 6.6.6.6"], 200],
  ];
  for (const [path, headers, status] of CASES) {
    it(`${path} ${headers.join(" | ") || "(no header)"} → ${status}`, async () => {
      const res = await get(server.port, path, headers);
      assert.equal(res.status, status, res.head);
    });
  }
});

describe("abuse: IPv4-mapped IPv6 peers match IPv4 rules", () => {
  const mm = createMaintenance({
    bypass: bypassCookie(),
    store: new MemoryStore(serializeState({ enabled: true })),
  });
  const app = ipApp(mm, {
    v4: { ignoreIps: ["127.0.0.1"] },
    v4cidr: { ignoreIps: ["127.0.0.0/8"] },
    mapped: { ignoreIps: ["::ffff:127.0.0.1"] },
    mappedcidr: { ignoreIps: ["::ffff:127.0.0.0/104"] },
    other: { ignoreIps: ["10.0.0.0/8"] },
    v6loop: { ignoreIps: ["::1"] },
  });
  let v4: AppServer;
  let mapped: AppServer;
  before(async () => {
    v4 = await serveApp(app.fetch);
    // An IPv6 socket on the mapped loopback address: clients appear as ::ffff:127.0.0.1.
    mapped = await serveApp(app.fetch, { hostname: "::ffff:127.0.0.1" });
  });
  after(async () => {
    await v4.stop();
    await mapped.stop();
  });

  const CASES: [string, number, number][] = [
    // [prefix, status via the IPv4 socket, status via the v4-mapped socket]
    ["v4", 200, 200],
    ["v4cidr", 200, 200],
    ["mapped", 200, 200],
    ["mappedcidr", 200, 200],
    ["other", 503, 503],
    ["v6loop", 503, 503],
  ];
  for (const [name, viaV4, viaMapped] of CASES) {
    it(`ignoreIps of /${name}: peer 127.0.0.1 → ${viaV4}, peer ::ffff:127.0.0.1 → ${viaMapped}`, async () => {
      assert.equal((await get(v4.port, `/${name}/x`)).status, viaV4);
      assert.equal((await get(mapped.port, `/${name}/x`)).status, viaMapped);
    });
  }
});

describe("abuse: ignorePaths cannot be reached around", () => {
  const mm = createMaintenance({
    bypass: bypassCookie(),
    store: new MemoryStore(serializeState({ enabled: true })),
  });
  const app = new Hono();
  app.use(mm.middleware({ ignorePaths: ["/public", "/health/"] }));
  app.get("/public", (c) => c.json({ route: "public", path: c.req.path }));
  app.get("/public/*", (c) => c.json({ route: "public", path: c.req.path }));
  app.get("/health", (c) => c.json({ route: "health", path: c.req.path }));
  app.get("/admin", (c) => c.json({ route: "admin", path: c.req.path }));
  app.get("/admin/*", (c) => c.json({ route: "admin", path: c.req.path }));
  app.get("*", (c) => c.json({ route: "other", path: c.req.path }));
  let server: AppServer;
  before(async () => server = await serveApp(app.fetch));
  after(() => server.stop());

  /** Is `path` (as Hono routed it) inside an exempt tree, in its one canonical spelling? */
  function exemptPath(path: string): boolean {
    return /^\/(public|health)(\/[^/]*)*$/.test(path) &&
      !path.split("/").some((s) => s === "." || s === "..") &&
      !/\\|%2f|%5c|%2e/i.test(path);
  }

  const TARGETS = [
    "/public/../admin",
    "/public/%2e%2e/admin",
    "/public/%2E%2E/admin",
    "/public/.%2e/admin",
    "/public/%2e./admin",
    "/public/%252e%252e/admin",
    "/public/..%2fadmin",
    "/public%2f..%2fadmin",
    "/public/%2e%2e%2fadmin",
    "/public/x/../../admin",
    "/public//admin",
    "/public/..//admin",
    "//public/../admin",
    "/./public/../admin",
    "/public\\..\\admin",
    "/public/..\\admin",
    "/public/..;/admin",
    "/public;/../admin",
    "/public%00/../admin",
    "/public/%c0%ae%c0%ae/admin",
    "/public/./x",
    "/PUBLIC/x",
    "/Public",
    "/publicity",
    "/public/",
    "/public?/../admin",
    "/admin?/public",
    "/admin#/public",
    "/admin/..%2fpublic",
    "/%70ublic/x",
    "/health/../admin",
    "/healthz",
    "/health//",
    "http://127.0.0.1/public/../admin",
    "http://evil.example/public/../admin",
  ];
  for (const target of TARGETS) {
    it(`GET ${target}: maintenance, or an exempt route for an exempt path`, async () => {
      const res = await get(server.port, target);
      if (res.status === 503) {
        assert.match(res.body, /Maintenance|maintenance/);
        return;
      }
      if (res.status === 400 || res.status === 404) return; // refused by the server
      assert.equal(res.status, 200, res.head);
      const { route, path } = JSON.parse(res.body) as {
        route: string;
        path: string;
      };
      assert.ok(
        route === "public" || route === "health",
        `${target} reached the ${route} route (routed as ${path}) during maintenance`,
      );
      assert.ok(
        exemptPath(path),
        `${target} routed as ${path}, not an exempt path`,
      );
    });
  }

  it("control: exempt paths pass, others get maintenance", async () => {
    for (
      const [target, status] of [
        ["/public", 200],
        ["/public/a/b", 200],
        ["/health", 200],
        ["/admin", 503],
        ["/", 503],
      ] as const
    ) {
      assert.equal((await get(server.port, target)).status, status, target);
    }
  });
});

/** The bypass cookie value `Set-Cookie` carries, or undefined. */
function cookieFrom(res: Response): string | undefined {
  const set = res.headers.get("set-cookie");
  return set ? /^([^=]+=[^;]*)/.exec(set)?.[1] : undefined;
}

describe("abuse: the secret bypass cookie", () => {
  const SECRET_1 = "first-secret-0123456789";
  const SECRET_2 = "second-secret-0123456789";
  const store = new MemoryStore();
  const mm = createMaintenance({
    store,
    cache: false,
    bypass: bypassCookie({ cookieKey: "k".repeat(40) }),
  });
  const app = new Hono();
  app.use(mm.middleware());
  app.get("*", (c) => c.text("through"));
  let server: AppServer;
  before(async () => server = await serveApp(app.fetch));
  after(() => server.stop());

  async function visit(path: string): Promise<Response> {
    return await fetch(`${server.url}${path}`, { redirect: "manual" });
  }
  async function withCookie(cookie: string): Promise<number> {
    const res = await fetch(`${server.url}/`, { headers: { cookie } });
    await res.body?.cancel();
    return res.status;
  }

  it("a visit to /<secret> gives a cookie that passes; forged ones do not", async () => {
    await mm.enable({ secret: SECRET_1 });
    const res = await visit(`/${SECRET_1}`);
    assert.equal(res.status, 302);
    const cookie = cookieFrom(res);
    assert.ok(cookie?.startsWith("maintenance_bypass="), String(cookie));
    assert.equal(await withCookie(cookie!), 200);
    const value = cookie!.split("=")[1];
    const stored = JSON.parse((await store.read())!).bypass as string;
    for (
      const forged of [
        "maintenance_bypass=",
        "maintenance_bypass=1",
        "maintenance_bypass=true",
        `maintenance_bypass=${value.slice(0, -1)}`,
        `maintenance_bypass=${value}x`,
        `maintenance_bypass=${value.toUpperCase()}`,
        `other_cookie=${value}`,
        `maintenance_bypass =${value}x`,
        // Made from what the state holds (the salted hash): refused with a cookieKey.
        `maintenance_bypass=${await bypassCookieValue(
          stored,
          stored,
          Math.floor(Date.now() / 43_200_000),
        )}`,
        `maintenance_bypass=${stored}`,
        `maintenance_bypass=${SECRET_1}`,
      ]
    ) {
      assert.equal(await withCookie(forged), 503, forged);
    }
  });

  it("wrong secrets, other methods and look-alike paths set no cookie", async () => {
    await mm.enable({ secret: SECRET_1 });
    for (
      const path of [
        `/${SECRET_1.slice(0, -1)}`,
        `/${SECRET_1}x`,
        `/${SECRET_1.toUpperCase()}`,
        `/${SECRET_1}/`,
        `/x/${SECRET_1}`,
        `/?secret=${SECRET_1}`,
        `/${"a".repeat(20)}`,
      ]
    ) {
      const res = await visit(path);
      await res.body?.cancel();
      assert.equal(res.status, 503, path);
      assert.equal(res.headers.get("set-cookie"), null, path);
    }
    const post = await fetch(`${server.url}/${SECRET_1}`, {
      method: "POST",
      redirect: "manual",
    });
    await post.body?.cancel();
    assert.equal(post.status, 503);
    assert.equal(post.headers.get("set-cookie"), null);
  });

  it("after a new secret (or off and on again), the old cookie is refused", async () => {
    await mm.enable({ secret: SECRET_1 });
    const old = cookieFrom(await visit(`/${SECRET_1}`))!;
    assert.equal(await withCookie(old), 200);

    await mm.enable({ secret: SECRET_2 });
    assert.equal(await withCookie(old), 503, "replayed after a new secret");
    const oldVisit = await visit(`/${SECRET_1}`);
    await oldVisit.body?.cancel();
    assert.equal(oldVisit.status, 503, "the old secret no longer works");
    const fresh = cookieFrom(await visit(`/${SECRET_2}`))!;
    assert.equal(await withCookie(fresh), 200);

    // The same secret again: a new salt, so a new cookie.
    await mm.disable();
    await mm.enable({ secret: SECRET_2 });
    assert.equal(await withCookie(fresh), 503, "replayed after off and on");
    // Maintenance on without a secret: no cookie passes.
    await mm.enable({});
    const again = await visit(`/${SECRET_2}`);
    await again.body?.cancel();
    assert.equal(again.status, 503);
  });
});

const TOKEN = "0123456789abcdef0123456789abcdef";

describe("abuse: admin routes change nothing without the right credentials", () => {
  const store = new MemoryStore(
    serializeState({
      enabled: true,
      message: "before",
      updatedAt: "2026-01-01T00:00:00.000Z",
    }),
  );
  const mm = createMaintenance({ bypass: bypassCookie(), store, cache: false });
  const app = new Hono();
  app.use(mm.middleware());
  app.route(
    "/maintenance-mode",
    adminRoutes(mm, { authorize: bearerToken(TOKEN) }),
  );
  app.route(
    "/loose",
    adminRoutes(mm, {
      // A truthy value that is neither true nor a name (a string names the operator).
      authorize: (c) => (c.req.header("x-admin") ? 1 : false) as never,
    }),
  );
  app.get("*", (c) => c.text("through"));
  let server: AppServer;
  before(async () => server = await serveApp(app.fetch));
  after(() => server.stop());

  const AUTH = `Authorization: Bearer ${TOKEN}`;
  const JSON_TYPE = "Content-Type: application/json";
  const FORM_TYPE = "Content-Type: application/x-www-form-urlencoded";
  const CASES: [string, string, string[], string, number[]][] = [
    // [label, request line, headers, body, allowed statuses]
    ["no credentials", "POST /maintenance-mode/off", [JSON_TYPE], "{}", [401]],
    [
      "a wrong token",
      "POST /maintenance-mode/off",
      ["Authorization: Bearer wrong-token-0123456789", JSON_TYPE],
      "{}",
      [401],
    ],
    [
      "the token's first half",
      "POST /maintenance-mode/off",
      [`Authorization: Bearer ${TOKEN.slice(0, 16)}`],
      "",
      [401],
    ],
    [
      "the token plus a character",
      "POST /maintenance-mode/off",
      [`Authorization: Bearer ${TOKEN}x`],
      "",
      [401],
    ],
    [
      "the token as Basic auth",
      "POST /maintenance-mode/off",
      [`Authorization: Basic ${btoa(`admin:${TOKEN}`)}`],
      "",
      [401],
    ],
    [
      "the token in a query",
      `POST /maintenance-mode/off?token=${TOKEN}`,
      [],
      "",
      [401],
    ],
    [
      "the token in a cookie",
      "POST /maintenance-mode/off",
      [`Cookie: token=${TOKEN}`],
      "",
      [401],
    ],
    [
      "two Authorization headers",
      "POST /maintenance-mode/off",
      ["Authorization: Bearer wrong-token-0123456789", AUTH],
      "",
      [401],
    ],
    [
      "cross-site Origin",
      "POST /maintenance-mode/off",
      [AUTH, "Origin: https://evil.example", JSON_TYPE],
      "{}",
      [403],
    ],
    ["Origin: null", "POST /maintenance-mode/off", [AUTH, "Origin: null"], "", [
      403,
    ]],
    [
      "Sec-Fetch-Site: cross-site",
      "POST /maintenance-mode/off",
      [AUTH, "Sec-Fetch-Site: cross-site"],
      "",
      [403],
    ],
    [
      "Sec-Fetch-Site: same-site",
      "POST /maintenance-mode/off",
      [AUTH, "Sec-Fetch-Site: same-site"],
      "",
      [403],
    ],
    // A browser adds the Basic credentials and cookies it holds to a cross-site form,
    // never a Bearer header: a form without Origin is refused unless it carries one.
    [
      "a form without Origin, Basic auth",
      "POST /maintenance-mode/on",
      [`Authorization: Basic ${btoa(`admin:${TOKEN}`)}`, FORM_TYPE],
      "message=pwned",
      [403],
    ],
    [
      "a form without Origin, the token in a cookie",
      "POST /maintenance-mode/on",
      [`Cookie: token=${TOKEN}`, FORM_TYPE],
      "message=pwned",
      [403],
    ],
    [
      "text/plain without Origin, Basic auth",
      "POST /maintenance-mode/on",
      [
        `Authorization: Basic ${btoa(`admin:${TOKEN}`)}`,
        "Content-Type: text/plain",
      ],
      '{"message":"pwned"}',
      [403],
    ],
    [
      "a Bearer form with a cross-site Origin",
      "POST /maintenance-mode/on",
      [AUTH, FORM_TYPE, "Origin: https://evil.example"],
      "message=pwned",
      [403],
    ],
    [
      "a Bearer form with Sec-Fetch-Site: cross-site",
      "POST /maintenance-mode/on",
      [AUTH, FORM_TYPE, "Sec-Fetch-Site: cross-site"],
      "message=pwned",
      [403],
    ],
    ["GET on a POST route", "GET /maintenance-mode/off", [AUTH], "", [405]],
    [
      "GET with a method override header",
      "GET /maintenance-mode/off",
      [AUTH, "X-HTTP-Method-Override: POST"],
      "",
      [405],
    ],
    ["a trailing slash", "POST /maintenance-mode/off/", [AUTH], "", [404, 503]],
    ["upper case", "POST /MAINTENANCE-MODE/off", [AUTH], "", [404, 503]],
    ["a double slash", "POST /maintenance-mode//off", [AUTH], "", [404, 503]],
    ["dot segments", "POST /maintenance-mode/x/../off", [], "", [
      401,
      404,
      503,
    ]],
    [
      "an encoded path without credentials",
      "POST /maintenance-mode/%6Fff",
      [],
      "",
      [401],
    ],
    [
      "a body over 16 KiB",
      "POST /maintenance-mode/on",
      [AUTH, JSON_TYPE],
      JSON.stringify({ message: "x".repeat(20_000) }),
      [413, 400],
    ],
    [
      "an unknown field",
      "POST /maintenance-mode/on",
      [AUTH, JSON_TYPE],
      '{"enabled":false}',
      [400],
    ],
    [
      "authorize returning a truthy number",
      "POST /loose/off",
      ["X-Admin: yes"],
      "",
      [401],
    ],
    ["reading the state without credentials", "GET /maintenance-mode", [], "", [
      401,
    ]],
  ];
  for (const [label, line, headers, body, statuses] of CASES) {
    it(`${label}: ${line} → ${statuses.join(" or ")}, state unchanged`, async () => {
      const before = await store.read();
      const res = await rawHttp(
        server.port,
        `${line} HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\n${
          headers.map((h) => h + "\r\n").join("")
        }Content-Length: ${
          new TextEncoder().encode(body).length
        }\r\nConnection: close\r\n\r\n${body}`,
      );
      assert.ok(
        statuses.includes(res.status),
        `${res.status}: ${res.head}\n${res.body}`,
      );
      assert.equal(await store.read(), before, "the state is unchanged");
      assert.doesNotMatch(res.body, /"before"/, "the state is not shown");
    });
  }

  it("a bypass cookie is not an admin credential, and the state view hides the hash", async () => {
    const secret = "bypass-not-admin-0123456789";
    await mm.enable({ secret });
    const visit = await fetch(`${server.url}/${secret}`, {
      redirect: "manual",
    });
    await visit.body?.cancel();
    const cookie = cookieFrom(visit);
    assert.ok(cookie);
    assert.equal(
      await fetch(`${server.url}/`, { headers: { cookie } }).then(async (r) => {
        await r.body?.cancel();
        return r.status;
      }),
      200,
      "the cookie lets the browser through",
    );
    const before = await store.read();
    const res = await fetch(`${server.url}/maintenance-mode/off`, {
      method: "POST",
      headers: { cookie },
    });
    await res.body?.cancel();
    assert.equal(res.status, 401);
    assert.equal(await store.read(), before, "the state is unchanged");
    const stored = JSON.parse(before!).bypass as string;
    const view = await fetch(`${server.url}/maintenance-mode`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    const text = await view.text();
    assert.equal(view.status, 200, text);
    assert.equal(JSON.parse(text).bypass, true);
    assert.ok(!text.includes(stored.split(":")[1]), "no hash in the view");
  });

  it("control: the right token from a script changes the state", async () => {
    const res = await fetch(`${server.url}/maintenance-mode/off`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    assert.equal(res.status, 200, await res.text());
    assert.equal(JSON.parse((await store.read())!).enabled, false);
  });
});

describe("abuse: the demo's /maintenance-mode", () => {
  function startDemo(
    env: Record<string, string>,
  ): Promise<{ url: string; stop(): Promise<void> }> {
    const [cmd, args] = "Bun" in globalThis
      ? [process.execPath, [`${ROOT}/scripts/demo.ts`]]
      : [process.execPath, [
        "run",
        "-A",
        "--no-lock",
        "--config",
        `${ROOT}/deno.json`,
        `${ROOT}/scripts/demo.ts`,
      ]];
    const base: Record<string, string> = {};
    for (const k of ["PATH", "HOME", "DENO_DIR", "TMPDIR"]) {
      if (process.env[k]) base[k] = process.env[k]!;
    }
    const child = spawn(cmd, args, {
      cwd: ROOT,
      env: { ...base, PORT: "0", HOST: "127.0.0.1", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    const exited = new Promise<void>((r) => child.on("close", () => r()));
    const stop = async () => {
      child.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
      child.kill("SIGKILL");
    };
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        void stop();
        reject(new Error(`the demo did not start: ${err}`));
      }, 30_000);
      child.stderr?.on("data", (d: Uint8Array | string) => err += String(d));
      child.stdout?.on("data", (d: Uint8Array | string) => {
        out += String(d);
        const m = /listening on (http:\/\/127\.0\.0\.1:\d+)\//.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve({ url: m[1], stop });
        }
      });
      exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`the demo exited: ${err}`));
      });
    });
  }

  it("without MAINTENANCE_ADMIN_TOKEN the routes are not there; with it, only the token works", async () => {
    const dir = mkdtempSync(join(tmpdir(), "maintenance-abuse-demo-"));
    const file = join(dir, "state.txt");
    const on = serializeState({
      enabled: true,
      message: "demo down",
      updatedAt: "2026-01-01T00:00:00.000Z",
    });
    writeFileSync(file, on);
    const post = (url: string, headers: Record<string, string> = {}) =>
      fetch(`${url}/maintenance-mode/off`, { method: "POST", headers }).then(
        async (r) => {
          await r.body?.cancel();
          return r.status;
        },
      );
    try {
      const open = await startDemo({ MAINTENANCE_STATE_FILE: file });
      try {
        assert.equal(
          await post(open.url, { authorization: `Bearer ${TOKEN}` }),
          503,
        );
        assert.equal(readFileSync(file, "utf8"), on);
      } finally {
        await open.stop();
      }
      const demo = await startDemo({
        MAINTENANCE_STATE_FILE: file,
        MAINTENANCE_ADMIN_TOKEN: TOKEN,
      });
      try {
        assert.equal(await post(demo.url), 401);
        assert.equal(
          await post(demo.url, { authorization: "Bearer nope-nope-nope-nope" }),
          401,
        );
        assert.equal(
          await post(demo.url, {
            authorization: `Bearer ${TOKEN}`,
            origin: "https://evil.example",
          }),
          403,
        );
        assert.equal(readFileSync(file, "utf8"), on, "unchanged");
        assert.equal(
          await post(demo.url, { authorization: `Bearer ${TOKEN}` }),
          200,
        );
        assert.equal(JSON.parse(readFileSync(file, "utf8")).enabled, false);
      } finally {
        await demo.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
