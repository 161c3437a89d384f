/**
 * `mm.during(fn, options)` (issue 16 item 4): switches maintenance on, runs `fn`, and
 * writes back the state it found in the store however `fn` ends; returns `fn`'s
 * result or rethrows its error; a restore that fails is a StoreError saying what to
 * run by hand; a store that cannot be read first means nothing written and `fn` not
 * run; `by` is recorded on both writes.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { Hono } from "hono";
import { createMaintenance, type Maintenance } from "../src/maintenance.ts";
import type { MaintenanceVariables } from "../src/middleware.ts";
import { parseState, serializeState } from "../src/_state.ts";
import { FileStore } from "../stores/file.ts";
import { MemoryStore } from "../stores/memory.ts";
import { StoreError } from "../stores/_store_error.ts";
import { serveFetch, useTempDirs } from "./helpers.ts";

type App = Hono<{ Variables: MaintenanceVariables }>;

const dirs = useTempDirs("maintenance-during-");

/** A MemoryStore that keeps every text written to it, in order (no fault: a record). */
class RecordingStore extends MemoryStore {
  written: string[] = [];
  override write(text: string): Promise<void> {
    this.written.push(text);
    return super.write(text);
  }
}

/**
 * FAULT INJECTOR (no real store fails on cue at its Nth write, or its first read): a
 * MemoryStore whose writes fail from the `failFromWrite`th on, and whose reads fail
 * while `failReads` is set.
 */
class FaultyStore extends RecordingStore {
  failFromWrite = Infinity;
  failReads = false;
  override read(): Promise<string | null> {
    if (this.failReads) {
      return Promise.reject(new Error("injected read failure"));
    }
    return super.read();
  }
  override write(text: string): Promise<void> {
    if (this.written.length + 1 >= this.failFromWrite) {
      this.written.push(`FAILED ${text}`);
      return Promise.reject(new Error("injected write failure (disk full)"));
    }
    return super.write(text);
  }
}

/** A real Hono app: the middleware, then `/items` for every method. */
function appFor(mm: Maintenance): App {
  const app: App = new Hono();
  app.use(mm.middleware());
  app.all("/items", (c) => c.text(`app ${c.req.method}`));
  return app;
}

async function statusOf(app: App, method: string): Promise<number> {
  const res = await app.fetch(
    new Request("http://localhost/items", {
      method,
      body: method === "GET" ? undefined : "x",
    }),
  );
  await res.body?.cancel();
  return res.status;
}

function memory(store = new MemoryStore()): Maintenance {
  return createMaintenance({ store, cache: { ttlMs: 60_000 } });
}

describe("during(fn): result and state", () => {
  it("returns what fn returns (sync and async)", async () => {
    const mm = memory();
    assert.equal(await mm.during(() => 42), 42);
    const obj = { done: true };
    assert.equal(await mm.during(() => Promise.resolve(obj)), obj);
  });

  it("maintenance is on while fn runs (503 for requests, isEnabled), off afterwards", async () => {
    const mm = memory();
    const app = appFor(mm);
    assert.equal(await statusOf(app, "GET"), 200);
    const inside = await mm.during(async () => ({
      enabled: await mm.isEnabled(),
      get: await statusOf(app, "GET"),
      post: await statusOf(app, "POST"),
    }), { message: "job running" });
    assert.deepEqual(inside, { enabled: true, get: 503, post: 503 });
    assert.equal(await mm.isEnabled(), false);
    assert.equal(await statusOf(app, "POST"), 200);
    assert.equal(await statusOf(app, "GET"), 200);
  });

  it("readOnly: reads pass and writes get the 503 while fn runs", async () => {
    const mm = memory();
    const app = appFor(mm);
    const inside = await mm.during(async () => ({
      get: await statusOf(app, "GET"),
      post: await statusOf(app, "POST"),
      state: await mm.getState(),
    }), { readOnly: true, note: "reindexing" });
    assert.equal(inside.get, 200);
    assert.equal(inside.post, 503);
    assert.equal(inside.state.readOnly, true);
    assert.equal(inside.state.note, "reindexing");
    assert.equal(await statusOf(app, "POST"), 200);
  });

  it("restores a previous ON state (message, window, a newer version's field), not off", async () => {
    const store = new RecordingStore();
    const endsAt = new Date(Date.now() + 3_600_000).toISOString();
    const before = JSON.stringify({
      enabled: true,
      message: "planned outage",
      retryAfter: 900,
      endsAt,
      note: "the planned one",
      futureField: { keep: true },
    });
    await store.write(before);
    store.written = [];
    const mm = memory(store);
    const app = appFor(mm);
    let seenInside = "";
    await mm.during(async () => {
      seenInside = (await mm.getState()).message ?? "";
      assert.equal(await statusOf(app, "GET"), 503);
    }, { message: "job running" });
    assert.equal(seenInside, "job running");
    const after = JSON.parse((await store.read())!);
    assert.equal(after.enabled, true);
    assert.equal(after.message, "planned outage");
    assert.equal(after.retryAfter, 900);
    assert.equal(after.endsAt, endsAt);
    assert.equal(after.note, "the planned one");
    assert.deepEqual(after.futureField, { keep: true });
    assert.equal(
      await statusOf(app, "GET"),
      503,
      "still in the planned outage",
    );
    assert.equal((await mm.getState()).message, "planned outage");
  });

  it("finds the state in the store, not in a cached copy", async () => {
    const store = new MemoryStore();
    const mm = memory(store); // TTL one minute
    assert.equal(await mm.isEnabled(), false); // caches "off"
    // Another writer (another process, the CLI) switches it on meanwhile.
    await createMaintenance({ store, cache: false }).enable({
      message: "from elsewhere",
    });
    assert.equal(await mm.isEnabled(), false, "the cache still says off");
    await mm.during(() => {}, { message: "job" });
    const after = parseState(await store.read());
    assert.equal(after.enabled, true, "the state found in the store is back");
    assert.equal(after.message, "from elsewhere");
  });

  // Writes run one at a time in call order (enable(); disable() ends off), so a
  // during() called after an enable() must find that enable's state.
  // Regression (a bug these tests found, fixed in d2b5fe8): during() reads the store at once,
  // outside the write queue: `mm.enable({ message: "planned" }); await mm.during(fn)`
  // finds the state before the enable landed and restores it: maintenance ends OFF,
  // the planned switch lost.
  it("finds the state of a write called before it (writes in call order)", async () => {
    const store = new MemoryStore();
    const mm = memory(store);
    const planned = mm.enable({ message: "planned" });
    await mm.during(() => {}, { message: "job" });
    await planned;
    const after = parseState(await store.read());
    assert.equal(after.enabled, true, "the planned maintenance is still on");
    assert.equal(after.message, "planned");
  });

  it("someone switches it while fn runs: their state is left as it is, and onError hears so (as the CLI's run)", async () => {
    const store = new MemoryStore();
    const errors: Error[] = [];
    const mm = createMaintenance({
      store,
      cache: { ttlMs: 60_000 },
      onError: (e) => errors.push(e),
    });
    // Another writer (an operator's CLI) over the same store, during the job.
    const operator = createMaintenance({ store, cache: false });
    const result = await mm.during(async () => {
      await operator.enable({ message: "extended by the operator", by: "bob" });
      return "done";
    }, { message: "job" });
    assert.equal(result, "done");
    const after = parseState(await store.read());
    assert.equal(after.message, "extended by the operator", "not set back");
    assert.equal(after.updatedBy, "bob");
    assert.equal(errors.length, 1);
    assert.match(
      errors[0].message,
      /changed while during\(\) ran: left as it is/,
    );
  });

  it("fn throws: the same error is rethrown and the state restored (sync and async)", async () => {
    const mm = memory();
    const boom = new Error("migration failed");
    await assert.rejects(
      mm.during(async () => {
        assert.equal(await mm.isEnabled(), true);
        throw boom;
      }),
      (e) => e === boom,
    );
    assert.equal(await mm.isEnabled(), false);
    await assert.rejects(
      mm.during(() => {
        throw new RangeError("sync");
      }),
      RangeError,
    );
    assert.equal(await mm.isEnabled(), false);
  });

  it("by is recorded on both writes; note on the first, the found note on the restore", async () => {
    const store = new RecordingStore();
    const mm = memory(store);
    await mm.during(() => {}, {
      by: "deploy@ci-7",
      note: "db migration",
      readOnly: true,
    });
    assert.equal(store.written.length, 2);
    const [on, back] = store.written.map((t) => parseState(t));
    assert.equal(on.enabled, true);
    assert.equal(on.readOnly, true);
    assert.equal(on.updatedBy, "deploy@ci-7");
    assert.equal(on.note, "db migration");
    assert.equal(back.enabled, false);
    assert.equal(back.updatedBy, "deploy@ci-7");
    assert.equal(back.note, undefined);
    assert.equal(back.readOnly, undefined);
  });

  it("without by, the restore keeps the found updatedBy", async () => {
    const store = new RecordingStore();
    const mm = memory(store);
    await mm.enable({ by: "alice", note: "planned" });
    store.written = [];
    await mm.during(() => {});
    const back = parseState(store.written[1]);
    assert.equal(back.enabled, true);
    assert.equal(back.updatedBy, "alice");
    assert.equal(back.note, "planned");
  });

  it("bad options: rejected before anything is written; fn not run", async () => {
    const store = new RecordingStore();
    const mm = memory(store);
    let ran = false;
    await assert.rejects(
      mm.during(() => {
        ran = true;
      }, { for: -5 }),
      RangeError,
    );
    await assert.rejects(
      mm.during(() => {
        ran = true;
      }, { updatedBy: "x" } as never),
      /did you mean by/,
    );
    assert.equal(ran, false);
    assert.deepEqual(store.written, []);
  });

  it("on a real FileStore: on during fn, the file holds the state found after", async () => {
    const path = `${await dirs.fresh()}/state.txt`;
    const mm = createMaintenance({ store: new FileStore(path) });
    await mm.disable({ by: "setup" });
    const before = await readFile(path, "utf8");
    const during = await mm.during(async () => await readFile(path, "utf8"));
    assert.equal(parseState(during).enabled, true);
    const after = parseState(await readFile(path, "utf8"));
    assert.equal(after.enabled, false);
    assert.equal(after.updatedBy, parseState(before).updatedBy);
  });
});

describe("during(fn): store failures", () => {
  it("the restore write fails: StoreError RESTORE saying to run 'maintenance off'", async () => {
    const store = new FaultyStore();
    store.failFromWrite = 2; // the enable lands, the restore does not
    const mm = memory(store);
    let ran = false;
    const error = await mm.during(() => {
      ran = true;
      return "result";
    }).then(
      () => assert.fail("during resolved although the restore failed"),
      (e: unknown) => e,
    );
    assert.equal(ran, true);
    assert.ok(error instanceof StoreError, `${error}`);
    assert.equal(error.code, "RESTORE");
    assert.match(error.message, /maintenance off/);
    assert.match(error.message, /injected write failure/);
    assert.equal(
      (error.cause as Error).message,
      "injected write failure (disk full)",
    );
    // It really is still on: the message is true.
    assert.equal(parseState(await store.read()).enabled, true);
  });

  it("the restore of an ON state fails: the message holds the state to set back", async () => {
    const store = new FaultyStore();
    await store.write(
      serializeState({
        enabled: true,
        message: "planned outage",
        updatedAt: "2026-12-05T08:00:00.000Z",
      }),
    );
    store.written = [];
    store.failFromWrite = 2;
    const mm = memory(store);
    const error = await mm.during(() => {}, { message: "job" }).then(
      () => assert.fail("during resolved although the restore failed"),
      (e: unknown) => e,
    );
    assert.ok(error instanceof StoreError);
    assert.equal(error.code, "RESTORE");
    assert.match(error.message, /planned outage/);
    assert.match(error.message, /"enabled":true/);
    assert.doesNotMatch(error.message, /maintenance off/);
  });

  it("fn throws and the restore fails: a StoreError RESTORE", async () => {
    const store = new FaultyStore();
    store.failFromWrite = 2;
    const mm = memory(store);
    await assert.rejects(
      mm.during(() => {
        throw new Error("job failed");
      }),
      (e: unknown) => e instanceof StoreError && e.code === "RESTORE",
    );
  });

  it("the first read fails: nothing written, fn not run, the error rejects", async () => {
    const store = new FaultyStore();
    store.failReads = true;
    const mm = memory(store);
    let ran = false;
    await assert.rejects(
      mm.during(() => {
        ran = true;
      }),
      /injected read failure/,
    );
    assert.equal(ran, false);
    assert.deepEqual(store.written, []);
  });

  it("the store holds a corrupt state: nothing written, fn not run", async () => {
    const store = new RecordingStore("{not a state");
    const mm = memory(store);
    let ran = false;
    await assert.rejects(
      mm.during(() => {
        ran = true;
      }),
      /corrupt/,
    );
    assert.equal(ran, false);
    assert.deepEqual(store.written, []);
  });

  it("the enable write fails: fn not run, the write's error rejects, no restore tried", async () => {
    const store = new FaultyStore();
    store.failFromWrite = 1;
    const mm = memory(store);
    let ran = false;
    await assert.rejects(
      mm.during(() => {
        ran = true;
      }),
      /injected write failure/,
    );
    assert.equal(ran, false);
    assert.equal(store.written.length, 1, "one failed write, no restore");
  });
});

describe("during(fn) over HTTP (real server on 127.0.0.1)", () => {
  it("the server answers 503 while fn runs and 200 after", async () => {
    const mm = memory();
    const server = await serveFetch(appFor(mm).fetch);
    try {
      const get = async () => {
        const res = await fetch(`${server.url}/items`, {
          headers: { accept: "application/json" },
        });
        const body = await res.text();
        return { status: res.status, body };
      };
      const inside = await mm.during(get, {
        message: "nightly job",
        by: "cron@host",
        note: "zq-secret-note",
      });
      assert.equal(inside.status, 503);
      assert.match(inside.body, /nightly job/);
      assert.doesNotMatch(inside.body, /zq-secret-note|cron@host/);
      const after = await get();
      assert.equal(after.status, 200);
      assert.equal(after.body, "app GET");
    } finally {
      await server.stop();
    }
  });
});
