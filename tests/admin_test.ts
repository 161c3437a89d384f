/**
 * Admin routes: `GET /` state, `POST /on` (JSON or form), `POST /off`; refused without
 * `authorize` at construction, 401 when it says no, 403 for cross-site posts, 405 for
 * `GET /on`; none of the refusals writes anything; they keep working while maintenance
 * is on. Over a real HTTP server on 127.0.0.1, and the demo as a real child process.
 */
import { adminRoutes } from "../src/admin.ts";
import { bypassCookie } from "../src/bypass.ts";
import { after, before, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { spawnSync } from "node:child_process";
import { type Context, Hono } from "hono";
import { bearerToken } from "../src/admin.ts";
import { enabledState } from "../src/_enable.ts";
import { createMaintenance, type Maintenance } from "../src/maintenance.ts";
import { MemoryStore } from "../stores/memory.ts";
import { parseState } from "../src/_state.ts";
import { verifySecret } from "../src/_bypass.ts";
import {
  cleanEnv,
  currentRuntime,
  makeTempDir,
  removeDir,
  ROOT,
  type RunningProcess,
  runProcess,
  scriptCommand,
  serveFetch,
  startProcess,
  type TestServer,
} from "./helpers.ts";

const TOKEN = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
const AUTH = { authorization: `Bearer ${TOKEN}` };

/** A MemoryStore that counts writes, to show that refusals change nothing. */
class CountingStore extends MemoryStore {
  writes = 0;
  override write(text: string): Promise<void> {
    this.writes++;
    return super.write(text);
  }
}

interface Site {
  mm: Maintenance;
  store: CountingStore;
  server: TestServer;
  url: string;
}

/**
 * The usual layout: middleware first, admin routes mounted after it (so they must get
 * through the middleware while maintenance is on), then the app.
 */
async function startSite(
  options: { origins?: string[]; mount?: string } = {},
): Promise<Site> {
  const store = new CountingStore();
  const mm = createMaintenance({
    bypass: bypassCookie(),
    store,
    cache: { ttlMs: 60_000 },
  });
  const app = new Hono();
  app.use(mm.middleware());
  app.route(
    options.mount ?? "/maintenance-mode",
    adminRoutes(mm, {
      authorize: bearerToken(TOKEN),
      ...(options.origins ? { origins: options.origins } : {}),
    }),
  );
  app.all("*", (c) => c.text("app"));
  const server = await serveFetch(app.fetch);
  return { mm, store, server, url: server.url };
}

async function call(
  site: Site,
  method: string,
  path: string,
  init: { headers?: Record<string, string>; body?: BodyInit } = {},
): Promise<
  { status: number; headers: Headers; json: Record<string, unknown> }
> {
  const res = await fetch(`${site.url}/maintenance-mode${path}`, {
    method,
    headers: init.headers,
    body: init.body,
    redirect: "manual",
  });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = text ? JSON.parse(text) : {};
  } catch {
    json = { text };
  }
  return { status: res.status, headers: res.headers, json };
}

function postJson(
  site: Site,
  path: string,
  body: unknown,
  headers: Record<string, string> = AUTH,
) {
  return call(site, "POST", path, {
    headers: { ...headers, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

async function siteStatus(site: Site): Promise<number> {
  const res = await fetch(`${site.url}/`);
  await res.body?.cancel();
  return res.status;
}

/**
 * The form-body recipes the docs give (```sh blocks with `--data-urlencode`), as
 * `{ where, code }`: `where` is `file:line`, `code` the block as written.
 */
function formRecipes(): { where: string; code: string }[] {
  const out: { where: string; code: string }[] = [];
  for (const file of ["README.md", "docs/admin.md"]) {
    const lines = readFileSync(`${ROOT}/${file}`, "utf8").split("\n");
    for (let i = 0; i < lines.length; i++) {
      if (lines[i] !== "```sh") continue;
      const end = lines.indexOf("```", i + 1);
      const code = lines.slice(i + 1, end).join("\n");
      if (code.includes("--data-urlencode")) {
        out.push({ where: `${file}:${i + 1}`, code });
      }
      i = end;
    }
  }
  return out;
}

const HAS_CURL = (() => {
  try {
    return spawnSync("curl", ["--version"]).status === 0;
  } catch {
    return false;
  }
})();

/**
 * Runs a documented curl command line against `base` (for `https://example.com`), with
 * `$TOKEN` set: by the shell and curl exactly as written when curl is installed, else
 * as the same request by fetch (the `-H` headers, the `--data-urlencode` fields as a
 * form, no Origin). Returns the response body, parsed as JSON.
 */
async function runCurl(
  code: string,
  base: string,
): Promise<Record<string, unknown>> {
  const line = code.replaceAll("https://example.com", base);
  if (HAS_CURL) {
    const r = await runProcess("sh", ["-c", line], {
      env: cleanEnv({ TOKEN }),
    });
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout);
  }
  const headers = new Headers();
  for (const m of line.matchAll(/-H "([^:"]+): ([^"]*)"/g)) {
    headers.set(m[1], m[2].replaceAll("$TOKEN", TOKEN));
  }
  const form = new URLSearchParams();
  for (const m of line.matchAll(/--data-urlencode '([^=']*)=([^']*)'/g)) {
    form.append(m[1], m[2]);
  }
  headers.set("content-type", "application/x-www-form-urlencoded");
  const url = /(http:\/\/\S+)/.exec(line)![1];
  const res = await fetch(url, { method: "POST", headers, body: form });
  return await res.json();
}

describe("adminRoutes: construction", () => {
  const mm = createMaintenance({
    bypass: bypassCookie(),
    store: new MemoryStore(),
  });

  it("refuses to build without authorize, and says why", () => {
    for (
      const bad of [undefined, {}, { authorize: true }, { authorize: "yes" }]
    ) {
      assert.throws(() => adminRoutes(mm, bad as never), (e: Error) => {
        assert.ok(e instanceof TypeError);
        assert.match(e.message, /authorize/);
        return true;
      });
    }
    assert.throws(
      () => adminRoutes(mm, {} as never),
      /anyone could switch maintenance mode on or off/,
    );
  });

  it("refuses unknown options and origins that are not origins", () => {
    const authorize = () => true;
    assert.throws(
      () => adminRoutes(mm, { authorize, authorise: 1 } as never),
      /unknown adminRoutes option "authorise"/,
    );
    for (
      const bad of [
        "example.com",
        "https://example.com/",
        "https://example.com/path",
        "ftp://example.com",
      ]
    ) {
      assert.throws(
        () => adminRoutes(mm, { authorize, origins: [bad] }),
        /is not an origin/,
        bad,
      );
    }
    assert.throws(
      () => adminRoutes(mm, { authorize, origins: "https://x.com" as never }),
      /must be an array/,
    );
  });

  it("bearerToken refuses a missing, short or odd token", () => {
    assert.throws(
      () => bearerToken(undefined as never),
      /is the environment variable set/,
    );
    assert.throws(() => bearerToken(""), TypeError);
    assert.throws(() => bearerToken("short-token"), /at least 16 characters/);
    assert.throws(
      () => bearerToken("has spaces in the token"),
      /may only contain/,
    );
  });
});

describe("admin routes over HTTP", () => {
  let site: Site;
  before(async () => {
    site = await startSite();
  });
  after(async () => {
    await site?.server.stop();
  });
  beforeEach(async () => {
    await site.mm.disable();
    site.store.writes = 0;
  });

  it("GET / with the token: the state as JSON, no-store, no hash", async () => {
    await site.mm.enable({ message: "Back soon", secret: "s".repeat(20) });
    site.store.writes = 0;
    const r = await call(site, "GET", "", { headers: AUTH });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("cache-control"), "no-store");
    assert.match(r.headers.get("content-type")!, /application\/json/);
    assert.equal(r.json.enabled, true);
    assert.equal(r.json.scheduled, false);
    assert.equal(r.json.bypass, true);
    const state = r.json.state as Record<string, unknown>;
    assert.equal(state.message, "Back soon");
    assert.equal(state.bypass, undefined, "the hash is not shown");
    assert.ok(
      !JSON.stringify(r.json).includes((await site.mm.getState()).bypass!),
    );
  });

  it("no token, a wrong one, another scheme: 401, and nothing changes", async () => {
    const attempts: Record<string, string>[] = [
      {},
      { authorization: `Bearer ${TOKEN.slice(0, -1)}1` },
      { authorization: `Bearer ${TOKEN}x` },
      { authorization: `Bearer ${TOKEN.slice(0, 8)}` },
      { authorization: `Basic ${btoa(`admin:${TOKEN}`)}` },
      { authorization: TOKEN },
      { authorization: `Bearer  ` },
    ];
    for (const headers of attempts) {
      for (
        const [method, path] of [["GET", ""], ["POST", "/on"], [
          "POST",
          "/off",
        ]]
      ) {
        const r = await call(site, method, path, {
          headers: { ...headers, "content-type": "application/json" },
          body: method === "POST" ? '{"message":"x"}' : undefined,
        });
        assert.equal(
          r.status,
          401,
          `${method} ${path} ${JSON.stringify(headers)}`,
        );
        assert.equal(r.json.error, "unauthorized");
        assert.match(r.headers.get("www-authenticate")!, /^Bearer/);
        assert.equal(r.json.state, undefined, "no state for strangers");
      }
    }
    assert.equal(site.store.writes, 0);
    assert.equal(await site.mm.isEnabled(), false);
  });

  it("the token's scheme is case-insensitive", async () => {
    const r = await call(site, "GET", "", {
      headers: { authorization: `bearer ${TOKEN}` },
    });
    assert.equal(r.status, 200);
  });

  it("POST /on (JSON): message, retryAfter, until; the site is then down, admin still up", async () => {
    const until = new Date(Date.now() + 3_600_000).toISOString();
    const r = await postJson(site, "/on", {
      message: "Back at 14:00",
      retryAfter: 600,
      until,
    });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(r.json.enabled, true);
    const state = r.json.state as Record<string, unknown>;
    assert.equal(state.message, "Back at 14:00");
    assert.equal(state.retryAfter, 600);
    assert.equal(state.endsAt, until);
    assert.equal(site.store.writes, 1);
    assert.equal(await siteStatus(site), 503);
    // Admin routes keep working while maintenance is on.
    const status = await call(site, "GET", "", { headers: AUTH });
    assert.equal(status.status, 200);
    assert.equal(status.json.enabled, true);
    const off = await call(site, "POST", "/off", { headers: AUTH });
    assert.equal(off.status, 200);
    assert.equal(off.json.enabled, false);
    assert.equal(await siteStatus(site), 200);
  });

  it("POST /on as a form from this site (urlencoded and multipart)", async () => {
    const origin = site.url;
    const r = await call(site, "POST", "/on", {
      headers: {
        ...AUTH,
        origin,
        "content-type": "application/x-www-form-urlencoded",
      },
      body: new URLSearchParams({
        message: "From a form",
        retryAfter: "120",
        until: "",
      }).toString(),
    });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal((r.json.state as { message: string }).message, "From a form");
    assert.equal((r.json.state as { retryAfter: number }).retryAfter, 120);
    assert.equal((r.json.state as { endsAt?: string }).endsAt, undefined);

    const form = new FormData();
    form.set("message", "Multipart");
    form.set("refresh", "30");
    const m = await call(site, "POST", "/on", {
      headers: { ...AUTH, origin },
      body: form,
    });
    assert.equal(m.status, 200, JSON.stringify(m.json));
    assert.equal((m.json.state as { refresh: number }).refresh, 30);
  });

  it("POST /on with secret / withSecret: the secret is hashed, a generated one shown once", async () => {
    const given = await postJson(site, "/on", {
      secret: "given-secret-0123456789",
    });
    assert.equal(given.status, 200);
    assert.equal(given.json.bypass, true);
    assert.equal(given.json.secret, undefined, "a given secret is not echoed");
    const stored = (await site.mm.getState()).bypass!;
    assert.equal(await verifySecret("given-secret-0123456789", stored), true);

    const gen = await postJson(site, "/on", { withSecret: true });
    assert.equal(gen.status, 200);
    const secret = gen.json.secret as string;
    assert.match(secret, /^[A-Za-z0-9_-]{32}$/);
    const text = (await site.store.read())!;
    assert.ok(!text.includes(secret));
    const status = await call(site, "GET", "", { headers: AUTH });
    assert.equal(status.json.secret, undefined, "shown once, by POST /on only");
    // The generated secret opens the site.
    const visit = await fetch(`${site.url}/${secret}`, { redirect: "manual" });
    await visit.body?.cancel();
    assert.equal(visit.status, 302);
  });

  it("a curl-style POST with no body and no Origin works (POST /on, POST /off)", async () => {
    const on = await call(site, "POST", "/on", { headers: AUTH });
    assert.equal(on.status, 200);
    assert.equal(on.json.enabled, true);
    const off = await call(site, "POST", "/off", { headers: AUTH });
    assert.equal(off.status, 200);
    assert.equal(site.store.writes, 2);
  });

  it(
    `the docs' form recipe (curl --data-urlencode with the Bearer token) works as written${
      HAS_CURL ? "" : " (curl missing: the same request by fetch)"
    }`,
    async () => {
      const recipes = formRecipes();
      assert.deepEqual(
        recipes.map((r) => r.where.split(":")[0]),
        ["README.md", "docs/admin.md"],
        "one form recipe in the README's Admin routes and one in docs/admin.md",
      );
      for (const { where, code } of recipes) {
        await site.mm.disable();
        site.store.writes = 0;
        const body = await runCurl(code, site.url);
        assert.equal(body.enabled, true, `${where}: ${JSON.stringify(body)}`);
        const state = body.state as { message: string; endsAt: string };
        assert.equal(state.message, "Back at 14:00", where);
        // The + offset arrived as +: 14:00 at +02:00 is 12:00 UTC.
        assert.equal(state.endsAt, "2030-01-01T12:00:00.000Z", where);
        assert.equal(site.store.writes, 1, where);
        assert.equal((await site.mm.getState()).message, "Back at 14:00");
      }
    },
  );

  it("a script's form with the Bearer token and a raw + offset: the 400 hint, not a 403", async () => {
    // What curl -d 'until=...+02:00' sends: a form, no Origin, no Sec-Fetch-Site.
    const r = await call(site, "POST", "/on", {
      headers: { ...AUTH, "content-type": "application/x-www-form-urlencoded" },
      body: "until=2099-01-01T14:00:00+02:00",
    });
    assert.equal(r.status, 400, JSON.stringify(r.json));
    assert.match(
      r.json.message as string,
      /send \+02:00 as %2B02:00 \(curl --data-urlencode\)/,
    );
    assert.equal(site.store.writes, 0);
    // multipart and text/plain with the token pass too: no browser form has one.
    const form = new FormData();
    form.set("message", "multipart from a script");
    const m = await call(site, "POST", "/on", { headers: AUTH, body: form });
    assert.equal(m.status, 200, JSON.stringify(m.json));
    const off = await call(site, "POST", "/off", {
      headers: { ...AUTH, "content-type": "text/plain" },
      body: "",
    });
    assert.equal(off.status, 200, JSON.stringify(off.json));
  });

  it("bad input: 400 saying what to change, and nothing written", async () => {
    const past = new Date(Date.now() - 60_000).toISOString();
    const future = new Date(Date.now() + 60_000).toISOString();
    const later = new Date(Date.now() + 120_000).toISOString();
    const cases: [unknown, RegExp][] = [
      [{ retryAfter: "abc" }, /retryAfter must be a whole number/],
      [{ retryAfter: -5 }, /retryAfter must be a whole number of seconds/],
      [{ retryAfter: 1.5 }, /retryAfter/],
      [{ until: past }, /until .* is in the past/],
      [{ until: "tomorrow" }, /until must be an ISO-8601/],
      [{ until: "2030-02-30T00:00:00Z" }, /until must be an ISO-8601/],
      [{ until: "2030-01-01T14:00" }, /until .*has no time zone: add Z/],
      [{ from: later, until: future }, /from .* must be before until/],
      [{ message: 42 }, /message must be a string/],
      [{ message: "bell\u0007" }, /control characters/],
      [{ message: "x".repeat(2001) }, /at most 2000/],
      [{ secret: "short" }, /16 to 128 characters/],
      [
        { secret: "s".repeat(20), withSecret: true },
        /either secret or withSecret/,
      ],
      [{ withSecret: "maybe" }, /withSecret must be true or false/],
      [
        { mesage: "typo" },
        /unknown field "mesage"; did you mean message\? \(POST \/on takes message, /,
      ],
      [["message"], /must be an object/],
    ];
    for (const [body, re] of cases) {
      const r = await postJson(site, "/on", body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.json.error, "bad_request");
      assert.match(String(r.json.message), re, JSON.stringify(body));
    }
    const broken = await call(site, "POST", "/on", {
      headers: { ...AUTH, "content-type": "application/json" },
      body: "{oops",
    });
    assert.equal(broken.status, 400);
    assert.match(String(broken.json.message), /not valid JSON/);
    const xml = await call(site, "POST", "/on", {
      headers: { ...AUTH, "content-type": "application/xml" },
      body: "<on/>",
    });
    assert.equal(xml.status, 415);
    assert.equal(xml.json.error, "unsupported_media_type");
    const huge = await postJson(site, "/on", { message: "x".repeat(20_000) });
    assert.equal(huge.status, 413);
    assert.equal(site.store.writes, 0);
    assert.equal(await site.mm.isEnabled(), false);
  });

  it("GET /on, GET /off and other methods: 405, nothing changes", async () => {
    for (
      const [method, path, allow] of [
        ["GET", "/on", "POST"],
        ["GET", "/off", "POST"],
        ["HEAD", "/on", "POST"],
        ["PUT", "/on", "POST"],
        ["DELETE", "/off", "POST"],
        ["POST", "", "GET, HEAD"],
        ["DELETE", "", "GET, HEAD"],
      ]
    ) {
      const r = await call(site, method, path, { headers: AUTH });
      assert.equal(r.status, 405, `${method} ${path}`);
      assert.equal(r.headers.get("allow"), allow);
    }
    // Unauthenticated GET /on is a 401, not a state change either.
    assert.equal((await call(site, "GET", "/on")).status, 401);
    assert.equal(site.store.writes, 0);
    assert.equal(await site.mm.isEnabled(), false);
  });

  it("cross-site posts are refused with 403 (with a valid token when a browser says cross-site), and change nothing", async () => {
    const evil = "https://evil.example";
    const attempts: Record<string, string>[] = [
      // a cross-site HTML form
      { origin: evil, "content-type": "application/x-www-form-urlencoded" },
      { origin: evil, "content-type": "text/plain" },
      { origin: evil, "content-type": "multipart/form-data; boundary=x" },
      // JSON from another origin (would need a permissive CORS setup to be sent)
      { origin: evil, "content-type": "application/json" },
      { origin: "null", "content-type": "application/x-www-form-urlencoded" },
      // the browser says cross-site (or same-site) without an Origin
      {
        "sec-fetch-site": "cross-site",
        "content-type": "application/x-www-form-urlencoded",
      },
      { "sec-fetch-site": "same-site", "content-type": "application/json" },
      // the token does not excuse a browser that says cross-site
      {
        "sec-fetch-site": "cross-site",
        "content-type": "text/plain",
        authorization: `Bearer ${TOKEN}`,
      },
    ];
    // A form without any Origin (an old browser's cross-site form) and without a
    // Bearer header: refused, as hono/csrf does. Browsers send Basic credentials
    // they hold with such a form, so those do not excuse it either.
    for (
      const auth of [{}, {
        authorization: `Basic ${btoa(`admin:${TOKEN}`)}`,
      }] as Record<string, string>[]
    ) {
      for (
        const type of [
          "application/x-www-form-urlencoded",
          "multipart/form-data; boundary=x",
          "text/plain",
        ]
      ) attempts.push({ ...auth, "content-type": type });
    }
    for (const headers of attempts) {
      for (const path of ["/on", "/off"]) {
        const r = await call(site, "POST", path, {
          headers: "origin" in headers || "sec-fetch-site" in headers
            ? { ...AUTH, ...headers }
            : headers,
          body: headers["content-type"]?.includes("json")
            ? "{}"
            : "message=pwned",
        });
        assert.equal(r.status, 403, `${path} ${JSON.stringify(headers)}`);
        assert.equal(r.json.error, "forbidden");
      }
    }
    assert.equal(site.store.writes, 0);
    assert.equal(await site.mm.isEnabled(), false);
  });

  it("same-origin by Sec-Fetch-Site passes, whatever Origin a proxy leaves", async () => {
    const r = await call(site, "POST", "/on", {
      headers: {
        ...AUTH,
        origin: "https://public.example",
        "sec-fetch-site": "same-origin",
        "content-type": "application/x-www-form-urlencoded",
      },
      body: "message=ok",
    });
    assert.equal(r.status, 200);
  });
});

describe("admin routes: options and wiring", () => {
  it("origins: lets a configured origin post forms (behind a proxy)", async () => {
    const site = await startSite({ origins: ["https://public.example"] });
    try {
      const r = await call(site, "POST", "/on", {
        headers: {
          ...AUTH,
          origin: "https://public.example",
          "content-type": "application/x-www-form-urlencoded",
        },
        body: "message=proxied",
      });
      assert.equal(r.status, 200);
      const other = await call(site, "POST", "/off", {
        headers: {
          ...AUTH,
          origin: "https://other.example",
          "content-type": "application/x-www-form-urlencoded",
        },
      });
      assert.equal(other.status, 403);
      assert.equal(await site.mm.isEnabled(), true);
    } finally {
      await site.server.stop();
    }
  });

  it("a cookie-authenticated site: cross-site forms with the cookie are refused, a junk Bearer header does not help", async () => {
    const store = new CountingStore();
    const mm = createMaintenance({
      bypass: bypassCookie(),
      store,
      cache: { ttlMs: 60_000 },
    });
    const app = new Hono();
    app.use(mm.middleware());
    app.route(
      "/maintenance-mode",
      adminRoutes(mm, {
        authorize: (c) =>
          /(^|; )session=admin($|;)/.test(c.req.header("cookie") ?? ""),
      }),
    );
    const server = await serveFetch(app.fetch);
    const site: Site = { mm, store, server, url: server.url };
    try {
      const cookie = { cookie: "session=admin" };
      const form = { "content-type": "application/x-www-form-urlencoded" };
      const refused: Record<string, string>[] = [
        // a cross-site form, as a current browser sends it
        {
          ...cookie,
          ...form,
          origin: "https://evil.example",
          "sec-fetch-site": "cross-site",
        },
        // the same from an old browser: no Origin, no Sec-Fetch-Site
        { ...cookie, ...form },
        { ...cookie, "content-type": "text/plain" },
        // a cross-origin fetch (allowed by a lax CORS setup) that adds a Bearer header
        // of its own to get past the check: the Origin still decides
        {
          ...cookie,
          ...form,
          origin: "https://evil.example",
          authorization: "Bearer junk",
        },
        {
          ...cookie,
          ...form,
          "sec-fetch-site": "cross-site",
          authorization: "Bearer junk",
        },
      ];
      for (const headers of refused) {
        const r = await call(site, "POST", "/on", {
          headers,
          body: "message=pwned",
        });
        assert.equal(r.status, 403, JSON.stringify(headers));
      }
      assert.equal(store.writes, 0);
      // The same form from the site itself passes.
      const ok = await call(site, "POST", "/on", {
        headers: {
          ...cookie,
          ...form,
          origin: site.url,
          "sec-fetch-site": "same-origin",
        },
        body: "message=ours",
      });
      assert.equal(ok.status, 200, JSON.stringify(ok.json));
      assert.equal((await mm.getState()).message, "ours");
      assert.equal(store.writes, 1);
    } finally {
      await server.stop();
    }
  });

  it("authorize gets the Context; only `true` or a non-empty string lets in (async too)", async () => {
    const store = new CountingStore();
    const mm = createMaintenance({ bypass: bypassCookie(), store });
    const seen: string[] = [];
    const app = new Hono();
    app.use(mm.middleware());
    let answer: unknown = true;
    app.route(
      "/admin",
      adminRoutes(mm, {
        authorize: async (c: Context) => {
          seen.push(c.req.header("x-user") ?? "");
          await Promise.resolve();
          return answer as boolean;
        },
      }),
    );
    const ask = async () =>
      (await app.fetch(
        new Request("http://l/admin/on", {
          method: "POST",
          headers: { "x-user": "ada" },
        }),
      )).status;
    assert.equal(await ask(), 200);
    assert.deepEqual(seen, ["ada"]);
    answer = "ada";
    assert.equal(await ask(), 200);
    assert.equal((await mm.getState()).updatedBy, "ada");
    for (
      const no of [
        false,
        "",
        "  ",
        1,
        {},
        { by: "ada" },
        ["ada"],
        null,
        undefined,
      ]
    ) {
      answer = no;
      assert.equal(await ask(), 401, JSON.stringify(no));
    }
    assert.equal(store.writes, 2);
  });

  it("mounted anywhere, before or after the middleware, with its own onError: reachable while on", async () => {
    const mm = createMaintenance({
      bypass: bypassCookie(),
      store: new MemoryStore(),
    });
    await mm.enable({ message: "down" });
    const admin = adminRoutes(mm, { authorize: bearerToken(TOKEN) });
    admin.onError((e, c) => c.text(String(e), 500)); // Hono then wraps each handler
    const app = new Hono();
    app.use(mm.middleware());
    app.route("/ops/maintenance", admin);
    app.all("*", (c) => c.text("app"));
    const res = await app.fetch(
      new Request("http://l/ops/maintenance", { headers: AUTH }),
    );
    assert.equal(res.status, 200);
    assert.equal((await res.json()).enabled, true);
    assert.equal((await app.fetch(new Request("http://l/"))).status, 503);
    // Paths under the mount that are not admin routes stay in maintenance.
    assert.equal(
      (await app.fetch(
        new Request("http://l/ops/maintenance/nope", { headers: AUTH }),
      )).status,
      503,
    );
  });

  it("an app route registered before the admin mount on the same method and path is not exempted by it", async () => {
    const mm = createMaintenance({
      bypass: bypassCookie(),
      store: new MemoryStore(),
    });
    await mm.enable({ message: "down" });
    const app = new Hono();
    app.use(mm.middleware());
    app.get("/admin", (c) => c.text("admin panel"));
    app.get("/", (c) => c.text("home"));
    app.route("/admin", adminRoutes(mm, { authorize: () => false }));
    app.route("/", adminRoutes(mm, { authorize: () => false }));
    app.all("*", (c) => c.text("app"));
    const panel = await app.fetch(new Request("http://l/admin"));
    assert.equal(panel.status, 503);
    assert.doesNotMatch(await panel.text(), /admin panel/);
    const home = await app.fetch(new Request("http://l/"));
    assert.equal(home.status, 503);
    assert.doesNotMatch(await home.text(), /home/);
    // The admin routes no app route shadows still answer (here: 401).
    const on = await app.fetch(
      new Request("http://l/admin/on", {
        method: "POST",
      }),
    );
    assert.equal(on.status, 401);
    assert.equal(
      (await app.fetch(
        new Request("http://l/off", {
          method: "POST",
        }),
      )).status,
      401,
    );
  });

  it("app.use() middleware registered before the admin mount does not block it while on", async () => {
    const mm = createMaintenance({
      bypass: bypassCookie(),
      store: new MemoryStore(),
    });
    await mm.enable({ message: "down" });
    const app = new Hono();
    const seen: string[] = [];
    app.use("*", async (c, next) => {
      seen.push(c.req.path);
      await next();
    });
    app.use(mm.middleware());
    app.use("/maintenance-mode/*", async (_c, next) => await next());
    app.route(
      "/maintenance-mode",
      adminRoutes(mm, { authorize: bearerToken(TOKEN) }),
    );
    app.all("*", (c) => c.text("app"));
    const res = await app.fetch(
      new Request("http://l/maintenance-mode", { headers: AUTH }),
    );
    assert.equal(res.status, 200);
    assert.equal((await res.json()).enabled, true);
    const off = await app.fetch(
      new Request("http://l/maintenance-mode/off", {
        method: "POST",
        headers: AUTH,
      }),
    );
    assert.equal(off.status, 200);
    assert.equal(await mm.isEnabled(), false);
    assert.deepEqual(seen, ["/maintenance-mode", "/maintenance-mode/off"]);
  });

  it("a store that fails on write: 503 with the reason (fault injected: a real store cannot be made to fail on cue)", async () => {
    const store = new MemoryStore();
    store.write = () => Promise.reject(new Error("disk on fire"));
    const mm = createMaintenance({ bypass: bypassCookie(), store });
    const app = new Hono();
    app.route("/m", adminRoutes(mm, { authorize: () => true }));
    const res = await app.fetch(
      new Request("http://l/m/on", { method: "POST" }),
    );
    assert.equal(res.status, 503);
    const body = await res.json();
    assert.equal(body.error, "store_failed");
    assert.match(body.message, /disk on fire/);
  });
});

describe("admin routes: form bodies, odd fields, odd failures", () => {
  function adminApp(): {
    mm: Maintenance;
    store: CountingStore;
    post(body: BodyInit, type?: string): Promise<Response>;
  } {
    const store = new CountingStore();
    const mm = createMaintenance({
      bypass: bypassCookie(),
      store,
      cache: { ttlMs: 60_000 },
    });
    const app = new Hono();
    app.use(mm.middleware());
    app.route("/m", adminRoutes(mm, { authorize: bearerToken(TOKEN) }));
    const post = async (body: BodyInit, type?: string) =>
      await app.fetch(
        new Request("http://l/m/on", {
          method: "POST",
          headers: {
            ...AUTH,
            origin: "http://l",
            ...(type ? { "content-type": type } : {}),
          },
          body,
        }),
      );
    return { mm, store, post };
  }

  it("a form's multi-line message (CR LF, as browsers send a textarea) is saved with newlines", async () => {
    const { mm, post } = adminApp();
    // HTML forms send every line break of a textarea as CR LF, urlencoded or multipart.
    const r = await post(
      new URLSearchParams({ message: "Line one\r\nLine two" }).toString(),
      "application/x-www-form-urlencoded",
    );
    const body = await r.json();
    assert.equal(r.status, 200, JSON.stringify(body));
    assert.equal(body.state.message, "Line one\nLine two");
    assert.equal((await mm.getState()).message, "Line one\nLine two");
    const form = new FormData();
    form.set("message", "A\r\nB\r\n\r\nC");
    const m = await post(form);
    const mBody = await m.json();
    assert.equal(m.status, 200, JSON.stringify(mBody));
    assert.equal(mBody.state.message, "A\nB\n\nC");
    // Other control characters are still refused.
    const bell = await post(
      "message=a%07b",
      "application/x-www-form-urlencoded",
    );
    assert.equal(bell.status, 400);
    assert.match((await bell.json()).message, /control characters/);
  });

  it("a form time whose + offset arrived as a space: 400 saying to send %2B", async () => {
    const { store, post } = adminApp();
    // curl -d 'until=2030-01-01T14:00:00+02:00' sends a raw "+", which a form reads
    // as a space.
    const r = await post(
      "until=2099-01-01T14:00:00+02:00",
      "application/x-www-form-urlencoded",
    );
    const body = await r.json();
    assert.equal(r.status, 400);
    assert.match(body.message, /^until must be an ISO-8601 date and time/);
    assert.match(body.message, /send \+02:00 as %2B02:00/);
    assert.equal(store.writes, 0);
    // Encoded, it is what was meant.
    const ok = await post(
      "until=2099-01-01T14:00:00%2B02:00",
      "application/x-www-form-urlencoded",
    );
    const okBody = await ok.json();
    assert.equal(ok.status, 200, JSON.stringify(okBody));
    assert.equal(okBody.state.endsAt, "2099-01-01T12:00:00.000Z");
  });

  it("form fields named like Object.prototype members are unknown fields, not duplicates", async () => {
    const { store, post } = adminApp();
    for (
      const k of ["constructor", "__proto__", "toString", "hasOwnProperty"]
    ) {
      const r = await post(`${k}=1`, "application/x-www-form-urlencoded");
      const body = await r.json();
      assert.equal(r.status, 400, k);
      assert.equal(
        body.message,
        `unknown field "${k}" (POST /on takes message, readOnly, for, from, until, retryAfter, refresh, secret, withSecret, note)`,
      );
    }
    // Duplicates are still duplicates.
    const twice = await post(
      "message=a&message=b",
      "application/x-www-form-urlencoded",
    );
    assert.match(
      (await twice.json()).message,
      /field "message" is given twice/,
    );
    assert.equal(store.writes, 0);
  });

  it("a store that rejects with something not an Error: 503 with what it said", async () => {
    const store = new MemoryStore();
    store.write = () => Promise.reject("disk full");
    const mm = createMaintenance({ bypass: bypassCookie(), store });
    const app = new Hono();
    app.route("/m", adminRoutes(mm, { authorize: () => true }));
    const res = await app.fetch(
      new Request("http://l/m/off", { method: "POST" }),
    );
    assert.equal(res.status, 503);
    const body = await res.json();
    assert.equal(body.error, "store_failed");
    assert.equal(body.message, "the state was not written: disk full");
  });

  it("a store write that timed out: 503 saying it may still have landed (fault injected)", async () => {
    // A timeout after the store took the write: s3rver cannot be made to do it on cue.
    const store = new MemoryStore();
    store.write = () =>
      Promise.reject(
        Object.assign(new Error("S3 did not answer within 1000 ms"), {
          code: "TIMEOUT",
        }),
      );
    const mm = createMaintenance({
      bypass: bypassCookie(),
      store,
      onError: () => {},
    });
    const app = new Hono();
    app.route("/m", adminRoutes(mm, { authorize: () => true }));
    const res = await app.fetch(
      new Request("http://l/m/off", { method: "POST" }),
    );
    assert.equal(res.status, 503);
    assert.match(
      (await res.json()).message,
      /^the state was not written: S3 did not answer within 1000 ms \(a write that timed out may still have landed: GET the state to see\)$/,
    );
  });
});

describe("enable(): input the admin routes and the CLI share", () => {
  it("an unknown option is refused, naming it, and nothing is written", async () => {
    const store = new CountingStore();
    const mm = createMaintenance({ bypass: bypassCookie(), store });
    const cases: [Record<string, unknown>, RegExp][] = [
      [
        { mesage: "typo" },
        /unknown enable\(\) option "mesage"; did you mean message\? \(known: message,/,
      ],
      [
        { message: "x", until: "2030-01-01T00:00:00Z" },
        /unknown enable\(\) option "until".*did you mean endsAt\?/,
      ],
      [{ from: "2030-01-01T00:00:00Z" }, /"from".*did you mean startsAt\?/],
      [{ withSecret: true }, /"withSecret".*generateSecret\(\)/],
      [{ enabled: false }, /unknown enable\(\) option "enabled"/],
    ];
    for (const [opts, re] of cases) {
      await assert.rejects(mm.enable(opts as never), (e: Error) => {
        assert.ok(e instanceof TypeError, JSON.stringify(opts));
        assert.match(e.message, re);
        return true;
      });
    }
    assert.equal(store.writes, 0);
    assert.equal(await mm.isEnabled(), false);
  });

  it("a Date outside 1970-9999 is refused when validated, not when written", async () => {
    const now = Date.parse("2030-01-01T00:00:00Z");
    const far = new Date(Date.UTC(10000, 0, 1));
    const early = new Date(-1);
    for (
      const [opts, name] of [
        [{ endsAt: far }, "endsAt"],
        [{ startsAt: early, endsAt: new Date(now + 60_000) }, "startsAt"],
        [{ startsAt: far }, "startsAt"],
      ] as const
    ) {
      await assert.rejects(enabledState(opts, now), (e: Error) => {
        assert.ok(e instanceof RangeError, `${name}: ${e.name}`);
        assert.equal(
          e.message,
          `${name} must be from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z`,
        );
        return true;
      });
    }
    // The edges themselves are fine, and written as they are read back.
    const last = new Date(Date.UTC(9999, 11, 31, 23, 59, 59, 999));
    const store = new CountingStore();
    const mm = createMaintenance({ bypass: bypassCookie(), store });
    const written = await mm.enable({ endsAt: last });
    assert.equal(written.endsAt, "9999-12-31T23:59:59.999Z");
    assert.equal(
      parseState(await store.read()).endsAt,
      "9999-12-31T23:59:59.999Z",
    );
  });
});

describe("enable() and the admin routes: a time out of range says so", () => {
  it("a string before 1970 or after 9999 is a RangeError naming the range, not a format error", async () => {
    const now = Date.parse("2030-01-01T00:00:00Z");
    for (const t of ["10000-01-01T00:00:00Z", "+010000-01-01T00:00:00Z"]) {
      await assert.rejects(
        enabledState({ endsAt: t }, now),
        (e: Error) =>
          e instanceof RangeError &&
          e.message ===
            `endsAt must be from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z (got ${t})`,
        t,
      );
    }
    await assert.rejects(
      enabledState({
        startsAt: "1969-12-31T00:00:00Z",
        endsAt: "2031-01-01T00:00:00Z",
      }, now),
      RangeError,
    );
    // A day that does not exist is still a format error.
    await assert.rejects(
      enabledState({ endsAt: "2030-02-30T00:00:00Z" }, now),
      TypeError,
    );
    // The admin routes' 400 says the same.
    const mm = createMaintenance({
      bypass: bypassCookie(),
      store: new CountingStore(),
    });
    const app = new Hono();
    app.route(
      "/admin",
      adminRoutes(mm, { authorize: () => true }),
    );
    const r = await app.request("/admin/on", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ until: "10000-01-01T00:00:00Z" }),
    });
    assert.equal(r.status, 400);
    assert.match(
      (await r.json()).message,
      /holds instants from 1970 to 9999 only/,
    );
  });
});

describe("enable(): message length and characters", () => {
  it("counts characters as people do (an emoji is one), and says how many there are", async () => {
    const now = Date.parse("2030-01-01T00:00:00Z");
    const full = "🔧".repeat(2000); // 4000 UTF-16 units
    const store = new CountingStore();
    const mm = createMaintenance({ bypass: bypassCookie(), store });
    await mm.enable({ message: full });
    // The state it wrote reads back: the parser counts the same way.
    assert.equal(parseState(await store.read()).message, full);
    await assert.rejects(
      enabledState({ message: "🔧".repeat(2001) }, now),
      (e: Error) => {
        assert.ok(e instanceof RangeError);
        assert.equal(
          e.message,
          "message must be at most 2000 characters (it has 2001)",
        );
        return true;
      },
    );
  });

  it("refuses C1 controls (a terminal acts on U+009B as on ESC [), keeps other text", async () => {
    const now = Date.parse("2030-01-01T00:00:00Z");
    for (const ch of ["\u0085", "\u009b", "\u0080", "\u009f"]) {
      await assert.rejects(
        enabledState({ message: `a${ch}b` }, now),
        /message must not contain control characters/,
        JSON.stringify(ch),
      );
    }
    for (const ok of ["\u00a0é", "שלום", "a\tb\nc"]) {
      assert.equal((await enabledState({ message: ok }, now)).message, ok);
    }
  });
});

describe("demo: admin routes at /maintenance-mode by MAINTENANCE_ADMIN_TOKEN", () => {
  const runtime = currentRuntime();
  let dir: string;
  let demo: RunningProcess | undefined;

  before(async () => {
    dir = await makeTempDir();
  });
  after(async () => {
    await demo?.stop();
    await removeDir(dir);
  });

  async function startDemo(env: Record<string, string>): Promise<string> {
    const [cmd, args] = scriptCommand(runtime, "scripts/demo.ts");
    demo = startProcess(cmd, args, {
      env: cleanEnv({
        PORT: "0",
        MAINTENANCE_STATE_FILE: `${dir}/state.txt`,
        ...env,
      }),
    });
    const m = await demo.waitFor(
      /listening on (http:\/\/[^\s]+?)\/?\s/,
      60_000,
    );
    return m[1];
  }

  it(`with the token (${runtime}): bearer-only admin routes that work while on`, async () => {
    await writeFile(`${dir}/state.txt`, "0");
    const base = await startDemo({ MAINTENANCE_ADMIN_TOKEN: TOKEN });
    try {
      const get = async (
        path: string,
        headers: Record<string, string> = {},
      ) => {
        const res = await fetch(`${base}${path}`, { headers });
        await res.body?.cancel();
        return res.status;
      };
      assert.equal(await get("/maintenance-mode"), 401);
      assert.equal(
        await get("/maintenance-mode", { authorization: "Bearer nope" }),
        401,
      );
      const on = await fetch(`${base}/maintenance-mode/on`, {
        method: "POST",
        headers: { ...AUTH, "content-type": "application/json" },
        body: JSON.stringify({ message: "demo down", withSecret: true }),
      });
      assert.equal(on.status, 200);
      const { secret } = await on.json();
      assert.equal(await get("/"), 503);
      assert.equal(await get("/maintenance-mode", AUTH), 200);
      assert.equal(
        parseState(await readFile(`${dir}/state.txt`, "utf8")).message,
        "demo down",
      );
      // The bypass works in the demo, and its page says so.
      const v = await fetch(`${base}/${secret}`, { redirect: "manual" });
      await v.body?.cancel();
      const cookie = v.headers.get("set-cookie")!.split(";")[0];
      const page = await fetch(`${base}/`, { headers: { cookie } });
      assert.equal(page.status, 200);
      assert.match(await page.text(), /through the secret bypass/);
      const off = await fetch(`${base}/maintenance-mode/off`, {
        method: "POST",
        headers: AUTH,
      });
      await off.body?.cancel();
      assert.equal(off.status, 200);
      assert.equal(await get("/"), 200);
    } finally {
      await demo?.stop();
      demo = undefined;
    }
  });

  it(`without the token (${runtime}): not mounted, 404`, async () => {
    await writeFile(`${dir}/state.txt`, "0");
    const base = await startDemo({});
    try {
      for (const [method, path] of [["GET", ""], ["POST", "/on"]]) {
        const res = await fetch(`${base}/maintenance-mode${path}`, {
          method,
          headers: AUTH,
        });
        await res.body?.cancel();
        assert.equal(res.status, 404, `${method} ${path}`);
      }
    } finally {
      await demo?.stop();
      demo = undefined;
    }
  });

  it(`a token too short (${runtime}): exits 2 naming the variable`, async () => {
    const [cmd, args] = scriptCommand(runtime, "scripts/demo.ts");
    const r = await runProcess(cmd, args, {
      env: cleanEnv({
        PORT: "0",
        MAINTENANCE_STATE_FILE: `${dir}/state.txt`,
        MAINTENANCE_ADMIN_TOKEN: "short",
      }),
      timeoutMs: 60_000,
    });
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, /MAINTENANCE_ADMIN_TOKEN: .*at least 16 characters/);
  });
});

describe("admin routes: read-only, who and why, an end by itself (issue 16)", () => {
  const T = Date.parse("2030-01-01T10:00:00Z");

  /**
   * Middleware, admin routes at /m (authorize: `who`, by default the bearer token) and
   * an app that answers every method on every path, on a fixed clock.
   */
  function site(who?: (c: Context) => boolean | string) {
    const store = new CountingStore();
    const mm = createMaintenance({
      bypass: bypassCookie(),
      store,
      cache: { ttlMs: 60_000 },
      now: () => T,
    });
    const app = new Hono();
    app.use(mm.middleware());
    app.route("/m", adminRoutes(mm, { authorize: who ?? bearerToken(TOKEN) }));
    app.all("*", (c) => c.text(`app ${c.req.method}`));
    async function admin(
      method: string,
      path: string,
      body?: unknown,
      type = "application/json",
    ): Promise<{ status: number; json: Record<string, unknown> }> {
      const res = await app.fetch(
        new Request(`http://l/m${path}`, {
          method,
          headers: {
            ...AUTH,
            ...(body === undefined ? {} : { "content-type": type }),
          },
          body: body === undefined
            ? undefined
            : typeof body === "string"
            ? body
            : JSON.stringify(body),
        }),
      );
      return { status: res.status, json: await res.json() };
    }
    return { store, mm, app, admin };
  }

  it("POST /on with readOnly and a note: the status has readOnly, updatedBy, note, updatedAt", async () => {
    const { mm, admin } = site();
    const on = await admin("POST", "/on", {
      readOnly: true,
      message: "Migrating",
      note: "migrating orders (ticket 42)",
    });
    assert.equal(on.status, 200, JSON.stringify(on.json));
    assert.equal(on.json.enabled, true);
    assert.equal(on.json.readOnly, true);
    const state = on.json.state as Record<string, unknown>;
    assert.equal(state.readOnly, true);
    assert.equal(
      state.updatedBy,
      "admin",
      "bearerToken's true is recorded as admin",
    );
    assert.equal(state.note, "migrating orders (ticket 42)");
    assert.equal(state.updatedAt, new Date(T).toISOString());
    const status = await admin("GET", "");
    assert.deepEqual(status.json, on.json);
    const stored = await mm.getState();
    assert.equal(stored.readOnly, true);
    assert.equal(stored.updatedBy, "admin");
    assert.equal(stored.note, "migrating orders (ticket 42)");
    // Not read-only: readOnly false at the top, and no readOnly in the state.
    const full = await admin("POST", "/on", { readOnly: false });
    assert.equal(full.json.readOnly, false);
    assert.equal(
      (full.json.state as Record<string, unknown>).readOnly,
      undefined,
    );
    assert.equal((full.json.state as Record<string, unknown>).note, undefined);
  });

  it("read-only through the admin routes: reads pass, writes get 503 (JSON with readOnly), the admin routes still work", async () => {
    const { app, admin } = site();
    await admin("POST", "/on", { readOnly: true, message: "Back soon" });
    for (const method of ["GET", "HEAD", "OPTIONS"]) {
      const res = await app.fetch(new Request("http://l/x", { method }));
      await res.body?.cancel();
      assert.equal(res.status, 200, method);
    }
    for (const method of ["POST", "PUT", "PATCH", "DELETE"]) {
      const res = await app.fetch(
        new Request("http://l/x", {
          method,
          headers: { accept: "application/json" },
        }),
      );
      assert.equal(res.status, 503, method);
      const body = await res.json();
      assert.equal(body.readOnly, true, method);
      assert.equal(body.message, "Back soon");
    }
    const off = await admin("POST", "/off");
    assert.equal(off.status, 200);
    const res = await app.fetch(new Request("http://l/x", { method: "POST" }));
    assert.equal(res.status, 200);
    assert.equal(await res.text(), "app POST");
  });

  it("readOnly as a form field, with for and a note; the false spellings leave it out", async () => {
    const { admin } = site();
    const on = await admin(
      "POST",
      "/on",
      "readOnly=on&for=30m&note=storage+move",
      "application/x-www-form-urlencoded",
    );
    assert.equal(on.status, 200, JSON.stringify(on.json));
    const state = on.json.state as Record<string, unknown>;
    assert.equal(state.readOnly, true);
    assert.equal(state.note, "storage move");
    assert.equal(state.endsAt, new Date(T + 30 * 60_000).toISOString());
    for (const no of ["false", "0", "off", ""]) {
      const r = await admin(
        "POST",
        "/on",
        `readOnly=${no}`,
        "application/x-www-form-urlencoded",
      );
      assert.equal(r.status, 200, no);
      assert.equal(
        (r.json.state as Record<string, unknown>).readOnly,
        undefined,
        no,
      );
      assert.equal(r.json.readOnly, false, no);
    }
  });

  it("for with from counts from from, as the CLI's --for", async () => {
    const { admin } = site();
    const r = await admin("POST", "/on", {
      from: "2030-01-01T14:00:00+02:00",
      for: "2h",
    });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    const state = r.json.state as Record<string, unknown>;
    assert.equal(state.startsAt, "2030-01-01T12:00:00.000Z");
    assert.equal(state.endsAt, "2030-01-01T14:00:00.000Z");
    assert.equal(r.json.scheduled, true);
  });

  it("for: a duration string or milliseconds sets endsAt from now", async () => {
    const { admin } = site();
    for (
      const [value, ms] of [
        ["90s", 90_000],
        ["2h", 7_200_000],
        ["1h30m", 5_400_000],
        [1500, 1500],
        [86_400_000, 86_400_000],
      ] as const
    ) {
      const r = await admin("POST", "/on", { for: value });
      assert.equal(r.status, 200, `${value}: ${JSON.stringify(r.json)}`);
      assert.equal(
        (r.json.state as Record<string, unknown>).endsAt,
        new Date(T + ms).toISOString(),
        String(value),
      );
    }
  });

  it("bad for, readOnly, note or by: 400 saying what to change, and nothing written", async () => {
    const { store, mm, admin } = site();
    const cases: [unknown, RegExp][] = [
      [
        { for: "30m", until: "2030-01-02T00:00:00Z" },
        /give either for \(how long, such as 30m\) or until \(an end time\), not both/,
      ],
      [{ for: "5000" }, /^for: duration "5000" needs a unit: 5000s, 5000m/],
      [
        { from: "2029-12-31T00:00:00Z", for: "1h" },
        /^the end that for sets, 2029-12-31T01:00:00.000Z is in the past/,
      ],
      [{ for: "soon" }, /^for: duration "soon" is not understood/],
      [{ for: "0s" }, /^for: duration "0s" is zero/],
      [{ for: "400d" }, /^for: duration "400d" is more than 365 days/],
      [
        { for: 0 },
        /for must be a duration such as "30m".*milliseconds from 1 to 31536000000.*\(got 0\)/,
      ],
      [{ for: -5 }, /for must be .*\(got -5\)/],
      [{ for: 1.5 }, /for must be .*\(got 1\.5\)/],
      [{ for: true }, /for must be .*\(got true\)/],
      [{ for: 31_536_000_001 }, /for must be .*365 days/],
      [{ readOnly: "maybe" }, /readOnly must be true or false/],
      [{ readonly: true }, /unknown field "readonly"; did you mean readOnly\?/],
      [
        { endsAt: "2030-01-02T00:00:00Z" },
        /unknown field "endsAt"; did you mean until\?/,
      ],
      [{ duration: "30m" }, /unknown field "duration"; did you mean for\?/],
      [{ note: 42 }, /note must be a string/],
      [{ note: "n".repeat(2001) }, /note must be at most 2000 characters/],
      [
        { by: "mallory" },
        /^by is not a field: a write is recorded under the name authorize returns \(for this request, "admin"\)$/,
      ],
      [{ updatedBy: "mallory" }, /^updatedBy is not a field/],
    ];
    for (const [body, re] of cases) {
      const r = await admin("POST", "/on", body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.json.error, "bad_request", JSON.stringify(body));
      assert.match(String(r.json.message), re, JSON.stringify(body));
    }
    const offCases: [unknown, RegExp][] = [
      [{ message: "x" }, /unknown field "message" \(POST \/off takes note\)/],
      [{ notes: "x" }, /unknown field "notes"; did you mean note\?/],
      [{ note: ["x"] }, /note must be a string/],
      [{ by: "x" }, /^by is not a field/],
    ];
    for (const [body, re] of offCases) {
      const r = await admin("POST", "/off", body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.match(String(r.json.message), re, JSON.stringify(body));
    }
    assert.equal(store.writes, 0);
    assert.equal(await mm.isEnabled(), false);
  });

  it("POST /off with a note records who and why on the off state; without a body it still works", async () => {
    const { mm, admin } = site();
    await admin("POST", "/on", { note: "deploy" });
    const off = await admin("POST", "/off", { note: "deploy done" });
    assert.equal(off.status, 200, JSON.stringify(off.json));
    assert.equal(off.json.enabled, false);
    assert.equal(off.json.readOnly, false);
    const state = off.json.state as Record<string, unknown>;
    assert.equal(state.enabled, false);
    assert.equal(state.updatedBy, "admin");
    assert.equal(state.note, "deploy done");
    assert.equal((await mm.getState()).note, "deploy done");
    const form = await admin(
      "POST",
      "/off",
      "note=by+form",
      "application/x-www-form-urlencoded",
    );
    assert.equal((form.json.state as Record<string, unknown>).note, "by form");
    // curl -X POST without a body, or an empty text/plain one: off, no note.
    for (const body of [undefined, ""]) {
      const r = await admin("POST", "/off", body, "text/plain");
      assert.equal(r.status, 200, JSON.stringify(r.json));
      assert.equal((r.json.state as Record<string, unknown>).note, undefined);
      assert.equal(
        (r.json.state as Record<string, unknown>).updatedBy,
        "admin",
      );
    }
    const xml = await admin("POST", "/off", "<off/>", "application/xml");
    assert.equal(xml.status, 415);
  });

  it("a name authorize returns is recorded as updatedBy, on and off; trimmed", async () => {
    let name = "alice@web-1";
    const { mm, admin } = site(() => name);
    const on = await admin("POST", "/on", { note: "why" });
    assert.equal(
      (on.json.state as Record<string, unknown>).updatedBy,
      "alice@web-1",
    );
    name = "  bob  ";
    const off = await admin("POST", "/off");
    assert.equal((off.json.state as Record<string, unknown>).updatedBy, "bob");
    assert.equal((await mm.getState()).updatedBy, "bob");
    // A name in the body is refused, naming who this request is.
    const by = await admin("POST", "/on", { by: "mallory" });
    assert.match(String(by.json.message), /for this request, "bob"/);
  });

  it("bearerToken wrapped to name who holds the token (as its docs say)", async () => {
    const ci = bearerToken(TOKEN);
    const store = new CountingStore();
    const mm = createMaintenance({ bypass: bypassCookie(), store });
    const app = new Hono();
    app.route(
      "/m",
      adminRoutes(mm, { authorize: async (c) => (await ci(c)) && "ci" }),
    );
    const on = (headers: Record<string, string>) =>
      app.fetch(new Request("http://l/m/on", { method: "POST", headers }));
    const refused = await on({
      authorization: "Bearer wrong-token-0123456789",
    });
    assert.equal(refused.status, 401);
    const ok = await on(AUTH);
    assert.equal(ok.status, 200);
    assert.equal((await ok.json()).state.updatedBy, "ci");
    assert.equal(store.writes, 1);
  });

  it("a name the state cannot hold: 500 telling the app to fix authorize, nothing written", async () => {
    for (const name of ["x".repeat(201), "eve\u001b[31m", "a\nb"]) {
      const { store, admin } = site(() => name);
      for (
        const [method, path] of [["GET", ""], ["POST", "/on"], ["POST", "/off"]]
      ) {
        const r = await admin(method, path);
        assert.equal(
          r.status,
          500,
          `${JSON.stringify(name)} ${method} ${path}`,
        );
        assert.equal(r.json.error, "bad_authorize");
        assert.match(
          String(r.json.message),
          /^authorize returned a name (of 201 characters|with control characters), which the state cannot record as updatedBy \(at most 200 characters, no control characters\): return a shorter name, or true/,
        );
      }
      assert.equal(store.writes, 0);
    }
    // 200 characters: recorded.
    const ok = "é".repeat(200);
    const { admin } = site(() => ok);
    const r = await admin("POST", "/on");
    assert.equal((r.json.state as Record<string, unknown>).updatedBy, ok);
  });

  it('visitors never see the note or who: not on the page, not in the JSON, not in c.get("maintenance")', async () => {
    const store = new MemoryStore();
    const mm = createMaintenance({
      bypass: bypassCookie(),
      store,
      cache: { ttlMs: 60_000 },
    });
    const app = new Hono();
    app.use(mm.middleware());
    app.route("/m", adminRoutes(mm, { authorize: () => "zelda@ops-host-7" }));
    app.all("*", (c) => c.json(c.get("maintenance" as never)));
    for (const readOnly of [false, true]) {
      const on = await app.fetch(
        new Request("http://l/m/on", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({
            readOnly,
            message: "Back soon",
            note: "secret-operator-note",
          }),
        }),
      );
      assert.equal(on.status, 200);
      for (const method of ["GET", "POST"]) {
        for (const accept of ["text/html", "application/json"]) {
          const res = await app.fetch(
            new Request("http://l/page", { method, headers: { accept } }),
          );
          const text = await res.text();
          assert.equal(
            res.status,
            readOnly && method === "GET" ? 200 : 503,
            `${readOnly} ${method} ${accept}`,
          );
          assert.doesNotMatch(text, /secret-operator-note|zelda|ops-host-7/);
          assert.doesNotMatch(text, /updatedBy|"note"/);
        }
      }
    }
  });
});
