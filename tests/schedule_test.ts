/**
 * Scheduled windows: before `startsAt` requests pass and `c.get("maintenance")` says
 * what is coming (for a banner); inside the window they get the 503; after `endsAt` it
 * is over without any write; `Retry-After` counts down to `endsAt`; `refresh` sends a
 * `Refresh` header. A controllable clock (the `now` option) walks through the window.
 */
import { adminRoutes } from "../src/admin.ts";
import { bypassCookie } from "../src/bypass.ts";
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Hono } from "hono";
import { bearerToken } from "../src/admin.ts";
import { enabledState } from "../src/_enable.ts";
import { createMaintenance, type Maintenance } from "../src/maintenance.ts";
import {
  forceMaintenance,
  type MaintenanceVariables,
} from "../src/middleware.ts";
import { MemoryStore } from "../stores/memory.ts";
import { runCli } from "../main.ts";
import { makeTempDir, removeDir } from "./helpers.ts";

const T0 = Date.parse("2030-01-01T12:00:00Z");
const MIN = 60_000;
const TOKEN = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";

class CountingStore extends MemoryStore {
  writes = 0;
  override write(text: string): Promise<void> {
    this.writes++;
    return super.write(text);
  }
}

interface World {
  clock: { t: number };
  store: CountingStore;
  mm: Maintenance;
  app: Hono<{ Variables: MaintenanceVariables }>;
  seen: { enabled: boolean; scheduled: boolean; startsAt?: string }[];
}

function world(): World {
  const clock = { t: T0 };
  const store = new CountingStore();
  const mm = createMaintenance({
    bypass: bypassCookie(),
    store,
    cache: { ttlMs: 1000 },
    now: () => clock.t,
  });
  const seen: World["seen"] = [];
  const app = new Hono<{ Variables: MaintenanceVariables }>();
  app.use(mm.middleware());
  app.route(
    "/maintenance-mode",
    adminRoutes(mm, { authorize: bearerToken(TOKEN) }),
  );
  app.get("/", (c) => {
    const info = c.get("maintenance");
    seen.push({
      enabled: info.enabled,
      scheduled: info.scheduled,
      startsAt: info.state.startsAt,
    });
    return c.text(
      info.scheduled ? `banner: maintenance from ${info.state.startsAt}` : "",
    );
  });
  return { clock, store, mm, app, seen };
}

async function get(
  w: World,
  path = "/",
  headers: Record<string, string> = {},
): Promise<Response> {
  return await w.app.fetch(new Request(`http://localhost${path}`, { headers }));
}

describe("scheduled window", () => {
  it("before startsAt: requests pass, and c.get('maintenance') announces the window", async () => {
    const w = world();
    const startsAt = new Date(T0 + 10 * MIN).toISOString();
    const endsAt = new Date(T0 + 40 * MIN).toISOString();
    await w.mm.enable({ startsAt, endsAt, message: "upgrade" });
    const res = await get(w);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), `banner: maintenance from ${startsAt}`);
    assert.deepEqual(w.seen.at(-1), {
      enabled: false,
      scheduled: true,
      startsAt,
    });
    assert.equal(await w.mm.isEnabled(), false);
    const admin = await get(w, "/maintenance-mode", {
      authorization: `Bearer ${TOKEN}`,
    });
    const body = await admin.json();
    assert.equal(body.enabled, false);
    assert.equal(body.scheduled, true);
    assert.equal(body.state.startsAt, startsAt);
  });

  it("from startsAt to endsAt: 503 with Retry-After counting down to endsAt", async () => {
    const w = world();
    await w.mm.enable({
      startsAt: new Date(T0 + 10 * MIN),
      endsAt: new Date(T0 + 40 * MIN),
      retryAfter: 5, // ignored while endsAt is known
    });
    w.clock.t = T0 + 10 * MIN; // the first instant of the window
    let res = await get(w);
    assert.equal(res.status, 503);
    assert.equal(res.headers.get("retry-after"), String(30 * 60));
    w.clock.t = T0 + 30 * MIN + 500;
    res = await get(w);
    assert.equal(res.status, 503);
    assert.equal(res.headers.get("retry-after"), String(10 * 60)); // rounded up
    w.clock.t = T0 + 40 * MIN - 1;
    res = await get(w);
    assert.equal(res.headers.get("retry-after"), "1");
    const json = await get(w, "/", { accept: "application/json" });
    assert.equal(
      (await json.json()).endsAt,
      new Date(T0 + 40 * MIN).toISOString(),
    );
    assert.equal(w.seen.length, 0, "the app never ran");
  });

  it("at endsAt it is over, with no write; the store still says enabled", async () => {
    const w = world();
    await w.mm.enable({ endsAt: new Date(T0 + 5 * MIN) });
    const writes = w.store.writes;
    assert.equal((await get(w)).status, 503);
    w.clock.t = T0 + 5 * MIN;
    const res = await get(w);
    assert.equal(res.status, 200);
    assert.deepEqual(w.seen.at(-1), {
      enabled: false,
      scheduled: false,
      startsAt: undefined,
    });
    assert.equal(await w.mm.isEnabled(), false);
    assert.equal(w.store.writes, writes, "nothing was written");
    assert.equal(JSON.parse((await w.store.read())!).enabled, true);
  });

  it("without endsAt: Retry-After is the state's retryAfter, else the default 300", async () => {
    const w = world();
    await w.mm.enable({ retryAfter: 90 });
    assert.equal((await get(w)).headers.get("retry-after"), "90");
    await w.mm.enable({});
    assert.equal((await get(w)).headers.get("retry-after"), "300");
  });

  it("refresh: a Refresh header and a meta refresh; none without it", async () => {
    const w = world();
    await w.mm.enable({ refresh: 30 });
    let res = await get(w);
    assert.equal(res.headers.get("refresh"), "30");
    assert.match(
      await res.text(),
      /<meta http-equiv="refresh" content="30">/,
    );
    await w.mm.enable({});
    res = await get(w);
    assert.equal(res.headers.get("refresh"), null);
    assert.doesNotMatch(await res.text(), /http-equiv="refresh"/);
  });

  it("upstream Django's stored schedule {start, end} is honoured", async () => {
    const clock = { t: T0 };
    const store = new MemoryStore(
      JSON.stringify({
        start: new Date(T0 + MIN).toISOString(),
        end: new Date(T0 + 2 * MIN).toISOString(),
      }),
    );
    const mm = createMaintenance({
      bypass: bypassCookie(),
      store,
      cache: false,
      now: () => clock.t,
    });
    const app = new Hono();
    app.use(mm.middleware());
    app.get("/", (c) => c.text("ok"));
    const status = async () =>
      (await app.fetch(new Request("http://l/"))).status;
    assert.equal(await status(), 200);
    clock.t = T0 + MIN;
    assert.equal(await status(), 503);
    clock.t = T0 + 2 * MIN;
    assert.equal(await status(), 200);
  });

  it("a secret works inside the window, and its visit already works before it", async () => {
    const w = world();
    const secret = "window-secret-0123456789";
    await w.mm.enable({
      startsAt: new Date(T0 + MIN),
      endsAt: new Date(T0 + 10 * MIN),
      secret,
    });
    const visit = await get(w, `/${secret}`);
    assert.equal(visit.status, 302);
    const cookie = visit.headers.get("set-cookie")!.split(";")[0];
    w.clock.t = T0 + 2 * MIN;
    assert.equal((await get(w)).status, 503);
    assert.equal((await get(w, "/", { cookie })).status, 200);
  });

  it("refusals: a window that ended, ends before it starts, or is no date", async () => {
    const now = T0;
    await assert.rejects(
      enabledState({ endsAt: new Date(now - 1) }, now),
      (e: Error) => e instanceof RangeError && /in the past/.test(e.message),
    );
    await assert.rejects(
      enabledState({ endsAt: new Date(now) }, now),
      RangeError,
    );
    await assert.rejects(
      enabledState({
        startsAt: new Date(now + 2 * MIN),
        endsAt: new Date(now + MIN),
      }, now),
      /startsAt .* must be before endsAt/,
    );
    await assert.rejects(
      enabledState({ startsAt: "next tuesday" }, now),
      TypeError,
    );
    await assert.rejects(
      enabledState({ refresh: -1 }, now),
      RangeError,
    );
    const w = world();
    await assert.rejects(w.mm.enable({ endsAt: new Date(T0 - MIN) }));
    assert.equal(w.store.writes, 0);
  });

  it("CLI --from/--until write the window; a past --until is refused (exit 2)", async () => {
    const dir = await makeTempDir();
    try {
      const file = `${dir}/state.txt`;
      const out: string[] = [];
      const err: string[] = [];
      const io = {
        out: (l: string) => out.push(l),
        err: (l: string) => err.push(l),
      };
      const from = new Date(Date.now() + 3_600_000).toISOString();
      const until = new Date(Date.now() + 7_200_000).toISOString();
      assert.equal(
        await runCli(
          ["on", "--from", from, "--until", until, "--file", file],
          io,
        ),
        0,
      );
      assert.match(out.join("\n"), /OFF; scheduled from/);
      const past = new Date(Date.now() - 60_000).toISOString();
      assert.equal(
        await runCli(["on", "--until", past, "--file", file], io),
        2,
      );
      assert.match(err[0], /--until .* is in the past/);
      const status: string[] = [];
      await runCli(["status", "--json", "--file", file], {
        out: (l) => status.push(l),
        err: () => {},
      });
      const s = JSON.parse(status[0]);
      assert.equal(s.state.startsAt, from);
      assert.equal(s.state.endsAt, until);
    } finally {
      await removeDir(dir);
    }
  });
});

describe("scheduled window: what the middleware tells and answers around it", () => {
  it("a state switched off with a start still ahead is not announced as scheduled", async () => {
    const w = world();
    await w.mm.setState({
      enabled: false,
      startsAt: new Date(T0 + MIN).toISOString(),
    });
    assert.equal((await get(w)).status, 200);
    assert.deepEqual(w.seen.at(-1), {
      enabled: false,
      scheduled: false,
      startsAt: new Date(T0 + MIN).toISOString(),
    });
  });

  it("c.get('maintenance') follows each new state on the same app", async () => {
    const w = world();
    await w.mm.enable({ startsAt: new Date(T0 + MIN), message: "first" });
    await (await get(w)).body?.cancel();
    assert.equal(w.seen.at(-1)?.scheduled, true);
    await w.mm.disable();
    await (await get(w)).body?.cancel();
    assert.deepEqual(w.seen.at(-1), {
      enabled: false,
      scheduled: false,
      startsAt: undefined,
    });
  });

  it("enabled: false (forced off): the secret's visit before the window is not taken either", async () => {
    const clock = { t: T0 };
    const mm = createMaintenance({
      bypass: bypassCookie(),
      store: new MemoryStore(),
      cache: { ttlMs: 1000 },
      now: () => clock.t,
    });
    const secret = "window-secret-0123456789";
    await mm.enable({ startsAt: new Date(T0 + MIN), secret });
    const app = new Hono();
    app.use(mm.middleware({ enabled: false }));
    app.all("*", (c) => c.text("app"));
    const res = await app.fetch(new Request(`http://localhost/${secret}`));
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("set-cookie"), null);
    assert.equal(await res.text(), "app");
  });

  it("forceMaintenance(true) before the window: Retry-After counts down to endsAt", async () => {
    const w = world();
    await w.mm.enable({
      startsAt: new Date(T0 + MIN),
      endsAt: new Date(T0 + 10 * MIN),
    });
    const app = new Hono();
    app.use(w.mm.middleware());
    app.get("/old", forceMaintenance(true), (c) => c.text("never"));
    const res = await app.fetch(new Request("http://localhost/old"));
    assert.equal(res.status, 503);
    assert.equal(res.headers.get("retry-after"), String(10 * 60));
    await res.body?.cancel();
  });

  it("with the real clock (the hot path), a window that has started is in force", async () => {
    const mm = createMaintenance({
      bypass: bypassCookie(),
      store: new MemoryStore(),
      cache: { ttlMs: 60_000 },
    });
    await mm.enable({
      startsAt: new Date(Date.now() - MIN),
      endsAt: new Date(Date.now() + 10 * MIN),
    });
    const app = new Hono();
    app.use(mm.middleware());
    app.all("*", (c) => c.text("app"));
    for (let i = 0; i < 3; i++) {
      const res = await app.fetch(new Request("http://localhost/"));
      assert.equal(res.status, 503, `request ${i}`);
      await res.body?.cancel();
    }
  });
});
