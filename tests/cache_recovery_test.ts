// Recovery after a store outage without traffic: while the store fails, the cache
// retries on a timer of its own, so a state written after the outage is served within
// TTL + RETRY_MS + one read whether or not requests arrive in between (proved against a
// real s3rver that is stopped and started again); and that timer never keeps a process
// alive (a child process with a failing store exits on its own).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { Hono } from "hono";
import { RETRY_MS, StateCache } from "../src/_cache.ts";
import { createMaintenance, type Maintenance } from "../src/maintenance.ts";
import { MemoryStore } from "../stores/memory.ts";
import { S3Store } from "../stores/s3.ts";
import type { StateStore } from "../stores/_types.ts";
import {
  s3ClientFor,
  type S3rverHandle,
  startS3rver,
} from "../scripts/test_servers.ts";
import { ROOT, runProcess, RUNTIMES, scriptCommand, sleep } from "./helpers.ts";

/** Counts the reads of `store` that got an answer, and when the last one did. */
function counted(store: StateStore): StateStore & { answered: number[] } {
  const answered: number[] = [];
  return {
    answered,
    description: store.description,
    async read(signal?: AbortSignal): Promise<string | null> {
      const text = await store.read(signal);
      answered.push(performance.now());
      return text;
    },
    write: (text, signal) => store.write(text, signal),
  };
}

/** A Hono app behind the controller's middleware. */
function appFor(mm: Maintenance): Hono {
  const app = new Hono();
  app.use(mm.middleware());
  app.get("/", (c) => c.text("hello"));
  return app;
}

describe("an idle instance recovers from a store outage on its own", () => {
  it("retries on a timer while the store fails, and stops once it answers", async () => {
    let down = false;
    let reads = 0;
    const inner = new MemoryStore('{"enabled":true}');
    const store: StateStore = {
      read() {
        reads++;
        return down ? Promise.reject(new Error("store down")) : inner.read();
      },
      write: (text) => inner.write(text),
    };
    const errors: Error[] = [];
    const cache = new StateCache({
      store,
      cache: { ttlMs: 60_000 },
      timeoutMs: 200,
      fallback: { enabled: false },
      onError: (e) => errors.push(e),
      now: Date.now,
    });
    assert.equal((await cache.get()).enabled, true);
    down = true;
    cache.invalidate(); // as a TTL running out would
    assert.equal((await cache.get()).enabled, true, "the last good state");
    assert.equal(errors.length, 1);
    const before = reads;
    await sleep(2.2 * RETRY_MS); // no request at all
    assert.ok(reads - before >= 2, `${reads - before} retries while idle`);
    assert.equal(errors.length, 1, "once per streak");

    down = false;
    await inner.write('{"enabled":false}');
    await sleep(RETRY_MS + 300); // the next try finds the store back
    const after = reads;
    assert.equal(cache.current()?.enabled, false, "fresh, without a read");
    await sleep(RETRY_MS + 300);
    assert.equal(reads, after, "no retries once the store answers");
    assert.equal(errors.length, 1);
  });

  it("a write through the controller ends the retries", async () => {
    let reads = 0;
    const store: StateStore = {
      read() {
        reads++;
        return Promise.reject(new Error("read denied"));
      },
      write: () => Promise.resolve(),
    };
    const mm = createMaintenance({
      store,
      cache: { ttlMs: 60_000 },
      onError: () => {},
    });
    assert.equal(await mm.isEnabled(), false, "the fallback");
    await mm.enable();
    const after = reads;
    await sleep(RETRY_MS + 300);
    assert.equal(reads, after, "a store that took a write is not retried");
    assert.equal(await mm.isEnabled(), true);
  });
});

describe("recovery bound with a real store: s3rver stopped, started again, no requests in between", () => {
  it("serves a state written after the outage within TTL + RETRY_MS + one read", async () => {
    const bucket = "maintenance";
    const key = "recovery/state.json";
    const ttlMs = 300;
    const timeoutMs = 500;
    const dir = mkdtempSync(join(tmpdir(), "maintenance-recovery-"));
    const clients: { destroy(): void }[] = [];
    let s3: S3rverHandle | undefined;
    try {
      s3 = await startS3rver({ bucket, directory: dir });
      const { port, endpoint } = s3;
      const writerClient = s3ClientFor(endpoint);
      // One attempt per read, so a dead S3 fails fast instead of in SDK retries.
      const appClient = s3ClientFor(endpoint, { maxAttempts: 1 });
      clients.push(writerClient, appClient);
      const writer = createMaintenance({
        store: new S3Store({ bucket, key, client: writerClient, timeoutMs }),
        cache: false,
        onError: () => {},
      });
      await writer.enable({ message: "before the outage" });

      const store = counted(
        new S3Store({ bucket, key, client: appClient, timeoutMs }),
      );
      const errors: Error[] = [];
      const a = createMaintenance({
        store,
        cache: { ttlMs },
        timeoutMs,
        onError: (e) => errors.push(e),
      });
      const app = appFor(a);
      assert.equal((await app.request("/")).status, 503, "A reads ON");

      await s3.stop();
      // A keeps serving ON while S3 is down, and onError hears of it once.
      const downUntil = performance.now() + 2 * RETRY_MS;
      while (performance.now() < downUntil) {
        assert.equal((await app.request("/")).status, 503, "last state");
        await sleep(50);
      }
      assert.equal(errors.length, 1, errors.map((e) => e.message).join("\n"));
      assert.match(errors[0].message, /s3:\/\/maintenance\/recovery/);

      s3 = await startS3rver({ bucket, directory: dir, port });
      await writer.disable();
      const written = performance.now();
      // No request to A from here on: only its own retries read S3.
      await sleep(ttlMs + RETRY_MS + timeoutMs + 300);
      const t0 = performance.now();
      const res = await app.request("/");
      const ms = performance.now() - t0;
      assert.equal(res.status, 200, "A's first request after the outage: OFF");
      assert.ok(
        store.answered.some((t) => t > written - timeoutMs && t < t0),
        "A read S3 again before any request",
      );
      assert.ok(ms < timeoutMs + 500, `the request took ${ms.toFixed(0)} ms`);
      assert.equal(errors.length, 1, errors.map((e) => e.message).join("\n"));
    } finally {
      for (const c of clients) c.destroy();
      await s3?.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("the retry timer never keeps a process alive", () => {
  for (const runtime of RUNTIMES) {
    it(`a ${runtime} process with a failing store exits on its own`, async () => {
      const dir = mkdtempSync(join(tmpdir(), "maintenance-unref-"));
      try {
        const script = join(dir, "child.ts");
        const cacheUrl = pathToFileURL(`${ROOT}/src/_cache.ts`).href;
        writeFileSync(
          script,
          `import { StateCache } from ${JSON.stringify(cacheUrl)};
let reads = 0;
const cache = new StateCache({
  store: {
    read() {
      reads++;
      return Promise.reject(new Error("store down"));
    },
    write: () => Promise.resolve(),
  },
  cache: { ttlMs: 100 },
  timeoutMs: 100,
  fallback: { enabled: false },
  onError: () => {},
  now: Date.now,
});
await cache.get();
// Alive on its own for 2.5 retry intervals: the store is retried with no request.
await new Promise((resolve) => setTimeout(resolve, 2500));
console.log(JSON.stringify({ reads, at: Date.now() }));
// From here nothing but the retry timer is pending: the process must exit.
`,
        );
        const [cmd, args] = scriptCommand(runtime, script);
        const result = await runProcess(cmd, args, { timeoutMs: 20_000 });
        const exitedAt = Date.now();
        assert.equal(result.code, 0, result.stderr);
        const { reads, at } = JSON.parse(result.stdout.trim()) as {
          reads: number;
          at: number;
        };
        assert.ok(reads >= 3, `${reads} reads: the first and two retries`);
        // Well under the 20 s the parent waits: a ref'd timer would retry forever.
        assert.ok(
          exitedAt - at < 5000,
          `exited ${exitedAt - at} ms after its last line`,
        );
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
