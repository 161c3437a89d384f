// Smoke test of the npm build of @x/maintenance on Cloudflare Workers, in workerd (the
// runtime Cloudflare runs) through wrangler's local dev server: no account, no network.
//
// Run from a project that has the package, hono and wrangler installed:
//   node npm_smoke_workers.mjs   (scripts/npm_smoke.ts runs it as workers.mjs)
// It writes a Worker and a wrangler.toml WITHOUT nodejs_compat, starts it, and prints
// one `ok - ...` (or `not ok - ...`) line per check; exits 1 if any check failed. The
// Worker keeps its state in Workers KV through `WorkersKvStore` and, under /r2/, in R2
// through `R2Store` (both from `@x/maintenance/cloudflare`, over the bindings wrangler
// simulates locally), and uses the core's middleware, `@x/maintenance/admin`'s routes
// and, for paths under /g/, `@x/maintenance/guard` around `app.fetch`. No module-level
// variable is overwritten per request: the KV app is made once, from the first
// request's env; the R2 controller from `env` of `cloudflare:workers`.
import { writeFileSync } from "node:fs";
import process from "node:process";
import { unstable_startWorker } from "wrangler";

const TOKEN = "smoke-admin-token-0123456789abcdef";
const KEY = "maintenance_mode_state.txt";

const WORKER = `
import { env as imported } from "cloudflare:workers";
import { Hono } from "hono";
import { createMaintenance } from "@x/maintenance";
import { adminRoutes, bearerToken } from "@x/maintenance/admin";
import { guard } from "@x/maintenance/guard";
import { R2Store, WorkersKvStore } from "@x/maintenance/cloudflare";

const errors = [];
// R2: the binding imported from cloudflare:workers, the controller made at load.
const r2mm = createMaintenance({
  store: new R2Store(imported.BUCKET),
  cache: { ttlMs: 500 },
  onError: (e) => errors.push(e.message),
});

/** The app and its KV controller, made once per isolate from the first request's env. */
function createApp(env) {
  const mm = createMaintenance({
    store: new WorkersKvStore(env.STATE),
    cache: { ttlMs: 500 },
    onError: (e) => errors.push(e.message),
  });
  const app = new Hono();
  app.get("/healthz", (c) => c.text("ok"));
  app.get("/g/healthz", (c) => c.text("ok"));
  app.route("/maintenance-mode", adminRoutes(mm, { authorize: bearerToken("${TOKEN}") }));
  app.post("/_on", async (c) => c.json(await mm.enable({ message: "Back <soon>" })));
  app.post("/_off", async (c) => c.json(await mm.disable()));
  // Another isolate, the dashboard or wrangler writing the key: not this controller.
  app.post("/_raw", async (c) => {
    await c.env.STATE.put("${KEY}", await c.req.text());
    return c.text("written");
  });
  app.post("/_raw_r2", async (c) => {
    await c.env.BUCKET.put("${KEY}", await c.req.text());
    return c.text("written");
  });
  // A value over 64 KiB in the real bindings: refused, the R2 body left unread.
  app.get("/_big", async (c) => {
    const big = "x".repeat(70000);
    await c.env.STATE.put("big.txt", big);
    await c.env.BUCKET.put("big.txt", big);
    const code = async (store) => {
      try {
        return "read " + (await store.read()).length;
      } catch (e) {
        return e.name + " " + e.code + ": " + e.message;
      }
    };
    return c.json({
      kv: await code(new WorkersKvStore(c.env.STATE, { key: "big.txt" })),
      r2: await code(new R2Store(c.env.BUCKET, { key: "big.txt" })),
      missing: await new R2Store(c.env.BUCKET, { key: "none.txt" }).read(),
      description: [
        new WorkersKvStore(c.env.STATE).description,
        new R2Store(c.env.BUCKET).description,
      ],
    });
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
  app.use("/r2/*", r2mm.middleware());
  app.use(mm.middleware({
    ignorePaths: ["/_on", "/_off", "/_raw", "/_raw_r2", "/_big", "/_errors", "/_nostore"],
    ignoreIps: ["203.0.113.7"],
    getClientIp: (c) => c.req.header("cf-connecting-ip"),
  }));
  app.get("*", (c) => c.text("hello " + c.req.path));
  // /g/* goes through the fetch-level guard first, as export default { fetch: guard(...) }.
  return { app, guarded: guard(mm, app.fetch, { ignorePaths: ["/g/healthz"] }) };
}

let made; // set on the first request, never replaced
export default {
  fetch(req, env, ctx) {
    made ??= createApp(env);
    return new URL(req.url).pathname.startsWith("/g/")
      ? made.guarded(req, env, ctx)
      : made.app.fetch(req, env, ctx);
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

[[r2_buckets]]
binding = "BUCKET"
bucket_name = "maintenance"
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
    `KV: an outside switch (the key written directly) is seen after the TTL (${seenAt} ms)`,
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

  // R2, through R2Store over the binding imported from cloudflare:workers.
  r = await req("/r2/x");
  check("R2: no object: off, 200", r.status === 200, r.status);
  const waitFor = async (path, status) => {
    const start = Date.now();
    while (Date.now() - start < 3000) {
      if ((await req(path)).status === status) return Date.now() - start;
      await sleep(50);
    }
    return undefined;
  };
  await req("/_raw_r2", {
    method: "POST",
    body: '{"enabled":true,"message":"r2 <on>"}',
  });
  const r2On = await waitFor("/r2/x", 503);
  r = await req("/r2/x");
  check(
    `R2: an outside switch (the object written directly) is seen after the TTL (${r2On} ms)`,
    r2On !== undefined && r2On < 1500 && r.text.includes("r2 &lt;on&gt;"),
    [r2On, r.status],
  );
  await req("/_raw_r2", { method: "POST", body: "0" });
  const r2Off = await waitFor("/r2/x", 200);
  check(
    `R2: switched off the same way (${r2Off} ms)`,
    r2Off !== undefined && r2Off < 1500,
    r2Off,
  );
  r = await req("/_big");
  let big;
  try {
    big = JSON.parse(r.text);
  } catch { /* checked below */ }
  check(
    "real bindings: a value over 64 KiB is a StoreError EFBIG (KV and R2); no object: null",
    /^StoreError EFBIG: cannot read maintenance state kv:big\.txt: .*64 KiB/
      .test(
        big?.kv,
      ) &&
      /^StoreError EFBIG: cannot read maintenance state r2:big\.txt: .*\(70000 bytes\)/
        .test(big?.r2) &&
      big?.missing === null &&
      big?.description?.join() === `kv:${KEY},r2:${KEY}`,
    r.text.slice(0, 400),
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
