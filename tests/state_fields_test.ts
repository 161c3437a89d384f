/**
 * The state's new fields (issue 16 items 2 and 5): `readOnly`, `updatedBy` and `note`
 * are read and written with their limits; fields a newer version wrote are kept on a
 * round trip (parse → serialize, `setState(await getState())` on a real FileStore and
 * a MemoryStore); older formats read as before; `note` and `updatedBy` are for
 * operators only: never in `c.get("maintenance").state`, `render`'s state, the default
 * page or the JSON answer, while `mm.getState()` has them.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { Hono } from "hono";
import { createMaintenance, type Maintenance } from "../src/maintenance.ts";
import type {
  MaintenanceInfo,
  MaintenanceVariables,
  MiddlewareOptions,
} from "../src/middleware.ts";
import { guard } from "../src/guard.ts";
import {
  isActive,
  type MaintenanceState,
  parseState,
  serializeState,
  StateParseError,
  toSnapshot,
} from "../src/_state.ts";
import { FileStore } from "../stores/file.ts";
import { MemoryStore } from "../stores/memory.ts";
import type { StateStore } from "../stores/_types.ts";
import { serveFetch, useTempDirs } from "./helpers.ts";

type App = Hono<{ Variables: MaintenanceVariables }>;

const NOTE = "zq-operator-note-7731: migrating orders, ping Bob";
const BY = "alice-zq-4410@web-1";

/** A state with a newer version's fields beside ours. */
const NEWER =
  '{"enabled":true,"message":"Back soon","readOnly":true,"updatedBy":"carol@web-3",' +
  '"note":"from the future","futureFlag":true,"futureObject":{"a":[1,2,{"b":null}]},' +
  '"futureText":"ünïcödé ✓"}';

describe("parseState and serializeState: readOnly, updatedBy, note", () => {
  it("round-trips the three fields", () => {
    const state: MaintenanceState = {
      enabled: true,
      message: "m",
      readOnly: true,
      updatedAt: "2026-12-05T09:00:00.000Z",
      updatedBy: "alice@web-1",
      note: "migrating orders\nsecond line",
    };
    const text = serializeState(state);
    assert.deepEqual(parseState(text), state);
    const raw = JSON.parse(text);
    assert.equal(raw.readOnly, true);
    assert.equal(raw.updatedBy, "alice@web-1");
    assert.equal(raw.note, "migrating orders\nsecond line");
  });

  it("writes the known keys in order, updatedBy and note after updatedAt", () => {
    const text = serializeState({
      note: "n",
      updatedBy: "b",
      readOnly: true,
      enabled: true,
      updatedAt: "2026-12-05T09:00:00.000Z",
    });
    assert.deepEqual(Object.keys(JSON.parse(text)), [
      "enabled",
      "readOnly",
      "updatedAt",
      "updatedBy",
      "note",
    ]);
  });

  it("readOnly false or null reads as absent; null updatedBy and note too", () => {
    assert.deepEqual(
      parseState(
        '{"enabled":true,"readOnly":false,"updatedBy":null,"note":null}',
      ),
      { enabled: true },
    );
    assert.deepEqual(parseState('{"enabled":true,"readOnly":null}'), {
      enabled: true,
    });
  });

  // The core spec: "readOnly — Only `true` is written."
  // Regression (a bug these tests found, fixed in d2b5fe8): serializeState({ enabled: true,
  // readOnly: false }) writes "readOnly":false.
  it("only readOnly: true is written (readOnly: false is left out)", () => {
    const text = serializeState({ enabled: true, readOnly: false });
    assert.equal(JSON.parse(text).readOnly, undefined, text);
  });

  it("updatedBy up to 200 characters, note up to 2000 (code points: an emoji is one)", () => {
    const by = "b".repeat(200);
    const note = "😀".repeat(2000); // 4000 UTF-16 units, 2000 characters
    const s = parseState(
      JSON.stringify({ enabled: true, updatedBy: by, note }),
    );
    assert.equal(s.updatedBy, by);
    assert.equal(s.note, note);
    const state = {
      enabled: false,
      updatedAt: "2026-01-01T00:00:00.000Z",
      updatedBy: by,
      note,
    };
    assert.deepEqual(parseState(serializeState(state)), state);
  });

  const corrupt: [string, Record<string, unknown>, RegExp][] = [
    ["updatedBy too long", { updatedBy: "b".repeat(201) }, /"updatedBy"/],
    ["updatedBy a number", { updatedBy: 5 }, /"updatedBy"/],
    ["updatedBy an object", { updatedBy: { name: "a" } }, /"updatedBy"/],
    ["note too long", { note: "n".repeat(2001) }, /"note"/],
    ["note an array", { note: ["a"] }, /"note"/],
    ["note true", { note: true }, /"note"/],
    ["readOnly a string", { readOnly: "yes" }, /"readOnly"/],
    ["readOnly a number", { readOnly: 1 }, /"readOnly"/],
  ];
  for (const [name, fields, field] of corrupt) {
    it(`corrupt: ${name}, with a message naming the field`, () => {
      const text = JSON.stringify({ enabled: true, ...fields });
      assert.throws(
        () => parseState(text),
        (e: unknown) =>
          e instanceof StateParseError &&
          /maintenance state is corrupt/.test(e.message) &&
          field.test(e.message),
      );
      // And nothing writes it: serializeState refuses it with the same reason.
      assert.throws(
        () =>
          serializeState(
            { enabled: true, ...fields } as unknown as MaintenanceState,
          ),
        (e: unknown) => e instanceof TypeError && field.test(e.message),
      );
    });
  }
});

describe("fields of a newer version are kept", () => {
  it("parseState keeps them; serializeState writes them back after the known keys", () => {
    const state = parseState(NEWER) as unknown as Record<string, unknown>;
    assert.equal(state.futureFlag, true);
    assert.deepEqual(state.futureObject, { a: [1, 2, { b: null }] });
    assert.equal(state.futureText, "ünïcödé ✓");
    const text = serializeState(state as unknown as MaintenanceState);
    const raw = JSON.parse(text);
    assert.equal(raw.futureFlag, true);
    assert.deepEqual(raw.futureObject, { a: [1, 2, { b: null }] });
    assert.equal(raw.futureText, "ünïcödé ✓");
    assert.equal(raw.readOnly, true);
    assert.equal(raw.updatedBy, "carol@web-3");
    assert.equal(raw.note, "from the future");
    const keys = Object.keys(raw);
    assert.deepEqual(keys.slice(-3), [
      "futureFlag",
      "futureObject",
      "futureText",
    ]);
    assert.equal(keys[0], "enabled");
    // And again: a second round trip changes nothing.
    assert.equal(serializeState(parseState(text)), text);
  });

  it("a key named __proto__ stays data: no prototype is touched", () => {
    const state = parseState('{"enabled":true,"__proto__":{"polluted":1}}');
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal(
      (state as unknown as Record<string, unknown>).polluted,
      undefined,
    );
    const raw = serializeState(state);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.match(raw, /"__proto__":\{"polluted":1\}/);
  });

  const dirs = useTempDirs("maintenance-state-fields-");

  async function roundTrip(
    store: StateStore,
    readRaw: () => Promise<string | null>,
  ): Promise<void> {
    await store.write(NEWER);
    const mm = createMaintenance({ store, cache: false });
    const got = await mm.getState() as unknown as Record<string, unknown>;
    assert.equal(got.futureFlag, true);
    await mm.setState(await mm.getState());
    const raw = JSON.parse((await readRaw())!);
    assert.equal(raw.enabled, true);
    assert.equal(raw.message, "Back soon");
    assert.equal(raw.readOnly, true);
    assert.equal(raw.updatedBy, "carol@web-3");
    assert.equal(raw.note, "from the future");
    assert.equal(raw.futureFlag, true);
    assert.deepEqual(raw.futureObject, { a: [1, 2, { b: null }] });
    assert.equal(raw.futureText, "ünïcödé ✓");
    assert.ok(raw.updatedAt, "the write stamps updatedAt");
  }

  it("mm.setState(await mm.getState()) keeps them on a real FileStore", async () => {
    const path = `${await dirs.fresh()}/state.txt`;
    const store = new FileStore(path);
    await roundTrip(store, () => readFile(path, "utf8"));
  });

  it("mm.setState(await mm.getState()) keeps them on a MemoryStore", async () => {
    const store = new MemoryStore();
    await roundTrip(store, () => store.read());
  });
});

describe("older state formats still read", () => {
  const dirs = useTempDirs("maintenance-state-old-");

  it("parseState: 1, 0, true, false, empty, absent", () => {
    assert.deepEqual(parseState("1"), { enabled: true });
    assert.deepEqual(parseState("1\n"), { enabled: true });
    assert.deepEqual(parseState("0"), { enabled: false });
    assert.deepEqual(parseState("true"), { enabled: true });
    assert.deepEqual(parseState("false"), { enabled: false });
    assert.deepEqual(parseState(""), { enabled: false });
    assert.deepEqual(parseState(null), { enabled: false });
  });

  it("parseState: a state of the previous version (no new fields) is unchanged", () => {
    const old =
      '{"enabled":true,"message":"m","retryAfter":60,"endsAt":"2030-01-01T14:00:00.000Z","updatedAt":"2026-01-01T00:00:00.000Z"}';
    assert.deepEqual(parseState(old), JSON.parse(old));
    assert.equal(serializeState(parseState(old)), old + "\n");
  });

  it("parseState: Django's schedule {start, end}, without start/end left over", () => {
    const s = parseState(
      '{"start":"2030-01-01T10:00:00Z","end":"2030-01-01T12:00:00Z"}',
    );
    assert.deepEqual(s, {
      enabled: true,
      startsAt: "2030-01-01T10:00:00.000Z",
      endsAt: "2030-01-01T12:00:00.000Z",
    });
    assert.equal(
      isActive(toSnapshot(s), Date.parse("2030-01-01T11:00:00Z")),
      true,
    );
    const raw = JSON.parse(serializeState(s));
    assert.equal(raw.start, undefined);
    assert.equal(raw.end, undefined);
  });

  const files: [string, string, boolean][] = [
    ["1", "1\n", true],
    ["0", "0", false],
    ["true", "true", true],
    ["an empty file", "", false],
    [
      "Django's schedule",
      '{"start":"2020-01-01T00:00:00Z","end":"9999-01-01T00:00:00Z"}',
      true,
    ],
  ];
  for (const [name, text, on] of files) {
    it(`a FileStore holding ${name} reads as ${on ? "on" : "off"}, and round-trips`, async () => {
      const path = `${await dirs.fresh()}/maintenance_mode_state.txt`;
      await writeFile(path, text);
      const mm = createMaintenance({
        store: new FileStore(path),
        cache: false,
      });
      assert.equal(await mm.isEnabled(), on);
      await mm.setState(await mm.getState());
      const raw = JSON.parse(await readFile(path, "utf8"));
      assert.equal(raw.enabled, on);
      assert.equal(await mm.isEnabled(), on);
    });
  }
});

describe("note and updatedBy are never shown to visitors", () => {
  async function setup(
    options: MiddlewareOptions = {},
    readOnly = false,
  ): Promise<{ app: App; mm: Maintenance; seen: MaintenanceInfo[] }> {
    const mm = createMaintenance({
      store: new MemoryStore(),
      cache: { ttlMs: 60_000 },
    });
    await mm.enable({ message: "Back soon", by: BY, note: NOTE, readOnly });
    const app: App = new Hono();
    const seen: MaintenanceInfo[] = [];
    app.use(mm.middleware(options));
    app.all("*", (c) => {
      seen.push(c.get("maintenance"));
      return c.json(c.get("maintenance"));
    });
    return { app, mm, seen };
  }

  function assertHidden(text: string, where: string): void {
    assert.ok(!text.includes("zq-operator-note-7731"), `note in ${where}`);
    assert.ok(!text.includes("alice-zq-4410"), `updatedBy in ${where}`);
    assert.ok(!/"note"|"updatedBy"/.test(text), `a field name in ${where}`);
  }

  it("mm.getState() has them (the operator's side)", async () => {
    const { mm } = await setup();
    const state = await mm.getState();
    assert.equal(state.note, NOTE);
    assert.equal(state.updatedBy, BY);
  });

  it("the default page, the JSON answer and the HEAD answer leave them out", async () => {
    const { app } = await setup();
    const html = await app.fetch(new Request("http://localhost/"));
    assert.equal(html.status, 503);
    const page = await html.text();
    assert.match(page, /Back soon/);
    assertHidden(page, "the page");
    const json = await app.fetch(
      new Request("http://localhost/", {
        headers: { accept: "application/json" },
      }),
    );
    assert.equal(json.status, 503);
    const body = await json.text();
    assert.match(body, /Back soon/);
    assertHidden(body, "the JSON answer");
    const head = await app.fetch(
      new Request("http://localhost/", { method: "HEAD" }),
    );
    for (const [name, value] of head.headers) {
      assertHidden(`${name}: ${value}`, "a header");
    }
    await head.body?.cancel();
  });

  it("c.get('maintenance').state leaves them out (read-only: a GET reaches the app)", async () => {
    const { app, seen } = await setup({}, true);
    const res = await app.fetch(new Request("http://localhost/page"));
    assert.equal(res.status, 200);
    assertHidden(await res.text(), "c.get('maintenance') as JSON");
    assert.equal(seen[0].state.message, "Back soon");
    assert.equal(seen[0].state.note, undefined);
    assert.equal(seen[0].state.updatedBy, undefined);
    assert.equal("note" in seen[0].state, false);
    assert.equal("updatedBy" in seen[0].state, false);
  });

  it("c.get('maintenance').state leaves them out on an exempt path", async () => {
    const { app, seen } = await setup({ ignorePaths: ["/status"] });
    const res = await app.fetch(new Request("http://localhost/status"));
    assert.equal(res.status, 200);
    assertHidden(await res.text(), "c.get('maintenance') as JSON");
    assert.equal(seen[0].enabled, true);
  });

  it("c.get('maintenance').state leaves them out when off (the hot path)", async () => {
    const mm = createMaintenance({
      store: new MemoryStore(),
      cache: { ttlMs: 60_000 },
    });
    await mm.disable({ by: BY, note: NOTE });
    const app: App = new Hono();
    app.use(mm.middleware());
    app.get("*", (c) => c.json(c.get("maintenance")));
    for (let i = 0; i < 3; i++) {
      const res = await app.fetch(new Request("http://localhost/"));
      assert.equal(res.status, 200);
      const body = await res.text();
      assertHidden(body, "c.get('maintenance') when off");
      assert.equal(JSON.parse(body).enabled, false);
    }
    assert.equal((await mm.getState()).note, NOTE);
  });

  it("render's state leaves them out (middleware and guard)", async () => {
    const states: MaintenanceState[] = [];
    const { app, mm } = await setup({
      render: (_c, state) => {
        states.push(state);
        return JSON.stringify(state);
      },
    });
    const res = await app.fetch(new Request("http://localhost/"));
    assert.equal(res.status, 503);
    assertHidden(await res.text(), "render's state");
    assert.equal(states[0].message, "Back soon");
    const g = guard(mm, () => new Response("app"), {
      render: (_req, state) => {
        states.push(state);
        return JSON.stringify(state);
      },
    });
    const res2 = await g(new Request("http://localhost/"));
    assert.equal(res2.status, 503);
    assertHidden(await res2.text(), "the guard's render state");
    assert.equal(states.length, 2);
  });

  describe("over HTTP (real server on 127.0.0.1)", () => {
    let server: Awaited<ReturnType<typeof serveFetch>>;
    before(async () => {
      const { app } = await setup();
      server = await serveFetch(app.fetch);
    });
    after(async () => {
      await server?.stop();
    });
    it("neither the page nor the JSON answer carries them", async () => {
      const page = await fetch(`${server.url}/`);
      assert.equal(page.status, 503);
      assertHidden(await page.text(), "the page over HTTP");
      const json = await fetch(`${server.url}/`, {
        method: "POST",
        headers: { accept: "application/json" },
        body: "x",
      });
      assert.equal(json.status, 503);
      assertHidden(await json.text(), "the JSON answer over HTTP");
    });
  });
});
