/**
 * `deno task test:npm`: builds the npm package (scripts/build_npm.ts) and uses the
 * tarball as a user would, in fresh temporary projects: one installed with npm and run
 * by Node, one installed with `bun add` and run by Bun. In each:
 *
 * - the `maintenance` bin, run as the README says (`npx @x/maintenance`, `bunx --bun
 *   @x/maintenance`: a bare `npx maintenance` outside a project runs an unrelated npm
 *   package), offline (`--no`/`--no-install`, npm offline and an unreachable registry,
 *   so the locally installed package is what runs), `on`, `status --json`, `off --json`,
 *   `status --exit-code` (3 when on), `--version` (the package.json version) and a usage
 *   error (one line and `run 'maintenance --help'`), on a state file before Hono or the
 *   AWS SDK is installed (so the CLI loads neither), and on an S3 object in a real
 *   s3rver once the SDK is;
 * - `import "@x/maintenance"` with the project's Hono, before the AWS SDK is installed:
 *   a request through `app.fetch` gets 503 while on and 200 when off, and the state file
 *   the bin wrote switches the app on;
 * - the subpath entry points: `@x/maintenance/admin` (`adminRoutes(mm, { authorize })`
 *   switches the app on and off) behind `@x/maintenance/guard` (`guard(mm, app.fetch)`),
 *   and none of their names on the core; `@x/maintenance/redis` (`redisCache(client)`)
 *   over a real node-redis client and redis-server, once `redis` is installed;
 *   `@x/maintenance/deno-kv` (`DenoKvStore`) on Node over `@deno/kv`'s `openKv(path)`:
 *   a switch through a second handle is served through the watch;
 * - `import "@x/maintenance/s3"` reads the object the bin wrote (503), and
 *   `@x/maintenance/cli`'s `runCli` reads it too;
 * - in the npm project, `tsc --noEmit` (`module: NodeNext`, strict, no `skipLibCheck`)
 *   type-checks a consumer file of every entry point against the published `.d.ts`;
 * - on Node, behind real `@hono/node-server` 1.x and 2.x servers
 *   (`scripts/npm_smoke_node_server.mjs`), and in Cloudflare's workerd through wrangler
 *   (`scripts/npm_smoke_workers.mjs`).
 *
 * hono, redis and @aws-sdk/client-s3 come from the npm registry at the versions in this
 * repo's node_modules (so npm's cache usually has them). Prints the runtimes' versions, one
 * line per check and `N passed, N failed` last; exits 1 when any check failed.
 *
 * Usage: deno task test:npm [--keep] [--node-only | --bun-only] [--no-build]
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import {
  type RedisHandle,
  S3RVER_CREDENTIALS,
  type S3rverHandle,
  startRedis,
  startS3rver,
} from "./test_servers.ts";

const root = resolve(fileURLToPath(new URL("..", import.meta.url)));
const args = process.argv.slice(2);
const keep = args.includes("--keep");
const nodeOnly = args.includes("--node-only");
const bunOnly = args.includes("--bun-only");
const COMMAND_TIMEOUT_MS = 180_000;

let passed = 0;
let failed = 0;

function check(name: string, ok: boolean, detail = ""): boolean {
  if (ok) passed++;
  else failed++;
  console.log(`${ok ? "ok" : "FAIL"} - ${name}`);
  if (!ok && detail.trim() !== "") {
    console.log(detail.trim().split("\n").map((l) => `    ${l}`).join("\n"));
  }
  return ok;
}

interface Ran {
  code: number;
  out: string;
  err: string;
}

/** The environment of the commands: this one, less what would change the CLI or tests. */
function baseEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined) continue;
    if (
      /^(MAINTENANCE_|AWS_|NODE_ENV$|NODE_TEST_CONTEXT$|NODE_OPTIONS$)/.test(k)
    ) {
      continue;
    }
    env[k] = v;
  }
  return { ...env, NO_COLOR: "1", ...extra };
}

function sh(
  cmd: string,
  argv: string[],
  cwd: string,
  env: Record<string, string> = baseEnv(),
): Ran {
  const t0 = Date.now();
  const r = spawnSync(cmd, argv, {
    cwd,
    env,
    encoding: "utf8",
    timeout: COMMAND_TIMEOUT_MS,
    maxBuffer: 64 * 1024 * 1024,
  });
  const err = r.error
    ? `${r.stderr ?? ""}\n${cmd}: ${r.error.message}`
    : (r.stderr ?? "");
  const took = (Date.now() - t0) / 1000;
  if (took > 3) {
    console.log(
      `  (${took.toFixed(1)} s: ${cmd} ${argv.slice(0, 3).join(" ")})`,
    );
  }
  return { code: r.status ?? 1, out: r.stdout ?? "", err };
}

function show(r: Ran): string {
  return `exit ${r.code}\n${r.out}\n${r.err}`.trim();
}

function version(cmd: string, argv: string[]): string | undefined {
  const r = sh(cmd, argv, root);
  return r.code === 0 ? r.out.trim().split("\n")[0] : undefined;
}

/** The version installed in this repo's node_modules, else the range in package.json. */
function pinned(name: string): string {
  const installed = join(root, "node_modules", name, "package.json");
  if (existsSync(installed)) {
    return (JSON.parse(readFileSync(installed, "utf8")) as { version: string })
      .version;
  }
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
    dependencies?: Record<string, string>;
    devDependencies?: Record<string, string>;
  };
  const range = pkg.dependencies?.[name] ?? pkg.devDependencies?.[name];
  if (range === undefined) {
    throw new Error(`package.json lists no ${name}; add it to devDependencies`);
  }
  return range;
}

/** Runs a consumer script and counts its `ok - ` / `not ok - ` lines as checks. */
function consumer(
  label: string,
  runtime: string[],
  script: string,
  argv: string[],
  cwd: string,
  env: Record<string, string>,
): void {
  const r = sh(runtime[0], [...runtime.slice(1), script, ...argv], cwd, env);
  let seen = 0;
  for (const line of r.out.split("\n")) {
    const m = /^(ok|not ok) - (.*)$/.exec(line);
    if (m) {
      seen++;
      const [name, detail] = m[2].split(" :: ");
      check(`${label}: ${name}`, m[1] === "ok", detail ?? "");
    } else if (line.startsWith("# ")) console.log(`  ${line}`);
  }
  if (r.code !== 0 || seen === 0) {
    check(`${label}: ${script} exits 0 after its checks`, false, show(r));
  }
}

/**
 * The environment for running the bin with `npx` or `bunx`: no registry can be reached
 * (npm offline, an unreachable registry for npm and Bun), so what runs is the package
 * installed in the project, never one of the same name from the registry.
 */
function offlineEnv(env: Record<string, string>): Record<string, string> {
  const nowhere = "http://127.0.0.1:9/";
  return {
    ...env,
    npm_config_offline: "true",
    npm_config_registry: nowhere,
    NPM_CONFIG_REGISTRY: nowhere,
    BUN_CONFIG_REGISTRY: nowhere,
  };
}

/**
 * Checks the bin: `on` (with a message; names the store), `status --json`, `off --json`,
 * `status --json`, `on`, `status --exit-code` (3), a usage error, on the store that
 * `where` names (`--file x` or `--s3 s3://…`).
 */
function binRound(
  label: string,
  bin: string[],
  cwd: string,
  where: string[],
  env: Record<string, string>,
): void {
  const run = (a: string[]) =>
    sh(bin[0], [...bin.slice(1), ...a], cwd, offlineEnv(env));
  const on = run(["on", ...where, "--message", "Back <soon>"]);
  check(
    `${label}: \`maintenance on ${
      where.join(" ")
    }\` exits 0, says ON and names the store`,
    on.code === 0 && /\bON\b/.test(on.out) && on.out.includes(where[1]),
    show(on),
  );
  const status = (expected: boolean) => {
    const r = run(["status", "--json", ...where]);
    let enabled: unknown;
    try {
      enabled = (JSON.parse(r.out) as { enabled: unknown }).enabled;
    } catch {
      enabled = undefined;
    }
    check(
      `${label}: \`maintenance status --json\` says enabled: ${expected}`,
      r.code === 0 && enabled === expected,
      show(r),
    );
  };
  status(true);
  const off = run(["off", "--json", ...where]);
  let offJson: { enabled?: unknown; store?: unknown } = {};
  try {
    offJson = JSON.parse(off.out);
  } catch {
    // checked below
  }
  check(
    `${label}: \`maintenance off --json\` exits 0 with one JSON object, enabled: false`,
    off.code === 0 && offJson.enabled === false &&
      offJson.store === where[1] && off.out.trim().split("\n").length === 1,
    show(off),
  );
  status(false);
  // Leave the state on for the consumer scripts that read it.
  const again = run(["on", ...where, "--message", "Back <soon>"]);
  check(
    `${label}: \`maintenance on\` again exits 0`,
    again.code === 0,
    show(again),
  );
  const probe = run(["status", "--exit-code", ...where]);
  check(
    `${label}: \`maintenance status --exit-code\` exits 3 while on`,
    probe.code === 3 && /^maintenance mode is ON/.test(probe.out),
    show(probe),
  );
  const usage = run(["frobnicate"]);
  check(
    `${label}: an unknown command exits 2, one line and run 'maintenance --help'`,
    usage.code === 2 &&
      /^error: unknown command "frobnicate".*\nrun 'maintenance --help'/.test(
        usage.err,
      ) && !/Usage:/.test(usage.err),
    show(usage),
  );
}

/** Checks that `bin` (`npx … --` or `bunx …`) `--version` prints the package's version. */
function binVersion(
  label: string,
  bin: string[],
  cwd: string,
  expected: string,
): void {
  const r = sh(
    bin[0],
    [...bin.slice(1), "--version"],
    cwd,
    offlineEnv(baseEnv()),
  );
  check(
    `${label}: \`${bin.join(" ")} --version\` prints ${expected}`,
    r.code === 0 && r.out === `${expected}\n`,
    show(r),
  );
}

// The consumer scripts are plain JS, run as they are by Node and by Bun.
const CHECK_JS = `
import process from "node:process";
export function check(name, ok, detail = "") {
  const d = ok || !detail ? "" : " :: " + String(detail).replace(/\\n/g, " | ");
  console.log((ok ? "ok - " : "not ok - ") + name + d);
}
export function runtime() {
  return globalThis.Bun ? "bun " + globalThis.Bun.version : "node " + process.versions.node;
}
export function ensure(promise, name) {
  return promise.catch((e) => {
    check(name + " ran to the end", false, e && e.stack ? e.stack : e);
    process.exitCode = 1;
  });
}
`;

const CORE_JS = `
// import "@x/maintenance" with Hono (no AWS SDK installed): 503 on, 200 off, and the
// state file the bin wrote switches a FileStore app on.
import process from "node:process";
import { Hono } from "hono";
import { check, ensure, runtime } from "./check.mjs";

async function main() {
  const [stateFile] = process.argv.slice(2);
  console.log("# " + runtime());
  const lib = await import("@x/maintenance");
  check('import "@x/maintenance"', typeof lib.createMaintenance === "function");
  const mm = lib.createMaintenance({ store: new lib.MemoryStore() });
  const app = new Hono();
  app.get("/healthz", (c) => c.text("ok"));
  app.use(mm.middleware());
  app.get("/", (c) => c.text("hello"));
  const get = (path, accept = "text/html") =>
    app.fetch(new Request("http://localhost" + path, { headers: { accept } }));

  let res = await get("/");
  check("200 before enable()", res.status === 200 && (await res.text()) === "hello", res.status);
  await mm.enable({ message: "Back <soon>", retryAfter: 120 });
  res = await get("/");
  const body = await res.text();
  check("503 while on", res.status === 503, res.status);
  check("Retry-After: 120", res.headers.get("retry-after") === "120", res.headers.get("retry-after"));
  check("the page escapes the message", body.includes("Back &lt;soon&gt;") && !body.includes("<soon>"), body.slice(0, 300));
  res = await get("/", "application/json");
  check("JSON 503 for Accept: application/json", res.status === 503 && /json/.test(res.headers.get("content-type") ?? ""), res.headers.get("content-type"));
  res = await get("/healthz");
  check("a route registered before the middleware passes", res.status === 200, res.status);
  await mm.disable();
  res = await get("/");
  check("200 after disable()", res.status === 200 && (await res.text()) === "hello", res.status);

  const fileMm = lib.createMaintenance({ store: new lib.FileStore(stateFile) });
  const fileApp = new Hono();
  fileApp.use(fileMm.middleware());
  fileApp.get("/", (c) => c.text("hello"));
  res = await fileApp.fetch(new Request("http://localhost/", { headers: { accept: "text/html" } }));
  const fileBody = await res.text();
  check("the state file the bin wrote gives 503 with its message", res.status === 503 && fileBody.includes("Back &lt;soon&gt;"), res.status);
}
await ensure(main(), "core.mjs");
`;

const S3_JS = `
// import "@x/maintenance/s3": the object the bin wrote in s3rver switches the app on;
// runCli from "@x/maintenance/cli" reads it too.
import process from "node:process";
import { Hono } from "hono";
import { check, ensure, runtime } from "./check.mjs";

async function main() {
  const [url] = process.argv.slice(2);
  console.log("# " + runtime());
  const { createMaintenance } = await import("@x/maintenance");
  const s3 = await import("@x/maintenance/s3");
  check('import "@x/maintenance/s3"', typeof s3.S3Store === "function");
  const bucket = new URL(url).host;
  const key = new URL(url).pathname.slice(1);
  const store = new s3.S3Store({
    bucket,
    key,
    endpoint: process.env.MAINTENANCE_S3_ENDPOINT,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: {
      accessKeyId: process.env.AWS_ACCESS_KEY_ID,
      secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY,
    },
  });
  try {
    const mm = createMaintenance({ store });
    const app = new Hono();
    app.use(mm.middleware());
    app.get("/", (c) => c.text("hello"));
    const res = await app.fetch(new Request("http://localhost/", { headers: { accept: "text/html" } }));
    const body = await res.text();
    check("the S3 object the bin wrote gives 503 with its message", res.status === 503 && body.includes("Back &lt;soon&gt;"), res.status + " " + body.slice(0, 200));
  } finally {
    store.client.destroy();
  }
  const cli = await import("@x/maintenance/cli");
  const lines = [];
  const code = await cli.runCli(["status", "--json", "--s3", url], { out: (l) => lines.push(l), err: (l) => lines.push(l) });
  let enabled;
  try { enabled = JSON.parse(lines[0]).enabled; } catch { enabled = undefined; }
  check('runCli(["status", "--json", "--s3", ...]) from "@x/maintenance/cli"', code === 0 && enabled === true, code + " " + lines.join(" | "));
}
await ensure(main(), "s3.mjs");
`;

const SUBPATHS_JS = `
// The subpath entry points with Hono: admin routes behind the fetch-level guard; the
// names that moved out of the core are not on it.
import { Hono } from "hono";
import { check, ensure, runtime } from "./check.mjs";

const TOKEN = "smoke-admin-token-0123456789abcdef";

async function main() {
  console.log("# " + runtime());
  const core = await import("@x/maintenance");
  const moved = ["adminRoutes", "bearerToken", "guard", "redisCache", "S3Store", "runCli", "DenoKvStore"]
    .filter((n) => n in core);
  check('import "@x/maintenance" has none of the names of the subpath entries', moved.length === 0, moved.join(", "));
  const { adminRoutes, bearerToken } = await import("@x/maintenance/admin");
  const { guard } = await import("@x/maintenance/guard");
  const { redisCache } = await import("@x/maintenance/redis");
  const { DenoKvStore } = await import("@x/maintenance/deno-kv");
  check(
    'import "@x/maintenance/admin", "@x/maintenance/guard", "@x/maintenance/redis", "@x/maintenance/deno-kv"',
    [adminRoutes, bearerToken, guard, redisCache, DenoKvStore].every((f) => typeof f === "function"),
  );
  const mm = core.createMaintenance({ store: new core.MemoryStore() });
  const app = new Hono();
  app.get("/healthz", (c) => c.text("ok"));
  app.route("/maintenance-mode", adminRoutes(mm, { authorize: bearerToken(TOKEN) }));
  app.use(mm.middleware());
  app.get("*", (c) => c.text("app"));
  const fetch = guard(mm, app.fetch, {
    ignorePaths: ["/healthz", /^\\/maintenance-mode(\\/(on|off))?$/],
  });
  const req = (path, init = {}) =>
    fetch(new Request("http://localhost" + path, {
      ...init,
      headers: { accept: "text/html", ...init.headers },
    }));
  const auth = { authorization: "Bearer " + TOKEN };
  let res = await req("/maintenance-mode");
  check("admin: no token -> 401", res.status === 401, res.status);
  res = await req("/maintenance-mode", { headers: auth });
  const state = res.status === 200 ? await res.json() : {};
  check("admin: GET with the token -> 200, off", res.status === 200 && state.enabled === false, JSON.stringify(state));
  res = await req("/maintenance-mode/on", {
    method: "POST",
    headers: { ...auth, "content-type": "application/json" },
    body: JSON.stringify({ message: "Switched <by admin>" }),
  });
  check("admin: POST /on (JSON, bearer) -> 200", res.status === 200, res.status + " " + (await res.text()).slice(0, 200));
  res = await req("/");
  const body = await res.text();
  check("guard: 503 with the admin's message while on", res.status === 503 && body.includes("Switched &lt;by admin&gt;"), res.status);
  res = await req("/healthz");
  check("guard: ignorePaths /healthz -> 200 while on", res.status === 200, res.status);
  res = await req("/maintenance-mode/off", { method: "POST", headers: auth });
  check("admin: POST /off through the guard -> 200", res.status === 200, res.status);
  res = await req("/");
  check("guard: 200 from the app when off", res.status === 200 && (await res.text()) === "app", res.status);
}
await ensure(main(), "subpaths.mjs");
`;

const REDIS_JS = `
// import "@x/maintenance/redis" with node-redis against a real redis-server.
import process from "node:process";
import { Hono } from "hono";
import { createClient } from "redis";
import { check, ensure, runtime } from "./check.mjs";

async function main() {
  const [url] = process.argv.slice(2);
  console.log("# " + runtime());
  const { createMaintenance, MemoryStore } = await import("@x/maintenance");
  const { redisCache } = await import("@x/maintenance/redis");
  const client = await createClient({ url }).connect();
  const prefix = "smoke:" + Math.random().toString(36).slice(2) + ":";
  try {
    const cache = redisCache(client, { prefix });
    await cache.set("k", "v", 60);
    const got = await cache.get("k");
    await cache.delete("k");
    const gone = await cache.get("k");
    check("redisCache(client): set, get, delete on redis-server", got === "v" && gone === null, got + " " + gone);
    const mm = createMaintenance({
      store: new MemoryStore(),
      cache: { store: redisCache(client, { prefix }), ttlMs: 200 },
    });
    const app = new Hono();
    app.use(mm.middleware());
    app.get("/", (c) => c.text("hello"));
    const get = () => app.fetch(new Request("http://localhost/", { headers: { accept: "text/html" } }));
    let res = await get();
    check("a controller with cache.store redisCache(client): 200 while off", res.status === 200, res.status);
    await mm.enable({ message: "via redis" });
    res = await get();
    check("... 503 after enable()", res.status === 503 && (await res.text()).includes("via redis"), res.status);
    await mm.disable();
    res = await get();
    check("... 200 after disable()", res.status === 200, res.status);
  } finally {
    await client.close();
  }
}
await ensure(main(), "redis.mjs");
`;

const DENO_KV_JS = `
// import "@x/maintenance/deno-kv" on Node over the @deno/kv package's openKv(path): a
// switch written through a second handle is served through the watch (TTL 60 s). A
// watch of @deno/kv 0.14 keeps Node alive even after kv.close() (its native call never
// returns), so this script exits by hand; with { watch: false } and kv.close(), a
// script exits by itself (checked in a child).
import { spawnSync } from "node:child_process";
import process from "node:process";
import { Hono } from "hono";
import { openKv } from "@deno/kv";
import { check, ensure, runtime } from "./check.mjs";

async function main() {
  const [path] = process.argv.slice(2);
  console.log("# " + runtime() + ", @deno/kv");
  const { createMaintenance } = await import("@x/maintenance");
  const { DenoKvStore } = await import("@x/maintenance/deno-kv");
  const kv = await openKv(path);
  const kv2 = await openKv(path);
  try {
    const store = new DenoKvStore(kv);
    check("DenoKvStore(await openKv(path)): description", store.description === 'deno-kv:["maintenance_mode_state"]', store.description);
    const mm = createMaintenance({ store, cache: { ttlMs: 60_000 } });
    const app = new Hono();
    app.use(mm.middleware());
    app.get("/", (c) => c.text("hello"));
    const status = async () => (await app.fetch(new Request("http://localhost/"))).status;
    check("200 while off", (await status()) === 200);
    const other = createMaintenance({ store: new DenoKvStore(kv2, { watch: false }), cache: false });
    const t0 = performance.now();
    await other.enable({ message: "via @deno/kv" });
    let s = await status();
    while (s !== 503 && performance.now() - t0 < 2000) {
      await new Promise((r) => setTimeout(r, 2));
      s = await status();
    }
    const ms = performance.now() - t0;
    check("a switch through another handle: 503 through the watch (TTL 60 s) in " + ms.toFixed(0) + " ms", s === 503 && ms < 500, s + " after " + ms.toFixed(0) + " ms");
    check("the value is the state's text", typeof (await kv2.get(["maintenance_mode_state"])).value === "string");
  } finally {
    kv.close();
    kv2.close();
  }
  const script = [
    'import { openKv } from "@deno/kv";',
    'import { createMaintenance } from "@x/maintenance";',
    'import { DenoKvStore } from "@x/maintenance/deno-kv";',
    "const kv = await openKv(" + JSON.stringify(path) + ");",
    "const mm = createMaintenance({ store: new DenoKvStore(kv, { watch: false }) });",
    "await mm.disable();",
    "kv.close();",
  ].join("\\n");
  const t0 = performance.now();
  const child = spawnSync(process.execPath, ["--input-type=module", "-e", script], { timeout: 15_000, encoding: "utf8" });
  const ms = performance.now() - t0;
  check("a script with { watch: false } exits by itself after kv.close() (" + ms.toFixed(0) + " ms)", child.status === 0, (child.error?.message ?? "") + " " + child.stderr);
}
await ensure(main(), "deno_kv.mjs");
process.exit(); // the watch of @deno/kv would keep Node alive (see above)
`;

const CONSUMER_TS = `
// Type-checked by tsc against the published .d.ts (module NodeNext); never run.
import { Hono } from "hono";
import {
  createMaintenance,
  FileStore,
  type Maintenance,
  maintenance,
  type MaintenanceState,
  type MaintenanceVariables,
  MemoryStore,
  type StateStore,
} from "@x/maintenance";
import { adminRoutes, bearerToken } from "@x/maintenance/admin";
import { type GuardedFetch, guard } from "@x/maintenance/guard";
import { type RedisLikeClient, redisCache } from "@x/maintenance/redis";
import { S3Store, type S3StoreOptions } from "@x/maintenance/s3";
import { runCli } from "@x/maintenance/cli";
import { type DenoKvLike, DenoKvStore } from "@x/maintenance/deno-kv";

const store: StateStore = new FileStore("maintenance_mode_state.txt");
const mm: Maintenance = createMaintenance({ store });
const app = new Hono<{ Variables: MaintenanceVariables }>();
app.get("/healthz", (c) => c.text("ok"));
app.use(mm.middleware({ ignorePaths: ["/status", /^\\/static\\//] }));
app.use(maintenance({ store: new MemoryStore() }));
app.get("/", (c) => c.text(c.get("maintenance").enabled ? "on" : "off"));
app.route("/maintenance-mode", adminRoutes(mm, { authorize: bearerToken("a-long-random-token") }));
export const guarded: GuardedFetch = guard(mm, app.fetch, { ignorePaths: ["/healthz"] });

const client: RedisLikeClient = {
  get: () => Promise.resolve(null),
  set: () => Promise.resolve("OK"),
  del: () => Promise.resolve(1),
};
export const shared: Maintenance = createMaintenance({
  store: new MemoryStore(),
  cache: { store: redisCache(client, { prefix: "app:" }), ttlMs: 60_000 },
});

export async function toggle(): Promise<boolean> {
  const written: MaintenanceState = await mm.enable({ message: "Back soon", retryAfter: 60 });
  await mm.disable();
  return written.enabled && (await mm.isEnabled());
}

const target: S3StoreOptions = { bucket: "bucket", key: "key" };
export const s3Store: StateStore = new S3Store({ ...target, region: "us-east-1" });
export const exitCode: Promise<number> = runCli(["status", "--json"]);

declare const kv: DenoKvLike; // openKv() of @deno/kv, or Deno.openKv() on Deno
export const kvStore: StateStore = new DenoKvStore(kv, { key: ["app", "maintenance"] });

export async function wrong(): Promise<void> {
  // @ts-expect-error retryAfter is a number of seconds: the types are not any
  await mm.enable({ retryAfter: "soon" });
}
export default app;
`;

const TSCONFIG = {
  compilerOptions: {
    module: "NodeNext",
    moduleResolution: "NodeNext",
    target: "ES2022",
    lib: ["ES2022", "DOM"],
    types: ["node"],
    strict: true,
    noEmit: true,
    skipLibCheck: false,
    verbatimModuleSyntax: true,
  },
  files: ["consumer.ts"],
};

function newProject(dir: string, name: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, "package.json"),
    JSON.stringify({ name, private: true, type: "module" }, null, 2) + "\n",
  );
  writeFileSync(join(dir, "check.mjs"), CHECK_JS);
  writeFileSync(join(dir, "core.mjs"), CORE_JS);
  writeFileSync(join(dir, "s3.mjs"), S3_JS);
  writeFileSync(join(dir, "subpaths.mjs"), SUBPATHS_JS);
  writeFileSync(join(dir, "redis.mjs"), REDIS_JS);
  writeFileSync(join(dir, "deno_kv.mjs"), DENO_KV_JS);
}

function installed(dir: string, name: string): boolean {
  return existsSync(join(dir, "node_modules", name, "package.json"));
}

interface Setup {
  tarball: string;
  /** The packed package.json's version. */
  version: string;
  hono: string;
  awsSdk: string;
  redis: string;
  nodeTypes: string;
  s3: S3rverHandle;
  /** undefined when redis-server would not start (a failed check says why). */
  redisServer: RedisHandle | undefined;
}

/** Installs `redis` with `install` and runs redis.mjs under `runtime`. */
function redisRound(
  label: string,
  install: () => Ran,
  runtime: string[],
  dir: string,
  setup: Setup,
): void {
  if (!setup.redisServer) return;
  const r = install();
  if (!check(`${label}: install redis@${setup.redis}`, r.code === 0, show(r))) {
    return;
  }
  consumer(
    label,
    runtime,
    "redis.mjs",
    [setup.redisServer.url],
    dir,
    baseEnv(),
  );
}

function s3Env(s3: S3rverHandle): Record<string, string> {
  return baseEnv({
    MAINTENANCE_S3_ENDPOINT: s3.endpoint,
    AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
    AWS_REGION: "us-east-1",
  });
}

function npmProject(dir: string, setup: Setup): void {
  newProject(dir, "smoke-npm");
  const npm = (a: string[]) =>
    sh("npm", [
      ...a,
      "--no-audit",
      "--no-fund",
      "--prefer-offline",
      "--loglevel=error",
    ], dir);
  // The package alone: npm 7+ installs peers, --legacy-peer-deps keeps them out.
  let r = npm(["install", setup.tarball, "--legacy-peer-deps"]);
  if (!check("npm: npm install <tarball> (no peers)", r.code === 0, show(r))) {
    return;
  }
  check(
    "npm: the package brings no dependency (no hono, no AWS SDK installed)",
    !installed(dir, "hono") && !installed(dir, "@aws-sdk/client-s3"),
  );
  const state = join(dir, "state.txt");
  binRound(
    "npm: npx @x/maintenance, no Hono/AWS SDK",
    ["npx", "--no", "@x/maintenance"],
    dir,
    [
      "--file",
      state,
    ],
    baseEnv(),
  );
  // npm takes a --version after the package name for its own: `--` passes it on.
  binVersion(
    "npm",
    ["npx", "--no", "--", "@x/maintenance"],
    dir,
    setup.version,
  );
  // In the project, the bin's own name runs it too.
  r = sh(
    "npx",
    ["--no", "maintenance", "status", "--file", state],
    dir,
    offlineEnv(baseEnv()),
  );
  check(
    "npm: npx maintenance (the bin's name) in the project runs the same CLI",
    r.code === 0 && r.out.includes(state),
    show(r),
  );

  // An optional peer that is missing: the bin says how to install it.
  r = sh(
    "npx",
    ["--no", "@x/maintenance", "status", "--s3", "s3://b/k"],
    dir,
    offlineEnv(baseEnv()),
  );
  check(
    "npm: npx @x/maintenance --s3 without the AWS SDK: exit 2, says npm install @aws-sdk/client-s3",
    r.code === 2 && r.err.includes("npm install @aws-sdk/client-s3"),
    show(r),
  );
  r = sh(
    "npx",
    ["--no", "@x/maintenance", "off", "--file", join(dir, "other_state.txt")],
    dir,
    offlineEnv(baseEnv({ MAINTENANCE_REDIS_URL: "redis://127.0.0.1:1" })),
  );
  check(
    "npm: MAINTENANCE_REDIS_URL without redis installed: exit 1, says npm install redis",
    r.code === 1 && r.err.includes("npm install redis"),
    show(r),
  );

  r = npm(["install", `hono@${setup.hono}`]);
  if (!check(`npm: npm install hono@${setup.hono}`, r.code === 0, show(r))) {
    return;
  }
  consumer("node, no AWS SDK", ["node"], "core.mjs", [state], dir, baseEnv());
  consumer("node", ["node"], "subpaths.mjs", [], dir, baseEnv());

  // Behind a real Node HTTP server, with both majors of Hono's Node adapter: 1.x
  // replaces the global Response (a render's fetch() Response is then not an instance).
  copyFileSync(
    join(root, "scripts", "npm_smoke_node_server.mjs"),
    join(dir, "node_server.mjs"),
  );
  for (const major of ["1", "2"]) {
    r = npm(["install", `@hono/node-server@${major}`]);
    if (
      check(
        `npm: npm install @hono/node-server@${major}`,
        r.code === 0,
        show(r),
      )
    ) {
      consumer(
        `node + @hono/node-server@${major}`,
        ["node"],
        "node_server.mjs",
        [],
        dir,
        baseEnv(),
      );
    }
  }

  redisRound(
    "node + redis",
    () => npm(["install", `redis@${setup.redis}`]),
    ["node"],
    dir,
    setup,
  );

  // Deno KV on Node, through @deno/kv (on Bun it needs V8 encode/decode functions of
  // its own: not run there).
  r = npm(["install", `@deno/kv@${DENO_KV_NPM}`]);
  if (
    check(`npm: npm install @deno/kv@${DENO_KV_NPM}`, r.code === 0, show(r))
  ) {
    consumer(
      "node + @deno/kv",
      ["node"],
      "deno_kv.mjs",
      [join(dir, "state.sqlite")],
      dir,
      baseEnv(),
    );
  }

  // @types/node for tsc below: the AWS SDK's own types need it.
  const more = [
    `@aws-sdk/client-s3@${setup.awsSdk}`,
    `@types/node@${setup.nodeTypes}`,
  ];
  r = npm(["install", ...more]);
  if (!check(`npm: npm install ${more.join(" ")}`, r.code === 0, show(r))) {
    return;
  }
  const url = `s3://${setup.s3.bucket}/npm/state.json`;
  const env = s3Env(setup.s3);
  binRound(
    "npm: npx @x/maintenance --s3",
    ["npx", "--no", "@x/maintenance"],
    dir,
    ["--s3", url],
    env,
  );
  consumer("node", ["node"], "s3.mjs", [url], dir, env);

  // Types: tsc from this repo's devDependencies, against the installed package.
  writeFileSync(join(dir, "consumer.ts"), CONSUMER_TS);
  writeFileSync(join(dir, "tsconfig.json"), JSON.stringify(TSCONFIG, null, 2));
  const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
  r = sh("node", [tsc, "-p", "tsconfig.json"], dir);
  check(
    "tsc --noEmit (module NodeNext, strict, no skipLibCheck) on a consumer of the .d.ts",
    r.code === 0,
    show(r),
  );
}

/** The `@deno/kv` (Deno KV for Node) the npm project installs for `@x/maintenance/deno-kv`. */
const DENO_KV_NPM = "0.14.0";

/** The wrangler (and so workerd) the Workers smoke runs on: only that project installs it. */
const WRANGLER = "4.86.0";

/**
 * Cloudflare Workers: the package in workerd through wrangler's local dev server (no
 * account, no network), without nodejs_compat, the state in Workers KV
 * (`scripts/npm_smoke_workers.mjs`).
 */
function workersProject(dir: string, setup: Setup): void {
  newProject(dir, "smoke-workers");
  const r = sh("npm", [
    "install",
    setup.tarball,
    `hono@${setup.hono}`,
    `wrangler@${WRANGLER}`,
    "--no-audit",
    "--no-fund",
    "--prefer-offline",
    "--loglevel=error",
  ], dir);
  if (
    !check(
      `workers: npm install <tarball> hono wrangler@${WRANGLER}`,
      r.code === 0,
      show(r),
    )
  ) return;
  copyFileSync(
    join(root, "scripts", "npm_smoke_workers.mjs"),
    join(dir, "workers.mjs"),
  );
  consumer("workers (workerd)", ["node"], "workers.mjs", [], dir, baseEnv());
}

function bunProject(dir: string, setup: Setup): void {
  newProject(dir, "smoke-bun");
  // bun add installs the package and its required peer (hono) from the registry.
  let r = sh("bun", ["add", setup.tarball], dir);
  if (!check("bun: bun add <tarball>", r.code === 0, show(r))) return;
  check(
    "bun: bun add brings the peer hono and not the optional AWS SDK",
    installed(dir, "hono") && !installed(dir, "@aws-sdk/client-s3"),
  );
  const state = join(dir, "state.txt");
  binRound(
    "bun: bunx --bun @x/maintenance, no AWS SDK",
    ["bunx", "--bun", "--no-install", "@x/maintenance"],
    dir,
    ["--file", state],
    baseEnv(),
  );
  binVersion(
    "bun",
    ["bunx", "--bun", "--no-install", "@x/maintenance"],
    dir,
    setup.version,
  );
  // without --bun: the bin's #!/usr/bin/env node, where Node is installed
  if (version("node", ["--version"]) !== undefined) {
    binVersion(
      "bun",
      ["bunx", "--no-install", "@x/maintenance"],
      dir,
      setup.version,
    );
  }
  consumer("bun, no AWS SDK", ["bun"], "core.mjs", [state], dir, baseEnv());
  consumer("bun", ["bun"], "subpaths.mjs", [], dir, baseEnv());
  redisRound(
    "bun + redis",
    () => sh("bun", ["add", `redis@${setup.redis}`], dir),
    ["bun"],
    dir,
    setup,
  );

  r = sh("bun", [
    "add",
    `hono@${setup.hono}`,
    `@aws-sdk/client-s3@${setup.awsSdk}`,
  ], dir);
  if (
    !check(
      `bun: bun add hono@${setup.hono} @aws-sdk/client-s3@${setup.awsSdk}`,
      r.code === 0,
      show(r),
    )
  ) return;
  const url = `s3://${setup.s3.bucket}/bun/state.json`;
  const env = s3Env(setup.s3);
  binRound(
    "bun: bunx --bun @x/maintenance --s3",
    ["bunx", "--bun", "--no-install", "@x/maintenance"],
    dir,
    [
      "--s3",
      url,
    ],
    env,
  );
  consumer("bun", ["bun"], "s3.mjs", [url], dir, env);
}

async function main(): Promise<void> {
  const started = Date.now();
  // node_modules (hono, typescript, s3rver) on a fresh machine.
  const setupRun = sh(
    "deno",
    ["run", "-A", "scripts/setup.ts", "--demo"],
    root,
  );
  if (!check("setup (node_modules)", setupRun.code === 0, show(setupRun))) {
    return;
  }

  if (!args.includes("--no-build")) {
    const build = sh("deno", ["run", "-A", "scripts/build_npm.ts"], root);
    console.log(build.out.trim());
    if (build.err.trim() !== "") console.error(build.err.trim());
    if (
      !check(
        "deno task build:npm (pack, package.json, checks)",
        build.code === 0,
      )
    ) {
      // A package that failed a check may still be there: test it all the same.
      if (!existsSync(join(root, "dist", "build.json"))) return;
      console.log("  (the tarball was written: the smoke tests run on it)");
    }
  }
  // JSR: the same source publishes (no slow types, every export documented), and every
  // entry point type-checks, with its doc examples.
  const publish = sh(
    "deno",
    ["publish", "--dry-run", "--allow-dirty"],
    root,
  );
  check(
    "deno publish --dry-run",
    publish.code === 0 && !/^\s*(warning|error)\b/im.test(publish.err),
    show(publish),
  );
  const entries = Object.values(
    JSON.parse(readFileSync(join(root, "deno.json"), "utf8")).exports as Record<
      string,
      string
    >,
  );
  const typed = sh("deno", ["check", "--doc", ...entries], root);
  check(
    `deno check --doc ${entries.join(" ")}`,
    typed.code === 0,
    show(typed),
  );

  const summary = JSON.parse(
    readFileSync(join(root, "dist", "build.json"), "utf8"),
  ) as { tarball: string };
  const tarball = join(root, summary.tarball);
  const packedVersion = (JSON.parse(
    readFileSync(join(root, "dist", "package", "package.json"), "utf8"),
  ) as { version: string }).version;

  const versions = {
    node: version("node", ["--version"]),
    npm: version("npm", ["--version"]),
    bun: version("bun", ["--version"]),
    deno: version("deno", ["--version"]),
    tsc: version("node", [
      join(root, "node_modules", "typescript", "bin", "tsc"),
      "--version",
    ]),
  };
  console.log(
    `\nruntimes: ${
      Object.entries(versions).map(([k, v]) => `${k} ${v ?? "missing"}`).join(
        ", ",
      )
    }`,
  );

  const work = mkdtempSync(join(tmpdir(), "x-maintenance-npm-smoke-"));
  const s3 = await startS3rver({ bucket: "smoke" });
  let redisServer: RedisHandle | undefined;
  try {
    redisServer = await startRedis();
  } catch (e) {
    check("redis-server starts", false, (e as Error).message);
  }
  const setup: Setup = {
    tarball,
    version: packedVersion,
    hono: pinned("hono"),
    awsSdk: pinned("@aws-sdk/client-s3"),
    redis: pinned("redis"),
    nodeTypes: pinned("@types/node"),
    s3,
    redisServer,
  };
  try {
    if (!bunOnly) {
      if (
        check("node and npm are installed", !!versions.node && !!versions.npm)
      ) {
        npmProject(join(work, "npm"), setup);
        workersProject(join(work, "workers"), setup);
      }
    }
    if (!nodeOnly) {
      if (check("bun is installed", !!versions.bun)) {
        bunProject(join(work, "bun"), setup);
      }
    }
  } finally {
    await s3.stop();
    await redisServer?.stop();
    if (keep) console.log(`kept ${work}`);
    else rmSync(work, { recursive: true, force: true });
  }
  console.log(`\ntook ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

try {
  await main();
} catch (e) {
  check("npm_smoke.ts ran to the end", false, (e as Error).stack ?? String(e));
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
