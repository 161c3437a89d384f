/**
 * Secret bypass: `enable({ secret })` stores only a salted hash; `GET /<secret>` sets a
 * signed, HttpOnly, SameSite=Lax cookie (Secure on https) and redirects to `/`; that
 * cookie passes; a new secret, `off`, or tampering makes it worthless; every instance
 * sharing the state accepts it. Served by a real HTTP server on 127.0.0.1 where the
 * wire matters (cookies, redirects).
 */
import { after, before, describe, it } from "node:test";
import { bypassCookie } from "../src/bypass.ts";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { Hono } from "hono";
import { timingSafeEqual } from "hono/utils/buffer";
import {
  type BypassHandler,
  createBypassCookie,
  verifySecret,
} from "../src/_bypass.ts";
import { generateSecret, hashSecret } from "../src/_secret.ts";
import { createMaintenance, type Maintenance } from "../src/maintenance.ts";
import { enabledState } from "../src/_enable.ts";
import { FileStore } from "../stores/file.ts";
import { forceMaintenance } from "../src/middleware.ts";
import { MemoryStore } from "../stores/memory.ts";
import { parseState, serializeState, toSnapshot } from "../src/_state.ts";
import { runCli } from "../main.ts";
import {
  bypassCookieValue,
  makeTempDir,
  removeDir,
  serveFetch,
  sleep,
  type TestServer,
} from "./helpers.ts";

const SECRET = "b7c1e0f4-4d1a-4c0e-9a55-0c6a2f1d9e3b";
const STORED_RE = /^[0-9a-f]{32}:[0-9a-f]{64}$/;

/** App: middleware, a `forceMaintenance(true)` route, then a catch-all 200. */
function appFor(mm: Maintenance): Hono {
  const app = new Hono();
  app.use(mm.middleware());
  app.get("/always-down", forceMaintenance(true), (c) => c.text("never"));
  app.all("*", (c) => c.text(`app ${c.req.path}`));
  return app;
}

function memoryMaintenance(now?: () => number): Maintenance {
  return createMaintenance({
    bypass: bypassCookie(),
    store: new MemoryStore(),
    cache: { ttlMs: 60_000 },
    ...(now ? { now } : {}),
  });
}

/** `GET /<secret>`; returns the Set-Cookie `name=value` and the whole response. */
async function visit(
  base: string,
  secret: string,
): Promise<{ res: Response; cookie: string | undefined }> {
  const res = await fetch(`${base}/${secret}`, { redirect: "manual" });
  await res.body?.cancel();
  const set = res.headers.get("set-cookie");
  return { res, cookie: set ? set.split(";")[0] : undefined };
}

async function get(
  base: string,
  path: string,
  cookie?: string,
): Promise<Response> {
  const res = await fetch(`${base}${path}`, {
    redirect: "manual",
    headers: cookie ? { cookie } : {},
  });
  await res.text();
  return res;
}

describe("secret: checked, generated, hashed", () => {
  it("hashSecret refuses short, long, non-URL-safe and non-string secrets, saying why", async () => {
    await assert.rejects(hashSecret("short"), (e: Error) => {
      assert.ok(e instanceof RangeError);
      assert.match(e.message, /16 to 128 characters.*got 5/);
      return true;
    });
    await assert.rejects(hashSecret("x".repeat(129)), RangeError);
    await assert.rejects(hashSecret("has a space in it ok"), (e: Error) => {
      assert.ok(e instanceof TypeError);
      assert.match(e.message, /letters, digits, "-" and "_"/);
      return true;
    });
    await assert.rejects(hashSecret("slash/in/the/secret/x"), TypeError);
    await assert.rejects(hashSecret(1234567890123456 as never), TypeError);
    assert.match(await hashSecret("x".repeat(16)), STORED_RE);
    assert.match(await hashSecret("x".repeat(128)), STORED_RE);
  });

  it("generateSecret: 32 URL-safe characters, a new one each time", async () => {
    const a = generateSecret();
    const b = generateSecret();
    assert.match(a, /^[A-Za-z0-9_-]{32}$/);
    assert.equal(await verifySecret(a, await hashSecret(a)), true);
    assert.notEqual(a, b);
  });

  it("hashSecret: salt:hash hex with a fresh salt; verifySecret matches only the secret", async () => {
    const h1 = await hashSecret(SECRET);
    const h2 = await hashSecret(SECRET);
    assert.match(h1, STORED_RE);
    assert.notEqual(h1, h2, "a fresh salt per hash");
    assert.equal(await verifySecret(SECRET, h1), true);
    assert.equal(await verifySecret(SECRET, h2), true);
    assert.equal(await verifySecret(SECRET + "x", h1), false);
    assert.equal(await verifySecret(SECRET.slice(1), h1), false);
    assert.equal(await verifySecret(SECRET, "not:a-hash"), false);
    assert.equal(await verifySecret(SECRET, h1.toUpperCase()), false);
    // The state format accepts it, and round-trips it.
    const state = parseState(serializeState({ enabled: true, bypass: h1 }));
    assert.equal(state.bypass, h1);
    await assert.rejects(hashSecret("short"), RangeError);
  });

  it("the hash is SHA-256 of salt bytes then the secret (Web Crypto)", async () => {
    const stored = await hashSecret(SECRET);
    const [saltHex, hashHex] = stored.split(":");
    const salt = new Uint8Array(
      saltHex.match(/../g)!.map((h) => parseInt(h, 16)),
    );
    const data = new Uint8Array([...salt, ...new TextEncoder().encode(SECRET)]);
    const digest = new Uint8Array(
      await crypto.subtle.digest("SHA-256", data),
    );
    const hex = [...digest].map((b) => b.toString(16).padStart(2, "0")).join(
      "",
    );
    assert.equal(hashHex, hex);
  });

  it("enable({ secret }) writes only the hash; the secret is nowhere in the store", async () => {
    const store = new MemoryStore();
    const mm = createMaintenance({ bypass: bypassCookie(), store });
    const written = await mm.enable({ message: "down", secret: SECRET });
    const text = (await store.read())!;
    assert.ok(!text.includes(SECRET));
    assert.match(written.bypass!, STORED_RE);
    assert.equal(parseState(text).bypass, written.bypass);
    assert.equal(await verifySecret(SECRET, written.bypass!), true);
  });

  it("enable() refuses a bad secret and writes nothing", async () => {
    const store = new MemoryStore();
    const mm = createMaintenance({ bypass: bypassCookie(), store });
    await assert.rejects(mm.enable({ secret: "too-short" }), RangeError);
    await assert.rejects(
      mm.enable({ secret: "no spaces allowed here!" }),
      TypeError,
    );
    assert.equal(await store.read(), null);
    await assert.rejects(
      enabledState({ secret: "x" }, Date.now()),
      /16 to 128/,
    );
  });

  it("timingSafeEqual (hono/utils/buffer, which verifySecret and bearerToken use) is async and compares whole strings", async () => {
    const same = timingSafeEqual("abc", "abc");
    assert.ok(same instanceof Promise);
    assert.equal(await same, true);
    assert.equal(await timingSafeEqual("abc", "abd"), false);
    assert.equal(await timingSafeEqual("abc", "ab"), false);
    assert.equal(await timingSafeEqual("", ""), true);
  });
});

describe("bypass over HTTP (real server on 127.0.0.1)", () => {
  let mm: Maintenance;
  let server: TestServer;

  before(async () => {
    mm = memoryMaintenance();
    await mm.enable({ message: "down", secret: SECRET });
    server = await serveFetch(appFor(mm).fetch);
  });
  after(async () => {
    await server?.stop();
  });

  it("without the cookie: 503", async () => {
    assert.equal((await get(server.url, "/")).status, 503);
  });

  it("GET /<secret>: 302 to /, an HttpOnly SameSite=Lax cookie, no Secure on http", async () => {
    const { res, cookie } = await visit(server.url, SECRET);
    assert.equal(res.status, 302);
    assert.equal(res.headers.get("location"), "/");
    assert.equal(res.headers.get("cache-control"), "no-store");
    assert.equal(res.headers.get("referrer-policy"), "no-referrer");
    const set = res.headers.get("set-cookie")!;
    assert.match(set, /^maintenance_bypass=[A-Za-z0-9_-]{43};/);
    assert.match(set, /; HttpOnly/);
    assert.match(set, /; SameSite=Lax/);
    assert.match(set, /; Path=\//);
    assert.match(set, /; Max-Age=43200/);
    assert.doesNotMatch(set, /Secure/);
    assert.ok(!set.includes(SECRET), "the cookie is not the secret");
    assert.ok(cookie);
  });

  it("with the cookie: the app answers, on every path", async () => {
    const { cookie } = await visit(server.url, SECRET);
    for (const path of ["/", "/deep/page", "/api/x?y=1"]) {
      const res = await get(server.url, path, cookie);
      assert.equal(res.status, 200, path);
    }
  });

  it("the cookie among others, and after a forged cookie of the same name", async () => {
    const { cookie } = await visit(server.url, SECRET);
    assert.equal(
      (await get(server.url, "/", `a=1; ${cookie}; b=2`)).status,
      200,
    );
    assert.equal(
      (await get(server.url, "/", `maintenance_bypass=forged; ${cookie}`))
        .status,
      200,
    );
  });

  it("a tampered, truncated, extended or empty cookie is ignored: 503", async () => {
    const { cookie } = await visit(server.url, SECRET);
    const [name, value] = cookie!.split("=");
    const flip = (ch: string) => (ch === "A" ? "B" : "A");
    const tampered = [
      `${name}=${flip(value[0])}${value.slice(1)}`,
      `${name}=${value.slice(0, -1)}${flip(value.at(-1)!)}`,
      `${name}=${value.slice(0, -1)}`,
      `${name}=${value}x`,
      `${name}=`,
      `${name}=${SECRET}`,
      `other_name=${value}`,
    ];
    for (const c of tampered) {
      assert.equal((await get(server.url, "/", c)).status, 503, c);
    }
  });

  it("a wrong secret, another method, or a deeper path sets no cookie: the 503 page", async () => {
    for (
      const path of [
        "/b7c1e0f4-4d1a-4c0e-9a55-0c6a2f1d9e3c",
        `/${SECRET}/x`,
        `/x/${SECRET}`,
        "/short",
      ]
    ) {
      const res = await get(server.url, path);
      assert.equal(res.status, 503, path);
      assert.equal(res.headers.get("set-cookie"), null, path);
    }
    const post = await fetch(`${server.url}/${SECRET}`, {
      method: "POST",
      redirect: "manual",
    });
    await post.body?.cancel();
    assert.equal(post.status, 503);
    assert.equal(post.headers.get("set-cookie"), null);
  });

  it("forceMaintenance(true) routes stay down even with the cookie", async () => {
    const { cookie } = await visit(server.url, SECRET);
    assert.equal((await get(server.url, "/always-down", cookie)).status, 503);
  });
});

describe("bypass: invalidation, https, fleets, cookieKey", () => {
  it("Secure on https (and with secure: true)", async () => {
    const mm = memoryMaintenance();
    await mm.enable({ secret: SECRET });
    const app = appFor(mm);
    const res = await app.fetch(new Request(`https://example.com/${SECRET}`));
    assert.equal(res.status, 302);
    assert.match(res.headers.get("set-cookie")!, /; Secure(;|$)/);

    const forced = createMaintenance({
      store: new MemoryStore(),
      bypass: bypassCookie({ secure: true, cookieName: "bp", maxAge: 60 }),
    });
    await forced.enable({ secret: SECRET });
    const res2 = await appFor(forced).fetch(
      new Request(`http://localhost/${SECRET}`),
    );
    const set = res2.headers.get("set-cookie")!;
    assert.match(set, /^bp=/);
    assert.match(set, /Max-Age=60/);
    assert.match(set, /; Secure(;|$)/);
  });

  it("a new secret invalidates old cookies; the new one works", async () => {
    const mm = memoryMaintenance();
    await mm.enable({ secret: SECRET });
    const server = await serveFetch(appFor(mm).fetch);
    try {
      const old = (await visit(server.url, SECRET)).cookie;
      assert.equal((await get(server.url, "/", old)).status, 200);
      const next = generateSecret();
      await mm.enable({ secret: next });
      assert.equal((await get(server.url, "/", old)).status, 503);
      assert.equal((await visit(server.url, SECRET)).res.status, 503);
      const fresh = (await visit(server.url, next)).cookie;
      assert.notEqual(fresh, old);
      assert.equal((await get(server.url, "/", fresh)).status, 200);
    } finally {
      await server.stop();
    }
  });

  it("off invalidates old cookies, even when the same secret is used again", async () => {
    const mm = memoryMaintenance();
    await mm.enable({ secret: SECRET });
    const app = appFor(mm);
    const first = (await app.fetch(new Request(`http://l/${SECRET}`))).headers
      .get("set-cookie")!.split(";")[0];
    await mm.disable();
    assert.equal((await mm.getState()).bypass, undefined);
    await mm.enable({ message: "again, no secret" });
    let res = await app.fetch(
      new Request("http://l/", { headers: { cookie: first } }),
    );
    assert.equal(res.status, 503);
    // The same secret again gets a new salt, so a new cookie.
    await mm.enable({ secret: SECRET });
    res = await app.fetch(
      new Request("http://l/", { headers: { cookie: first } }),
    );
    assert.equal(res.status, 503);
    const second = (await app.fetch(new Request(`http://l/${SECRET}`))).headers
      .get("set-cookie")!.split(";")[0];
    assert.notEqual(second, first);
    res = await app.fetch(
      new Request("http://l/", { headers: { cookie: second } }),
    );
    assert.equal(res.status, 200);
  });

  it("every instance sharing the state accepts the cookie (file store, separate controllers)", async () => {
    const dir = await makeTempDir();
    try {
      const path = `${dir}/state.txt`;
      const a = createMaintenance({
        bypass: bypassCookie(),
        store: new FileStore(path),
      });
      await a.enable({ secret: SECRET });
      const sa = await serveFetch(appFor(a).fetch);
      const b = createMaintenance({
        bypass: bypassCookie(),
        store: new FileStore(path),
      });
      const sb = await serveFetch(appFor(b).fetch);
      try {
        const { cookie } = await visit(sa.url, SECRET);
        assert.equal((await get(sb.url, "/", cookie)).status, 200);
        assert.equal((await get(sb.url, "/")).status, 503);
        // An instance started later (a restart) computes the same value.
        const c = createMaintenance({
          bypass: bypassCookie(),
          store: new FileStore(path),
        });
        const res = await appFor(c).fetch(
          new Request("http://l/", { headers: { cookie: cookie! } }),
        );
        assert.equal(res.status, 200);
      } finally {
        await sa.stop();
        await sb.stop();
      }
    } finally {
      await removeDir(dir);
    }
  });

  it("with cookieKey: only instances with the same key accept the cookie", async () => {
    const key = "k".repeat(16) + "0123456789abcdef";
    const store = new MemoryStore();
    const withKey = createMaintenance({
      store,
      bypass: bypassCookie({ cookieKey: key }),
    });
    await withKey.enable({ secret: SECRET });
    const cookie = (await appFor(withKey).fetch(
      new Request(`http://l/${SECRET}`),
    )).headers.get("set-cookie")!.split(";")[0];
    const ask = async (mm: Maintenance) =>
      (await appFor(mm).fetch(
        new Request("http://l/", { headers: { cookie } }),
      )).status;
    assert.equal(
      await ask(
        createMaintenance({ store, bypass: bypassCookie({ cookieKey: key }) }),
      ),
      200,
    );
    assert.equal(
      await ask(createMaintenance({ bypass: bypassCookie(), store })),
      503,
    );
    assert.equal(
      await ask(
        createMaintenance({
          store,
          bypass: bypassCookie({ cookieKey: key + "-other" }),
        }),
      ),
      503,
    );
    // And the keyless value (derivable from the state) is not accepted with a key.
    const keyless = createMaintenance({ bypass: bypassCookie(), store });
    const plain = (await appFor(keyless).fetch(
      new Request(`http://l/${SECRET}`),
    )).headers.get("set-cookie")!.split(";")[0];
    assert.notEqual(plain, cookie);
    const res = await appFor(withKey).fetch(
      new Request("http://l/", { headers: { cookie: plain } }),
    );
    assert.equal(res.status, 503);
  });

  it("bypass options are validated at construction", () => {
    assert.throws(
      () => createBypassCookie({ cookieKey: "short" }),
      /at least 32 characters/,
    );
    assert.throws(
      () => createBypassCookie({ cookieName: "bad name" }),
      TypeError,
    );
    assert.throws(
      () => createBypassCookie({ maxAge: 0 }),
      (e: Error) =>
        e instanceof RangeError &&
        /bypass\.maxAge must be a whole number of seconds from 1 to 31536000 \(got 0\)/
          .test(e.message),
    );
    assert.throws(
      () => createBypassCookie({ cookieKey: 42 as never }),
      (e: Error) =>
        e instanceof TypeError && /cookieKey must be a string/.test(e.message),
    );
    assert.throws(
      () => createBypassCookie({ cookieName: "__Host-bp", secure: false }),
      /needs Secure/,
    );
    assert.throws(
      () => createBypassCookie({ cookiekey: "x" } as never),
      /unknown bypass option "cookiekey"/,
    );
    assert.throws(
      () => createMaintenance({ bypass: bypassCookie({ maxAge: -1 }) }),
      RangeError,
    );
  });

  it("the server refuses a cookie two maxAge periods after it was given out, even a copied one", async () => {
    const mm = createMaintenance({
      store: new MemoryStore(),
      cache: { ttlMs: 60_000 },
      bypass: bypassCookie({ maxAge: 1 }),
    });
    await mm.enable({ secret: SECRET });
    const app = appFor(mm);
    // Start just after a period boundary (periods are maxAge = 1 s long).
    await sleep(1000 - Date.now() % 1000 + 20);
    const period = Math.floor(Date.now() / 1000);
    const res = await app.fetch(new Request(`http://localhost/${SECRET}`));
    assert.match(res.headers.get("set-cookie")!, /Max-Age=1;/);
    const cookie = res.headers.get("set-cookie")!.split(";")[0];
    const status = async () => {
      const r = await app.fetch(
        new Request("http://localhost/", { headers: { cookie } }),
      );
      await r.body?.cancel();
      return r.status;
    };
    assert.equal(await status(), 200);
    // In the next period it still passes: a cookie given out at the end of a period
    // lives its whole maxAge in the browser.
    await sleep((period + 1) * 1000 + 50 - Date.now());
    assert.equal(await status(), 200, "the period after");
    // Two periods on, the server refuses it, whatever the browser kept.
    await sleep((period + 2) * 1000 + 50 - Date.now());
    assert.equal(await status(), 503, "two periods on");
    // A fresh visit gives a cookie that passes again.
    const again = await app.fetch(new Request(`http://localhost/${SECRET}`));
    const fresh = again.headers.get("set-cookie")!.split(";")[0];
    const r = await app.fetch(
      new Request("http://localhost/", { headers: { cookie: fresh } }),
    );
    assert.equal(r.status, 200);
  });

  it("check() answers at once into the next period; the ready() it runs there renews the values", async () => {
    const bypass = createBypassCookie({ maxAge: 1 });
    const snap = toSnapshot(await enabledState({ secret: SECRET }, Date.now()));
    await sleep(1000 - Date.now() % 1000 + 20); // just after a period boundary
    const res = (await bypass.visit(
      new Request(`http://l/${SECRET}`),
      snap,
    ))!;
    const cookie = res.headers.get("set-cookie")!.split(";")[0];
    assert.equal(bypass.check(cookie, snap), true);
    const period = Math.floor(Date.now() / 1000);
    await sleep((period + 1) * 1000 + 50 - Date.now());
    // Next period: the values made in the last one still serve, so check() needs no
    // wait (a boolean, not a promise) and says yes; it makes the next values meanwhile.
    assert.equal(bypass.check(cookie, snap), true, "the period after, at once");
    await sleep(50);
    await sleep((period + 2) * 1000 + 50 - Date.now());
    // Two periods on: the values moved on (thanks to that check), the cookie is old.
    assert.equal(bypass.ready(snap), undefined, "renewed in time");
    assert.equal(bypass.check(cookie, snap), false, "two periods on");
  });

  it("a cookie is accepted in its own period and the ones either side (clock skew), no further", async () => {
    const bypass = createBypassCookie({ maxAge: 3600 });
    const state = await enabledState({ secret: SECRET }, Date.now());
    const snap = toSnapshot(state);
    await bypass.ready(snap);
    const stored = state.bypass!;
    const period = Math.floor(Date.now() / 3_600_000);
    const at = async (p: number) =>
      await bypass.check(
        `maintenance_bypass=${await bypassCookieValue(stored, stored, p)}`,
        snap,
      );
    // Checked away from a period boundary, so `period` is the library's too.
    if (Date.now() % 3_600_000 > 3_599_000) await sleep(1100);
    assert.equal(await at(period), true, "its own period");
    assert.equal(await at(period - 1), true, "the one before");
    assert.equal(await at(period + 1), true, "the one after (a clock ahead)");
    assert.equal(await at(period - 2), false, "two before");
    assert.equal(await at(period + 2), false, "two after");
  });

  it("check() is synchronous once a state's values are made: a promise only for the first request of a new state", async () => {
    const bypass = createBypassCookie();
    const state = await enabledState({ secret: SECRET }, Date.now());
    const snap = toSnapshot(state);
    // The cookie a visit hands out.
    const res = (await bypass.visit(
      new Request(`http://l/${SECRET}`),
      snap,
    ))!;
    const cookie = res.headers.get("set-cookie")!.split(";")[0];
    // A new snapshot of another state: not computed yet.
    const other = toSnapshot(
      await enabledState({ secret: SECRET }, Date.now()),
    );
    const pending = bypass.check(cookie, other);
    assert.ok(pending instanceof Promise, "first check of a new state waits");
    assert.equal(await pending, false, "another salt: another cookie");
    assert.equal(bypass.ready(other), undefined, "computed once");

    assert.equal(bypass.ready(snap), undefined, "the first state's too");
    assert.equal(bypass.check(cookie, snap), true, "steady state: no promise");
    assert.equal(
      bypass.check(cookie, toSnapshot({ ...state })),
      true,
      "a new snapshot of the same state: no new HMAC, no promise",
    );
    assert.equal(bypass.check(null, snap), false);
    assert.equal(bypass.check(cookie, toSnapshot({ enabled: true })), false);
    // The default settings give the same value for the same state.
    const fresh = createBypassCookie();
    assert.equal(await fresh.check(cookie, snap), true);
    // visit() decides at once when a request cannot be a visit.
    assert.equal(bypass.visit(new Request("http://l/short"), snap), undefined);
    assert.equal(
      bypass.visit(new Request(`http://l/${SECRET}`, { method: "POST" }), snap),
      undefined,
    );
    assert.equal(
      bypass.visit(
        new Request(`http://l/${SECRET}`),
        toSnapshot({ enabled: true }),
      ),
      undefined,
    );
  });
});

describe("bypass: odd cookie names and Cookie headers", () => {
  it("a __host- or __secure- name in any case gets Secure, as browsers require", async () => {
    // Browsers match the prefixes whatever their case and drop such a cookie
    // without Secure (checked in Chromium): the bypass link would silently fail.
    for (const cookieName of ["__host-bp", "__HOST-bp", "__secure-bp"]) {
      assert.throws(
        () => createBypassCookie({ cookieName, secure: false }),
        /needs Secure/,
        cookieName,
      );
      const mm = createMaintenance({
        store: new MemoryStore(),
        bypass: bypassCookie({ cookieName }),
      });
      await mm.enable({ secret: SECRET });
      const res = await appFor(mm).fetch(
        new Request(`http://localhost/${SECRET}`),
      );
      assert.equal(res.status, 302, cookieName);
      const set = res.headers.get("set-cookie")!;
      assert.ok(set.startsWith(`${cookieName}=`), set);
      assert.match(set, /; Path=\//);
      assert.match(set, /; Secure(;|$)/, cookieName);
    }
  });

  it("a huge Cookie header of pairs without '=' is read in linear time", async () => {
    const bypass = createBypassCookie();
    const snap = toSnapshot(await enabledState({ secret: SECRET }, Date.now()));
    const res = (await bypass.visit(new Request(`http://l/${SECRET}`), snap))!;
    const cookie = res.headers.get("set-cookie")!.split(";")[0];
    await bypass.ready(snap);
    // 1 MB of "a;": reading it pair by pair takes a few ms; looking for each pair's
    // "=" through the rest of the header took seconds (quadratic).
    const header = "a;".repeat(500_000) + cookie;
    const t0 = performance.now();
    assert.equal(
      bypass.check(header, snap),
      true,
      "the cookie at the end counts",
    );
    assert.equal(bypass.check("a;".repeat(500_000) + "x=1", snap), false);
    const ms = performance.now() - t0;
    assert.ok(ms < 1000, `took ${ms.toFixed(0)} ms`);
  });

  it("odd but valid Cookie headers: spaces, quotes, empty pairs, '=' in other values", async () => {
    const mm = memoryMaintenance();
    await mm.enable({ secret: SECRET });
    const app = appFor(mm);
    const set = (await app.fetch(new Request(`http://l/${SECRET}`))).headers
      .get("set-cookie")!;
    const value = set.split(";")[0].split("=")[1];
    const status = async (cookie: string) =>
      (await app.fetch(new Request("http://l/", { headers: { cookie } })))
        .status;
    for (
      const cookie of [
        `maintenance_bypass=${value}`,
        `  maintenance_bypass = ${value}  `,
        `maintenance_bypass="${value}"`,
        `;;a=b=c;;maintenance_bypass=${value};`,
        `noequals; maintenance_bypass=${value}`,
        `x=\u00e9; maintenance_bypass=${value}`,
      ]
    ) {
      assert.equal(await status(cookie), 200, cookie);
    }
    for (
      const cookie of [
        `maintenance_bypass${value}`,
        `maintenance_bypass==${value}`,
        `xmaintenance_bypass=${value}`,
        `a=maintenance_bypass=${value}`,
      ]
    ) {
      assert.equal(await status(cookie), 503, cookie);
    }
  });
});

describe("CLI: on --secret / --with-secret", () => {
  let dir: string;
  before(async () => {
    dir = await makeTempDir();
  });
  after(async () => {
    await removeDir(dir);
  });

  function capture(): {
    io: { out: (l: string) => void; err: (l: string) => void };
    out: string[];
    err: string[];
  } {
    const out: string[] = [];
    const err: string[] = [];
    return {
      io: { out: (l) => out.push(l), err: (l) => err.push(l) },
      out,
      err,
    };
  }

  it("--with-secret generates a secret, prints it once, stores only its hash; it works", async () => {
    const file = `${dir}/with.txt`;
    const c = capture();
    assert.equal(
      await runCli(["on", "--with-secret", "--file", file], c.io),
      0,
    );
    const line = c.out.find((l) => l.startsWith("bypass secret"));
    const secret = line?.match(/: ([A-Za-z0-9_-]{32})$/)?.[1];
    assert.ok(secret, c.out.join("\n"));
    assert.equal(c.out.join("\n").split(secret).length - 1, 2); // the secret, and /<secret>
    const text = await readFile(file, "utf8");
    assert.ok(!text.includes(secret));
    assert.match(parseState(text).bypass!, STORED_RE);
    // status says a secret is set, without printing it
    const s = capture();
    assert.equal(await runCli(["status", "--file", file], s.io), 0);
    assert.match(s.out.join("\n"), /secret bypass set/);
    assert.ok(!s.out.join("\n").includes(secret));
    // The site accepts it.
    const mm = createMaintenance({
      bypass: bypassCookie(),
      store: new FileStore(file),
    });
    const res = await appFor(mm).fetch(new Request(`http://l/${secret}`));
    assert.equal(res.status, 302);
  });

  it("--secret TEXT is hashed, never printed", async () => {
    const file = `${dir}/given.txt`;
    const c = capture();
    assert.equal(
      await runCli(["on", "--secret", SECRET, "--file", file], c.io),
      0,
    );
    assert.ok(!c.out.join("\n").includes(SECRET));
    const state = parseState(await readFile(file, "utf8"));
    assert.equal(await verifySecret(SECRET, state.bypass!), true);
  });

  it("refusals: short secret, both flags, --secret with off; nothing written", async () => {
    const file = `${dir}/refused.txt`;
    for (
      const args of [
        ["on", "--secret", "short"],
        ["on", "--secret", SECRET, "--with-secret"],
        ["off", "--secret", SECRET],
        ["off", "--with-secret"],
      ]
    ) {
      const c = capture();
      assert.equal(
        await runCli([...args, "--file", file], c.io),
        2,
        args.join(" "),
      );
      assert.match(c.err[0], /--secret|--with-secret/);
    }
    await assert.rejects(readFile(file, "utf8"), { code: "ENOENT" });
  });
});

describe("bypass is optional: @x/maintenance/bypass", () => {
  it("without bypassCookie(), a state's secret lets no one through, and onError says what to add, once", async () => {
    const errors: Error[] = [];
    const mm = createMaintenance({
      store: new MemoryStore(),
      onError: (e) => errors.push(e),
    });
    await mm.enable({ secret: SECRET });
    const app = appFor(mm);
    const visit = await app.request(`/${SECRET}`);
    assert.equal(visit.status, 503);
    assert.equal(visit.headers.get("set-cookie"), null);
    assert.equal((await app.request("/")).status, 503);
    assert.equal(errors.length, 1, "told once, not per request");
    assert.match(errors[0].message, /bypass: bypassCookie\(\)/);
    assert.match(errors[0].message, /@x\/maintenance\/bypass/);
  });

  it("the old options object is refused with the fix", () => {
    assert.throws(
      () =>
        createMaintenance({
          store: new MemoryStore(),
          bypass: { maxAge: 60 } as never,
        }),
      (e: Error) =>
        e instanceof TypeError &&
        /bypassCookie\(\{ \.\.\. \}\) from @x\/maintenance\/bypass/.test(
          e.message,
        ),
    );
  });

  it("the core does not load the bypass cookie's code", async () => {
    const core = await readFile(
      new URL("../src/maintenance.ts", import.meta.url),
      "utf8",
    );
    assert.doesNotMatch(core, /^import \{[^}]*createBypassCookie/m);
    assert.equal(typeof (bypassCookie() as BypassHandler).check, "function");
  });
});
