// Smoke test of the npm build of @x/maintenance on Node, behind a real @hono/node-server.
//
// Run from a project that has the package installed:
//   npm init -y && npm pkg set type=module
//   npm install /path/to/x-maintenance-0.1.0.tgz hono @hono/node-server
//   node smoke_node_server.mjs   (scripts/npm_smoke.ts runs it as node_server.mjs)
// Prints one `ok - ...` (or `not ok - ...`) line per check; exits 1 if any check failed.
// Checks that need a second loopback address (127.0.0.2) or IPv6 are skipped, with a
// `# skip` line, where the machine has none.
import { Hono } from "hono";
import { serve } from "@hono/node-server";
import {
  createMaintenance,
  FileStore,
  forceMaintenance,
  MemoryStore,
} from "@x/maintenance";
import { adminRoutes, bearerToken } from "@x/maintenance/admin";
import { bypassCookie } from "@x/maintenance/bypass";
import { guard } from "@x/maintenance/guard";
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import http from "node:http";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const H = "127.0.0.1";
const SECRET = "smoke-secret-0123456789";
const TOKEN = "smoke-admin-token-0123456789abcdef";

// ---------------------------------------------------------------- helpers

function start(fetch, hostname = H) {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch, port: 0, hostname }, (info) =>
      resolve({
        port: info.port,
        close: () => new Promise((r) => server.close(() => r())),
      }));
    server.once("error", reject);
  });
}

/** One request on a fresh connection, optionally from another local address. */
function get(host, port, path, opts = {}) {
  return new Promise((resolve, reject) => {
    const r = http.request({
      host,
      port,
      path,
      method: opts.method ?? "GET",
      headers: opts.headers ?? {},
      localAddress: opts.from,
      agent: false,
    }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () =>
        resolve({
          status: res.statusCode,
          headers: res.headers,
          body: Buffer.concat(chunks).toString("utf8"),
        }));
      res.on("error", reject);
    });
    r.on("error", reject);
    r.end(opts.body);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let failed = 0;
function check(name, cond, detail) {
  if (cond) console.log(`ok - ${name}`);
  else {
    failed++;
    console.log(`not ok - ${name}`);
    if (detail !== undefined) console.log(`  # ${JSON.stringify(detail)}`);
  }
}
const skip = (name, why) => console.log(`ok - ${name} # skip ${why}`);

async function canBind(host) {
  try {
    const s = await start(() => new Response("x"), host);
    await s.close();
    return true;
  } catch {
    return false;
  }
}
async function canConnectFrom(port, from) {
  try {
    await get(H, port, "/healthz", { from });
    return true;
  } catch {
    return false;
  }
}

// ------------------------------------------- child mode: does the process exit?

if (process.env.SMOKE_EXIT_CHILD === "1") {
  // Server + file store + cache + bypass crypto; close the server, then nothing may
  // keep the event loop alive.
  const dir = process.env.SMOKE_DIR;
  const mm = createMaintenance({
    bypass: bypassCookie(),
    store: new FileStore(join(dir, "exit_state.txt")),
    cache: { ttlMs: 30_000 },
  });
  const app = new Hono();
  app.use(mm.middleware({ ignorePaths: ["/healthz"] }));
  app.get("*", (c) => c.text("app"));
  const s = await start(guard(mm, app.fetch, { ignorePaths: ["/healthz"] }));
  await mm.enable({ secret: SECRET });
  const v = await fetch(`http://${H}:${s.port}/${SECRET}`, {
    redirect: "manual",
  });
  await v.arrayBuffer();
  const cookie = (v.headers.get("set-cookie") ?? "").split(";")[0];
  const a = await fetch(`http://${H}:${s.port}/`, { headers: { cookie } });
  await a.arrayBuffer();
  const b = await fetch(`http://${H}:${s.port}/`);
  await b.arrayBuffer();
  console.log(`statuses ${v.status} ${a.status} ${b.status}`);
  await s.close();
  // No process.exit(): the test is that the process ends by itself.
} else {
  await main();
}

async function main() {
  const t0 = Date.now();
  const dir = mkdtempSync(join(tmpdir(), "mm-smoke-"));
  try {
    let nodeServer = "?";
    try {
      const require = createRequire(import.meta.url);
      const entry = require.resolve("@hono/node-server");
      nodeServer = JSON.parse(
        readFileSync(entry.replace(/dist[\\/].*$/, "package.json"), "utf8"),
      ).version;
    } catch { /* version unknown */ }
    console.log(`# node ${process.version}, @hono/node-server ${nodeServer}`);
    await middlewareChecks();
    await ipChecks();
    await guardChecks();
    await renderChecks();
    await fileStoreAndCliChecks(dir);
    await adminChecks(dir);
    await exitCheck(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(
    `# ${failed === 0 ? "all passed" : `${failed} failed`} in ${
      Date.now() - t0
    } ms`,
  );
  process.exitCode = failed === 0 ? 0 : 1;
}

// ------------------------------------------------------------- the middleware

function appWith(mm, mwOptions) {
  const app = new Hono();
  app.get("/healthz", (c) => c.text("ok")); // before the middleware: never blocked
  app.use(mm.middleware(mwOptions));
  app.get("/", (c) => c.json({ home: true, m: c.get("maintenance") }));
  app.get("/status/db", (c) => c.text("status"));
  app.get("/always", forceMaintenance(false), (c) => c.text("always"));
  app.get("/never", forceMaintenance(true), (c) => c.text("never"));
  app.post("/form", (c) => c.text("posted"));
  app.get("/down", (c) => c.text("down page"));
  return app;
}

async function middlewareChecks() {
  const mm = createMaintenance({
    bypass: bypassCookie(),
    store: new MemoryStore(),
  });
  const s = await start(appWith(mm, { ignorePaths: ["/status"] }).fetch);
  const p = s.port;
  let r = await get(H, p, "/");
  check(
    "middleware: off -> 200, c.get('maintenance').enabled false",
    r.status === 200 && JSON.parse(r.body).m.enabled === false,
    r.status,
  );
  r = await get(H, p, "/never");
  check("forceMaintenance(true) -> 503 while off", r.status === 503, r.status);

  await mm.enable({ message: "Back <soon>", retryAfter: 120 });
  r = await get(H, p, "/");
  check(
    "on -> 503 HTML page with escaped message",
    r.status === 503 && r.headers["content-type"]?.startsWith("text/html") &&
      r.body.includes("Back &lt;soon&gt;"),
    [r.status, r.headers["content-type"]],
  );
  check(
    "on -> Retry-After from the state, Cache-Control no-store",
    r.headers["retry-after"] === "120" &&
      r.headers["cache-control"] === "no-store",
    r.headers,
  );
  r = await get(H, p, "/", { headers: { accept: "application/json" } });
  check(
    "Accept: application/json -> JSON 503",
    r.status === 503 && r.headers["content-type"] === "application/json" &&
      JSON.parse(r.body).message === "Back <soon>",
    r.body,
  );
  r = await get(H, p, "/", { method: "HEAD" });
  check(
    "HEAD -> 503, headers, no body",
    r.status === 503 && r.headers["retry-after"] === "120" && r.body === "",
    r,
  );
  const [h, st, stx, always] = await Promise.all(
    ["/healthz", "/status/db", "/statusx", "/always"].map((x) => get(H, p, x)),
  );
  check("route before the middleware -> 200", h.status === 200, h.status);
  check(
    "ignorePaths '/status' -> /status/db 200, /statusx 503",
    st.status === 200 && stx.status === 503,
    [st.status, stx.status],
  );
  check(
    "forceMaintenance(false) -> 200 while on",
    always.status === 200,
    always.status,
  );

  await mm.enable({ message: "bypass", secret: SECRET });
  r = await get(H, p, `/${SECRET}`);
  const cookie = (r.headers["set-cookie"]?.[0] ?? "").split(";")[0];
  check(
    "GET /<secret> -> 302 to / with HttpOnly SameSite=Lax cookie (no Secure on http)",
    r.status === 302 && r.headers.location === "/" &&
      /HttpOnly; SameSite=Lax$/.test(r.headers["set-cookie"]?.[0] ?? ""),
    r.headers,
  );
  r = await get(H, p, "/", { headers: { cookie } });
  const m = r.status === 200 ? JSON.parse(r.body).m : undefined;
  check(
    "bypass cookie -> 200, handler sees enabled true, state without the hash",
    m?.enabled === true && m.bypass === true && m.state.bypass === undefined,
    r.status,
  );
  r = await get(H, p, "/", {
    headers: { cookie: cookie.slice(0, -3) + "AAA" },
  });
  check("tampered bypass cookie -> 503", r.status === 503, r.status);
  r = await get(H, p, "/never", { headers: { cookie } });
  check(
    "bypass cookie does not open forceMaintenance(true)",
    r.status === 503,
    r.status,
  );
  await s.close();

  const s2 = await start(appWith(mm, { redirectTo: "/down" }).fetch);
  const [g, post, target] = await Promise.all([
    get(H, s2.port, "/"),
    get(H, s2.port, "/form", {
      method: "POST",
      body: "a=1",
      headers: { "content-type": "application/x-www-form-urlencoded" },
    }),
    get(H, s2.port, "/down"),
  ]);
  check(
    "redirectTo: GET 302, POST 303, target itself not redirected",
    g.status === 302 && g.headers.location === "/down" && post.status === 303 &&
      target.status !== 302,
    [g.status, post.status, target.status],
  );
  await s2.close();
}

// ----------------------------------------------------- client IPs on real sockets

async function ipChecks() {
  const mm = createMaintenance({
    bypass: bypassCookie(),
    store: new MemoryStore(),
  });
  await mm.enable();
  const s = await start(appWith(mm, { ignoreIps: ["127.0.0.1"] }).fetch);
  let r = await get(H, s.port, "/");
  check(
    "ignoreIps ['127.0.0.1'] -> the real peer 127.0.0.1 passes",
    r.status === 200,
    r.status,
  );
  if (await canConnectFrom(s.port, "127.0.0.2")) {
    r = await get(H, s.port, "/", { from: "127.0.0.2" });
    check(
      "ignoreIps ['127.0.0.1'] -> peer 127.0.0.2 gets 503",
      r.status === 503,
      r.status,
    );
  } else skip("peer 127.0.0.2 gets 503", "no 127.0.0.2 on this machine");
  await s.close();

  if (await canBind("::")) {
    const s6 = await start(
      appWith(mm, { ignoreIps: ["127.0.0.0/8"] }).fetch,
      "::",
    );
    r = await get(H, s6.port, "/");
    check(
      "listening on '::': IPv4-mapped peer ::ffff:127.0.0.1 matches an IPv4 rule",
      r.status === 200,
      r.status,
    );
    if (await canBind("::1")) {
      r = await get("::1", s6.port, "/");
      check(
        "listening on '::': peer ::1 does not match 127.0.0.0/8",
        r.status === 503,
        r.status,
      );
    }
    await s6.close();
  } else skip("IPv4-mapped peer", "no IPv6");

  const s3 = await start(
    appWith(mm, { ignoreIps: ["10.1.2.3"], trustedProxies: 1 }).fetch,
  );
  const xff = (v) =>
    get(H, s3.port, "/", { headers: v ? { "x-forwarded-for": v } : {} });
  const [a, b, c, d] = await Promise.all([
    xff("10.1.2.3"),
    xff("9.9.9.9, 10.1.2.3:5678"),
    xff("10.1.2.3, 9.9.9.9"),
    xff(),
  ]);
  check(
    "trustedProxies 1: last X-Forwarded-For hop is the client (port stripped)",
    a.status === 200 && b.status === 200,
    [a.status, b.status],
  );
  check(
    "trustedProxies 1: spoofed first hop or no header -> 503",
    c.status === 503 && d.status === 503,
    [c.status, d.status],
  );
  await s3.close();
  const s4 = await start(appWith(mm, { ignoreIps: ["10.1.2.3"] }).fetch);
  r = await get(H, s4.port, "/", {
    headers: { "x-forwarded-for": "10.1.2.3" },
  });
  check(
    "trustedProxies 0: X-Forwarded-For ignored",
    r.status === 503,
    r.status,
  );
  await s4.close();
}

// ------------------------------------------------------------------ the guard

async function guardChecks() {
  const mm = createMaintenance({
    bypass: bypassCookie(),
    store: new MemoryStore(),
  });
  const app = new Hono();
  app.get(
    "/peer",
    (c) => c.text(String(c.env?.incoming?.socket?.remoteAddress)),
  );
  app.get("*", (c) => c.text("app"));
  app.post("/api", async (c) => c.json(await c.req.json()));
  const s = await start(guard(mm, app.fetch, {
    ignorePaths: ["/healthz"],
    ignoreIps: ["127.0.0.1"],
  }));
  let r = await get(H, s.port, "/peer");
  check(
    "guard passes Node's env on to the app (c.env.incoming)",
    r.body === "127.0.0.1",
    r.body,
  );
  await mm.enable({ message: "guarded" });
  r = await get(H, s.port, "/peer");
  check(
    "guard: ignoreIps sees the peer from serve()'s env -> 200",
    r.status === 200,
    r.status,
  );
  if (await canConnectFrom(s.port, "127.0.0.2")) {
    const [blocked, health, head] = await Promise.all([
      get(H, s.port, "/", { from: "127.0.0.2" }),
      get(H, s.port, "/healthz", { from: "127.0.0.2" }),
      get(H, s.port, "/", { from: "127.0.0.2", method: "HEAD" }),
    ]);
    check(
      "guard: other peer -> 503 with Retry-After and no-store",
      blocked.status === 503 && blocked.headers["retry-after"] === "300" &&
        blocked.headers["cache-control"] === "no-store",
      blocked.headers,
    );
    check(
      "guard: ignorePaths -> 200; HEAD -> 503 without body",
      health.status === 200 && head.status === 503 && head.body === "",
      [health.status, head.status],
    );
  } else skip("guard: other peer -> 503", "no 127.0.0.2 on this machine");
  await s.close();

  const s2 = await start(guard(mm, app.fetch, {
    ignoreRequest: async (req) => (await req.json()).token === "t",
  }));
  const J = { "content-type": "application/json" };
  const [ok, no] = await Promise.all([
    get(H, s2.port, "/api", {
      method: "POST",
      headers: J,
      body: '{"token":"t","n":1}',
    }),
    get(H, s2.port, "/api", {
      method: "POST",
      headers: J,
      body: '{"token":"x"}',
    }),
  ]);
  check(
    "guard: ignoreRequest reads the JSON body and the app still gets it",
    ok.status === 200 && JSON.parse(ok.body).n === 1 && no.status === 503,
    [ok.status, ok.body, no.status],
  );
  await mm.enable({ secret: SECRET });
  r = await get(H, s2.port, `/${SECRET}`);
  const cookie = (r.headers["set-cookie"]?.[0] ?? "").split(";")[0];
  const withCookie = await get(H, s2.port, "/", { headers: { cookie } });
  check(
    "guard: /<secret> sets the cookie, the cookie passes",
    r.status === 302 && withCookie.status === 200,
    [r.status, withCookie.status],
  );
  await s2.close();
}

// --------------------------------------- render: Responses from fetch(), Response.json()

async function renderChecks() {
  // @hono/node-server replaces globalThis.Response; a Response made by fetch() or by a
  // static method (Response.json) must still be sent as a Response, not as its text.
  const mm = createMaintenance({
    bypass: bypassCookie(),
    store: new MemoryStore(),
  });
  await mm.enable();
  for (
    const [name, render] of [
      ["c.html()", (c) => c.html("<p>own page</p>")],
      ["Response.json()", () => Response.json({ own: "page" })],
      ["fetch()", () => fetch("data:text/html,<p>own page</p>")],
    ]
  ) {
    const app = new Hono();
    app.use(mm.middleware({ render }));
    app.get("/", (c) => c.text("app"));
    const s = await start(app.fetch);
    const r = await get(H, s.port, "/");
    check(
      `render returning ${name} -> its body, 503, no-store, Retry-After`,
      r.status === 503 && r.body.includes("own") &&
        r.headers["cache-control"] === "no-store" &&
        r.headers["retry-after"] === "300",
      [r.status, r.body.slice(0, 40)],
    );
    await s.close();
  }
}

// ------------------------------------------------------- FileStore and the bin

async function fileStoreAndCliChecks(dir) {
  const file = join(dir, "state.txt");
  const mm = createMaintenance({
    bypass: bypassCookie(),
    store: new FileStore(file),
    cache: { ttlMs: 300 },
  });
  const s = await start(appWith(mm, {}).fetch);
  let r = await get(H, s.port, "/");
  check("FileStore: a missing file is off", r.status === 200, r.status);
  await mm.enable({ message: "from code" });
  const text = readFileSync(file, "utf8");
  check(
    "FileStore: enable() writes the JSON state, no temp file left",
    JSON.parse(text).message === "from code" &&
      readdirSync(dir).filter((n) => n.includes("state.txt")).length === 1,
    [text, readdirSync(dir)],
  );
  await mm.disable();

  // The bin, as `npx maintenance` runs it (node_modules/.bin links to this file).
  // (createRequire, not import.meta.resolve, which Node 20 before 20.6 lacks)
  const bin = join(
    createRequire(import.meta.url).resolve("@x/maintenance"),
    "..",
    "bin",
    "maintenance.mjs",
  );
  const cli = (...args) =>
    new Promise((resolve) =>
      execFile(
        process.execPath,
        [bin, ...args, "--file", file],
        (e, stdout, stderr) =>
          resolve({ code: e ? e.code : 0, stdout, stderr }),
      )
    );
  const until = async (status, ms) => {
    const end = Date.now() + ms;
    for (;;) {
      const res = await get(H, s.port, "/");
      if (res.status === status || Date.now() > end) return res;
      await sleep(25);
    }
  };
  let c = await cli("on", "--message", "from the cli", "--retry-after", "90");
  r = await until(503, 1500);
  check(
    "bin `maintenance on --file` -> running server serves 503 within the TTL",
    c.code === 0 && r.status === 503 && r.body.includes("from the cli") &&
      r.headers["retry-after"] === "90",
    [c, r.status],
  );
  c = await cli("status", "--json");
  let status;
  try {
    status = JSON.parse(c.stdout);
  } catch { /* checked below */ }
  check(
    "bin `status --json` -> enabled true, no bypass hash",
    c.code === 0 && status?.enabled === true && status.bypass === false,
    c,
  );
  c = await cli("off");
  r = await until(200, 1500);
  check(
    "bin `maintenance off` -> 200 again within the TTL",
    c.code === 0 && r.status === 200,
    [c, r.status],
  );
  c = await cli("on", "--mesage", "typo");
  check(
    "bin: a mistyped option -> exit 2 with a suggestion, nothing written",
    c.code === 2 && c.stderr.includes("--message") &&
      JSON.parse(readFileSync(file, "utf8")).enabled === false,
    c,
  );
  // `run`: on while its command runs (the command sees the 503), set back after,
  // and the command's exit status passed through.
  const probe = `(async () => { for (let i = 0; i < 120; i++) {` +
    ` const r = await fetch("http://${H}:${s.port}/"); await r.body?.cancel();` +
    ` if (r.status === 503) process.exit(7);` +
    ` await new Promise((ok) => setTimeout(ok, 25)); } process.exit(1); })()`;
  const ran = await new Promise((resolve) =>
    execFile(
      process.execPath,
      [
        bin,
        "run",
        "--file",
        file,
        "--note",
        "smoke",
        "--",
        process.execPath,
        "-e",
        probe,
      ],
      (e, stdout, stderr) => resolve({ code: e ? e.code : 0, stdout, stderr }),
    )
  );
  check(
    "bin `run -- node -e ...` -> the command sees 503, exits 7 through run, state set back to off",
    ran.code === 7 &&
      JSON.parse(readFileSync(file, "utf8")).enabled === false,
    ran,
  );
  await s.close();
}

// ------------------------------------------------------------------ admin routes

async function adminChecks(dir) {
  const mm = createMaintenance({
    bypass: bypassCookie(),
    store: new FileStore(join(dir, "admin_state.txt")),
  });
  const app = new Hono();
  app.use(mm.middleware());
  app.route(
    "/maintenance-mode",
    adminRoutes(mm, { authorize: bearerToken(TOKEN) }),
  );
  app.get("/", (c) => c.text("home"));
  const s = await start(app.fetch);
  const p = s.port;
  const auth = { authorization: `Bearer ${TOKEN}` };
  const admin = (path, opts = {}) =>
    get(H, p, `/maintenance-mode${path}`, {
      ...opts,
      headers: { ...auth, ...opts.headers },
    });
  const [noTok, wrong, getOn] = await Promise.all([
    get(H, p, "/maintenance-mode"),
    get(H, p, "/maintenance-mode", {
      headers: { authorization: "Bearer nope" },
    }),
    admin("/on"),
  ]);
  check(
    "admin: no token / wrong token -> 401; GET /on -> 405",
    noTok.status === 401 && wrong.status === 401 && getOn.status === 405,
    [noTok.status, wrong.status, getOn.status],
  );
  let r = await admin("/on", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      message: "json on",
      until: "2099-01-01T00:00:00Z",
      withSecret: true,
    }),
  });
  const body = r.status === 200 ? JSON.parse(r.body) : {};
  const site = await get(H, p, "/");
  check(
    "admin: POST /on (JSON, bearer) -> 200, secret once, site 503",
    r.status === 200 && typeof body.secret === "string" && site.status === 503,
    [r.status, site.status],
  );
  const visit = await get(H, p, `/${body.secret}`);
  check(
    "admin: the generated secret works as a bypass link",
    visit.status === 302,
    visit.status,
  );
  const form =
    "message=line+one%0D%0Aline+two&retryAfter=60&until=2099-01-01T00%3A00%3A00%2B02%3A00";
  const F = { "content-type": "application/x-www-form-urlencoded" };
  // A script's form carries the bearer token: not a cross-site form.
  r = await admin("/on", { method: "POST", headers: F, body: form });
  check(
    "admin: form body with the bearer token, without Origin -> 200 (curl's form)",
    r.status === 200,
    r.status,
  );
  r = await admin("/on", {
    method: "POST",
    headers: { ...F, origin: "https://evil.example" },
    body: form,
  });
  check(
    "admin: form body from another site's Origin -> 403 (CSRF)",
    r.status === 403,
    r.status,
  );
  r = await admin("/on", {
    method: "POST",
    headers: { ...F, origin: `http://${H}:${p}` },
    body: form,
  });
  const st = r.status === 200 ? JSON.parse(r.body).state : {};
  check(
    "admin: form body with own Origin -> 200, CR LF kept as newline, %2B offset",
    r.status === 200 && st.message === "line one\nline two" &&
      st.retryAfter === 60 &&
      st.endsAt === "2098-12-31T22:00:00.000Z",
    [r.status, r.body.slice(0, 200)],
  );
  r = await admin("/on", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: '{"mesage":"x"}',
  });
  check(
    "admin: unknown field -> 400 naming it",
    r.status === 400 && r.body.includes("mesage"),
    r.body,
  );
  r = await admin("/off", { method: "POST" });
  const after = await get(H, p, "/");
  check(
    "admin: POST /off (no body) -> 200, site 200",
    r.status === 200 && after.status === 200,
    [r.status, after.status],
  );
  await s.close();
}

// --------------------------------------------------------- clean process exit

async function exitCheck(dir) {
  const t = Date.now();
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url)], {
    env: { ...process.env, SMOKE_EXIT_CHILD: "1", SMOKE_DIR: dir },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (d) => out += d);
  child.stderr.on("data", (d) => out += d);
  const code = await new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.kill();
      resolve("timeout");
    }, 5000);
    child.on("exit", (c) => {
      clearTimeout(timer);
      resolve(c);
    });
  });
  check(
    `process exits by itself once the server is closed (${
      Date.now() - t
    } ms, cache TTL 30 s)`,
    code === 0 && out.includes("statuses 302 200 503"),
    [code, out],
  );
}
