// Smoke test of the npm build of @x/maintenance on Cloudflare Workers, in workerd (the
// runtime Cloudflare runs) through wrangler's local dev server: no account, no network.
//
// Run from a project that has the package, hono and wrangler installed:
//   node npm_smoke_workers.mjs   (scripts/npm_smoke.ts runs it as workers.mjs)
// It writes a Worker (the state in Workers KV, which wrangler simulates locally) and a
// wrangler.toml WITHOUT nodejs_compat, starts it, and prints one `ok - ...` (or
// `not ok - ...`) line per check; exits 1 if any check failed. The Worker uses the
// core's middleware, `@x/maintenance/admin`'s routes and, for paths under /g/,
// `@x/maintenance/guard` around `app.fetch`.
import { writeFileSync } from "node:fs";
import process from "node:process";
import { unstable_startWorker } from "wrangler";

const TOKEN = "smoke-admin-token-0123456789abcdef";

const WORKER = `
import { Hono } from "hono";
import { createMaintenance } from "@x/maintenance";
import { adminRoutes, bearerToken } from "@x/maintenance/admin";
import { guard } from "@x/maintenance/guard";

let kv;
/** The maintenance state in one Workers KV key. */
const store = {
  description: "kv:maintenance_mode_state",
  read: () => kv.get("maintenance_mode_state"),
  write: (text) => kv.put("maintenance_mode_state", text),
};
const errors = [];
const mm = createMaintenance({
  store,
  cache: { ttlMs: 500 },
  onError: (e) => errors.push(e.message),
});
const app = new Hono();
app.use(async (c, next) => {
  kv = c.env.STATE;
  await next();
});
app.get("/healthz", (c) => c.text("ok"));
app.get("/g/healthz", (c) => c.text("ok"));
app.route("/maintenance-mode", adminRoutes(mm, { authorize: bearerToken("${TOKEN}") }));
app.post("/_on", async (c) => c.json(await mm.enable({ message: "Back <soon>" })));
app.post("/_off", async (c) => c.json(await mm.disable()));
// Another isolate, the dashboard or wrangler kv writing the key: not this controller.
app.post("/_raw", async (c) => {
  await c.env.STATE.put("maintenance_mode_state", await c.req.text());
  return c.text("written");
});
app.get("/_errors", (c) => c.json(errors));
// No store given: the default FileStore cannot work here; say so at construction.
app.get("/_nostore", (c) => {
  try {
    createMaintenance();
    return c.text("made");
  } catch (e) {
    return c.text(e.name + ": " + e.message);
  }
});
app.use(mm.middleware({
  ignorePaths: ["/_on", "/_off", "/_raw", "/_errors", "/_nostore"],
  ignoreIps: ["203.0.113.7"],
  getClientIp: (c) => c.req.header("cf-connecting-ip"),
}));
app.get("*", (c) => c.text("hello " + c.req.path));
// /g/* goes through the fetch-level guard first, as export default { fetch: guard(...) }.
const guarded = guard(mm, app.fetch, { ignorePaths: ["/g/healthz"] });
export default {
  fetch(req, env, ctx) {
    kv = env.STATE;
    return new URL(req.url).pathname.startsWith("/g/")
      ? guarded(req, env, ctx)
      : app.fetch(req, env, ctx);
  },
};
`;

const CONFIG = `name = "maintenance-smoke"
main = "worker.js"
compatibility_date = "2026-04-20"
# no compatibility_flags: importing @x/maintenance must not need nodejs_compat

[[kv_namespaces]]
binding = "STATE"
id = "00000000000000000000000000000000"
`;

let failed = 0;
function check(name, ok, detail) {
  if (ok) console.log(`ok - ${name}`);
  else {
    failed++;
    console.log(`not ok - ${name} :: ${JSON.stringify(detail)}`);
  }
}

writeFileSync("worker.js", WORKER);
writeFileSync("wrangler.toml", CONFIG);
const t0 = Date.now();
let worker;
try {
  worker = await unstable_startWorker({
    config: "wrangler.toml",
    dev: {
      server: { hostname: "127.0.0.1", port: 0 },
      inspector: false,
      persist: false,
    },
  });
  await worker.ready;
} catch (e) {
  check("the Worker starts without nodejs_compat", false, String(e));
  process.exit(1);
}
check(`the Worker starts without nodejs_compat (${Date.now() - t0} ms)`, true);

async function req(path, init = {}) {
  const r = await worker.fetch(`http://smoke.example${path}`, init);
  return { status: r.status, headers: r.headers, text: await r.text() };
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

try {
  let r = await req("/");
  check("off: 200 from the app", r.status === 200 && r.text === "hello /", r);
  await req("/_on", { method: "POST" });
  r = await req("/");
  check(
    "on: 503 page, message escaped, Retry-After, no-store",
    r.status === 503 && r.text.includes("Back &lt;soon&gt;") &&
      r.headers.get("retry-after") === "300" &&
      r.headers.get("cache-control") === "no-store",
    { status: r.status, head: r.text.slice(0, 80) },
  );
  r = await req("/", { headers: { accept: "application/json" } });
  check(
    "on: JSON when asked",
    r.status === 503 && r.text.includes('"maintenance"'),
    r,
  );
  r = await req("/healthz");
  check(
    "on: a route registered before the middleware: 200",
    r.status === 200,
    r,
  );
  r = await req("/x", { headers: { "cf-connecting-ip": "203.0.113.7" } });
  check(
    "on: ignoreIps with getClientIp from CF-Connecting-IP: 200",
    r.status === 200,
    r,
  );
  r = await req("/x", { headers: { "cf-connecting-ip": "198.51.100.1" } });
  check("on: another CF-Connecting-IP: 503", r.status === 503, r.status);
  const [guardOn, guardHealth] = [await req("/g/x"), await req("/g/healthz")];
  check(
    "on: @x/maintenance/guard answers 503 before the app; its ignorePaths pass",
    guardOn.status === 503 && guardOn.text.includes("Back &lt;soon&gt;") &&
      guardHealth.status === 200,
    [guardOn.status, guardHealth.status],
  );
  const auth = { authorization: `Bearer ${TOKEN}` };
  const [noToken, admin] = [
    await req("/maintenance-mode"),
    await req("/maintenance-mode", { headers: auth }),
  ];
  let adminState;
  try {
    adminState = JSON.parse(admin.text);
  } catch { /* checked below */ }
  check(
    "on: @x/maintenance/admin: 401 without the token, the state with it",
    noToken.status === 401 && admin.status === 200 &&
      adminState?.enabled === true,
    [noToken.status, admin.status, admin.text.slice(0, 120)],
  );

  // A switch this isolate did not make: seen within the TTL (500 ms) plus a little,
  // although workerd drops a request's timers when it ends.
  await req("/_raw", { method: "POST", body: "0" });
  let seenAt;
  const start = Date.now();
  while (Date.now() - start < 3000) {
    if ((await req("/")).status === 200) {
      seenAt = Date.now() - start;
      break;
    }
    await sleep(50);
  }
  check(
    `an outside switch (KV written directly) is seen after the TTL (${seenAt} ms)`,
    seenAt !== undefined && seenAt < 1500,
    seenAt,
  );
  r = await req("/maintenance-mode/on", {
    method: "POST",
    headers: { ...auth, "content-type": "application/json" },
    body: JSON.stringify({ message: "from the admin routes" }),
  });
  const viaAdmin = await req("/g/x");
  check(
    "@x/maintenance/admin POST /on switches the Worker on (seen by the guard)",
    r.status === 200 && viaAdmin.status === 503 &&
      viaAdmin.text.includes("from the admin routes"),
    [r.status, viaAdmin.status],
  );
  await req("/_off", { method: "POST" });
  r = await req("/");
  const guardOff = await req("/g/x");
  check(
    "off again: 200, through the guard too",
    r.status === 200 && guardOff.status === 200 &&
      guardOff.text === "hello /g/x",
    [r.status, guardOff.status],
  );
  r = await req("/_nostore");
  check(
    "createMaintenance() without a store: a TypeError saying to pass one",
    /^TypeError: pass a store: a Cloudflare Worker has no file system/.test(
      r.text,
    ),
    r.text,
  );
  r = await req("/_errors");
  check("onError heard nothing", r.text === "[]", r.text);
} finally {
  await worker.dispose();
}
console.log(`# workers: ${Date.now() - t0} ms`);
process.exitCode = failed === 0 ? 0 : 1;
