import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  DeleteObjectCommand,
  PutObjectCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { S3Store, type S3StoreOptions } from "../stores/s3.ts";
import { DEFAULT_S3_KEY, parseS3Url } from "../stores/_s3_url.ts";
import { StoreError } from "../stores/_store_error.ts";
import {
  type CountingProxy,
  freePort,
  s3ClientFor,
  S3RVER_CREDENTIALS,
  type S3rverHandle,
  startCountingProxy,
  startS3rver,
} from "../scripts/test_servers.ts";
import { parseState } from "../src/_state.ts";
import { createMaintenance } from "../src/maintenance.ts";
import {
  createServer as createHttpServer,
  request as httpRequest,
  type ServerResponse,
} from "node:http";
import type { Socket } from "node:net";

const BUCKET = "maintenance";

function isStoreError(
  code: string,
  ...includes: string[]
): (e: unknown) => boolean {
  return (e: unknown): boolean => {
    assert.ok(
      e instanceof StoreError,
      `expected a StoreError, got ${String(e)}`,
    );
    assert.equal(e.code, code, e.message);
    for (const text of includes) assert.ok(e.message.includes(text), e.message);
    return true;
  };
}

/** Writes, trying again after a failure (a write racing reads on s3rver may hang). */
async function writeRetrying(store: S3Store, text: string): Promise<void> {
  for (let i = 1;; i++) {
    try {
      return await store.write(text);
    } catch (e) {
      if (i >= 10) throw e;
    }
  }
}

describe("S3Store against s3rver", () => {
  let s3: S3rverHandle | undefined;
  let proxy: CountingProxy;
  const clients: S3Client[] = [];
  let keys = 0;

  before(async () => {
    s3 = await startS3rver({ bucket: BUCKET });
    proxy = await startCountingProxy(s3.endpoint);
  });

  after(async () => {
    for (const client of clients) client.destroy();
    await proxy?.stop();
    await s3?.stop();
  });

  /** A client through the proxy, one attempt per call so counts are exact. */
  function client(): S3Client {
    const c = s3ClientFor(proxy.url, { maxAttempts: 1 });
    clients.push(c);
    return c;
  }

  function store(key = `state-${++keys}.json`, timeoutMs = 2000): S3Store {
    return new S3Store({ bucket: BUCKET, key, client: client(), timeoutMs });
  }

  /** The object key of a store made by `store()`. */
  function keyOf(s: S3Store): string {
    return s.description.slice(`s3://${BUCKET}/`.length);
  }

  /** Another store (its own client) for the same object as `other`. */
  function sameObject(other: S3Store): S3Store {
    return new S3Store({ bucket: BUCKET, key: keyOf(other), client: client() });
  }

  it("reads a missing object as null (off)", async () => {
    const s = store();
    proxy.reset();
    assert.equal(await s.read(), null);
    assert.equal(proxy.counts.get, 1);
    assert.equal(proxy.requests[0].status, 404);
  });

  it("writes, then reads the text back from any store", async () => {
    const a = store();
    const b = sameObject(a);
    const text = JSON.stringify({ enabled: true, message: "Back at 14:00" });
    proxy.reset();
    await a.write(text);
    assert.equal(proxy.counts.put, 1);
    assert.equal(await b.read(), text);
    assert.equal(a.description, `s3://${BUCKET}/${keyOf(a)}`);
  });

  it("reads the whole object every time: one GET, no If-None-Match, nothing remembered", async () => {
    const writer = store();
    const reader = sameObject(writer);
    await writer.write('{"enabled":true}');
    proxy.reset();
    assert.equal(await reader.read(), '{"enabled":true}');
    assert.equal(await reader.read(), '{"enabled":true}');
    assert.equal(await writer.read(), '{"enabled":true}');
    assert.equal(proxy.counts.get, 3);
    for (const r of proxy.requests) {
      assert.equal(r.ifNoneMatch, undefined);
      assert.equal(r.status, 200);
    }
    // A change made elsewhere is seen at the next read.
    await writer.write('{"enabled":false}');
    assert.equal(await reader.read(), '{"enabled":false}');
  });

  it("reads a deleted object as null", async () => {
    const s = store();
    await s.write("1");
    assert.equal(await s.read(), "1");
    await s.client.send(
      new DeleteObjectCommand({ Bucket: BUCKET, Key: keyOf(s) }),
    );
    assert.equal(await s.read(), null);
  });

  it("a torn read (a body cut short, as a non-atomic server sends) is not remembered: the next read is whole", async () => {
    const writer = store();
    const reader = sameObject(writer);
    const whole = '{"enabled":true,"message":"after the write"}';
    await writer.write(whole);
    proxy.reset();
    proxy.tearNext = 1;
    const torn = await reader.read();
    assert.equal(proxy.requests[0].torn, true);
    assert.notEqual(torn, whole);
    assert.throws(() => parseState(torn), "the cache rejects it as a state");
    assert.equal(await reader.read(), whole);
  });

  it("never returns a wrong state nor gets stuck on a torn read while another store rewrites the object (s3rver tears reads)", async () => {
    // s3rver as it is writes an object's bytes and its metadata separately, with no
    // lock, so a read racing a write can get a body cut short. No proxy here: the tears
    // are s3rver's own. A torn body never parses as a state (the cache then keeps the
    // last good one), and nothing of it is remembered, so every reader reads the last
    // state once the writes stop.
    const raw = await startS3rver({ bucket: BUCKET, nonAtomic: true });
    const key = `race-${++keys}.json`;
    // A short timeout: a read that races a write can also hang (s3rver promises more
    // bytes than it sends); those fail fast and the loop goes on.
    const direct = () => {
      const c = s3ClientFor(raw.endpoint, { maxAttempts: 1 });
      clients.push(c);
      return new S3Store({ bucket: BUCKET, key, client: c, timeoutMs: 300 });
    };
    try {
      const writer = direct();
      const bodies = Array.from(
        { length: 4 },
        (_, i) =>
          JSON.stringify({ enabled: i % 2 === 1, message: "x".repeat(i * 40) }),
      );
      await writer.write(bodies[0]);
      const readers = [direct(), direct(), direct()];
      let writing = true;
      const seen: string[] = [];
      const loops = readers.map(async (reader) => {
        while (writing) {
          try {
            const text = await reader.read();
            if (text !== null) seen.push(text);
          } catch (e) {
            // Reads may fail (a hang cut at the timeout); they must never lie.
            assert.ok(e instanceof StoreError, String(e));
          }
        }
      });
      try {
        for (let i = 1; i <= 150; i++) {
          await writeRetrying(writer, bodies[i % 4]);
        }
      } finally {
        writing = false;
        await Promise.all(loops);
      }
      const torn = seen.filter((text) => !bodies.includes(text));
      const parsed = torn.filter((text) => {
        try {
          parseState(text);
          return true;
        } catch {
          return false;
        }
      });
      assert.deepEqual(parsed, [], "torn bodies that parse as a state");
      assert.ok(seen.length > 0, "the readers read");
      const last = bodies[150 % 4];
      // Once the writes stop, every reader reads the last state. (A read may still fail
      // at its short timeout on a busy machine, so each reader gets a few tries.)
      for (const reader of readers) {
        let got: string | null | undefined;
        for (let i = 0; i < 20 && got !== last; i++) {
          got = await reader.read().catch(() => undefined);
          if (got !== last) await new Promise((r) => setTimeout(r, 50));
        }
        assert.equal(got, last);
      }
      // How much racing there was (shown with --reporter=spec, for whoever tunes this).
      console.log(
        `  ${seen.length} reads, ${torn.length} torn bodies returned`,
      );
    } finally {
      await raw.stop();
    }
  });

  it("an empty object is an error, not off (s3rver answers a read racing a write with one)", async () => {
    const s = store();
    await s.write("");
    await assert.rejects(
      s.read(),
      isStoreError("EMPTY", s.description, "the object is empty"),
    );
  });

  it("a body that is not UTF-8 reads as text, bytes it cannot decode replaced", async () => {
    const s = store();
    const latin1 = new Uint8Array([0x47, 0x72, 0xfc, 0xdf, 0x65]); // "Grüße" in Latin-1
    await s.client.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: keyOf(s), Body: latin1 }),
    );
    assert.equal(await s.read(), "Gr\ufffd\ufffde");
  });

  it("makes its own client from endpoint/credentials (path style)", async () => {
    const s = new S3Store({
      bucket: BUCKET,
      key: "own-client.txt",
      endpoint: proxy.url,
      credentials: S3RVER_CREDENTIALS,
    });
    try {
      await s.write("0");
      assert.equal(await s.read(), "0");
      assert.ok(
        proxy.requests.at(-1)?.path.startsWith(`/${BUCKET}/own-client.txt`),
      );
    } finally {
      s.client.destroy();
    }
  });

  it("times out a read and a write against a hanging endpoint within timeoutMs", async () => {
    const s = store(undefined, 300);
    await s.write("1");
    proxy.mode = "hang";
    try {
      let start = performance.now();
      await assert.rejects(
        s.read(),
        isStoreError(
          "TIMEOUT",
          s.description,
          "did not answer within 300 ms",
        ),
      );
      let elapsed = performance.now() - start;
      assert.ok(elapsed >= 290 && elapsed < 450, `read took ${elapsed} ms`);

      start = performance.now();
      await assert.rejects(
        s.write("0"),
        isStoreError("TIMEOUT", "cannot write", "may still have landed"),
      );
      elapsed = performance.now() - start;
      assert.ok(elapsed >= 290 && elapsed < 450, `write took ${elapsed} ms`);

      // The default bound is 1000 ms.
      const plain = new S3Store({ bucket: BUCKET, client: client() });
      start = performance.now();
      await assert.rejects(plain.read(), isStoreError("TIMEOUT", "1000 ms"));
      elapsed = performance.now() - start;
      assert.ok(elapsed >= 990 && elapsed < 1300, `read took ${elapsed} ms`);
    } finally {
      proxy.mode = "pass";
    }
  });

  it("bounds a client that ignores the abort signal", async () => {
    // FAULT INJECTION: a client of one's own (the `client` option) that never settles
    // and ignores the signal; a real S3 client heeds it once the request is sent.
    const hung = {
      send: () => new Promise<never>(() => {}),
    } as unknown as S3Client;
    const s = new S3Store({ bucket: BUCKET, client: hung, timeoutMs: 100 });
    const start = performance.now();
    await assert.rejects(s.read(), isStoreError("TIMEOUT"));
    assert.ok(performance.now() - start < 250);
  });

  it("stops when the caller's signal aborts", async () => {
    const s = store(undefined, 5000);
    proxy.mode = "hang";
    try {
      const controller = new AbortController();
      setTimeout(() => controller.abort(new Error("shutting down")), 50);
      await assert.rejects(
        s.read(controller.signal),
        isStoreError("ABORTED", "cancelled"),
      );
      const timeout = AbortSignal.timeout(50);
      await assert.rejects(s.read(timeout), isStoreError("TIMEOUT"));
    } finally {
      proxy.mode = "pass";
    }
  });

  it("explains AccessDenied: which permissions on which object", async () => {
    const s = store();
    proxy.mode = "accessDenied";
    try {
      await assert.rejects(
        s.read(),
        isStoreError(
          "AccessDenied",
          s.description,
          `grant s3:GetObject and s3:PutObject on arn:aws:s3:::${BUCKET}/${
            keyOf(s)
          }`,
          "s3:ListBucket",
        ),
      );
      await assert.rejects(
        s.write("1"),
        isStoreError("AccessDenied", "s3:PutObject"),
      );
    } finally {
      proxy.mode = "pass";
    }
  });

  it("reports a failing service (500)", async () => {
    const s = store();
    proxy.mode = "error500";
    try {
      await assert.rejects(
        s.read(),
        isStoreError("InternalError", "500", "try again later"),
      );
    } finally {
      proxy.mode = "pass";
    }
  });

  it("explains NoSuchBucket", async () => {
    const s = new S3Store({ bucket: "no-such-bucket", client: client() });
    await assert.rejects(
      s.read(),
      isStoreError(
        "NoSuchBucket",
        "s3://no-such-bucket/",
        "create the bucket or fix",
      ),
    );
    await assert.rejects(s.write("1"), isStoreError("NoSuchBucket"));
  });

  it("explains a refused connection", async () => {
    const port = await freePort();
    const c = s3ClientFor(`http://127.0.0.1:${port}`, { maxAttempts: 1 });
    clients.push(c);
    const s = new S3Store({ bucket: BUCKET, client: c });
    await assert.rejects(
      s.read(),
      isStoreError("ECONNREFUSED", "cannot connect"),
    );
  });

  it("a timeout while the SDK still looks for credentials says so, not that the endpoint did not answer", async () => {
    // Off AWS, with no credentials set, the SDK's chain ends at the instance metadata
    // service, which may never answer: the endpoint was never asked.
    let release: () => void = () => {};
    const found = new Promise<void>((resolve) => release = resolve);
    let lookups = 0;
    const c = s3ClientFor(proxy.url, {
      maxAttempts: 1,
      credentials: async () => {
        lookups++;
        await found;
        return S3RVER_CREDENTIALS;
      },
    });
    clients.push(c);
    const s = new S3Store({
      bucket: BUCKET,
      key: "creds.json",
      client: c,
      timeoutMs: 200,
    });
    proxy.reset();
    await assert.rejects(
      s.read(),
      isStoreError(
        "TIMEOUT",
        `s3://${BUCKET}/creds.json`,
        "no AWS credentials within 200 ms",
        "AWS_ACCESS_KEY_ID",
      ),
    );
    await assert.rejects(
      s.write("1"),
      isStoreError("TIMEOUT", "cannot write", "the state is unchanged"),
    );
    assert.equal(proxy.counts.total, 0, "nothing was sent to S3");
    // Once the chain finds them, reads and writes go through, and it is not asked again.
    release();
    await s.write("1");
    assert.equal(await sameObject(s).read(), "1");
    assert.equal(await s.read(), "1");
    assert.equal(lookups, 1);
  });

  it("no credentials found: says none were found, not that they were refused", async () => {
    const c = s3ClientFor(proxy.url, {
      maxAttempts: 1,
      credentials: () =>
        Promise.reject(
          Object.assign(
            new Error("Could not load credentials from any providers"),
            { name: "CredentialsProviderError" },
          ),
        ),
    });
    clients.push(c);
    const s = new S3Store({ bucket: BUCKET, client: c });
    proxy.reset();
    for (const op of [() => s.read(), () => s.write("1")]) {
      await assert.rejects(op(), (e: unknown) => {
        isStoreError(
          "CredentialsProviderError",
          "no AWS credentials were found",
          "Could not load credentials from any providers",
          "AWS_ACCESS_KEY_ID",
        )(e);
        assert.doesNotMatch((e as Error).message, /refused/);
        return true;
      });
    }
    assert.equal(proxy.counts.total, 0);
  });
});

/** What a {@linkcode ByteProxy} sent for one GET answered 200. */
interface Sent {
  /** Body bytes passed on to the client so far. */
  bytes: number;
  /** Whether the whole body was passed on. */
  whole: boolean;
  /** Resolves when the client's connection for this answer is closed or the body sent. */
  done: Promise<void>;
}

/** A proxy in front of s3rver that counts the body bytes it passes on. */
interface ByteProxy {
  url: string;
  /** Send bodies without `Content-Length` (chunked), as a server that streams does. */
  chunked: boolean;
  /** The GETs answered 200, in order. */
  sent: Sent[];
  stop(): Promise<void>;
}

/**
 * Forwards to `target`, passing each body on with backpressure (it reads s3rver's body
 * only as fast as the client reads it), and counts the bytes. With `chunked` it drops
 * `Content-Length`: FAULT INJECTION, since s3rver (like AWS S3) always sends one, but
 * a store must not trust that every S3-compatible server or proxy does.
 */
async function startByteProxy(target: string): Promise<ByteProxy> {
  const base = new URL(target);
  const sockets = new Set<Socket>();
  const proxy: ByteProxy = {
    url: "",
    chunked: false,
    sent: [],
    stop: () => Promise.resolve(),
  };
  const server = createHttpServer((req, res: ServerResponse) => {
    const upstream = httpRequest({
      host: base.hostname,
      port: base.port,
      method: req.method,
      path: req.url,
      headers: req.headers,
    }, (answer) => {
      const headers = { ...answer.headers };
      if (req.method !== "GET" || answer.statusCode !== 200) {
        res.writeHead(answer.statusCode ?? 502, headers);
        answer.pipe(res);
        return;
      }
      if (proxy.chunked) delete headers["content-length"];
      let settle = () => {};
      const sent: Sent = {
        bytes: 0,
        whole: false,
        done: new Promise((resolve) => settle = resolve),
      };
      proxy.sent.push(sent);
      res.writeHead(200, headers);
      answer.on("data", (chunk: Uint8Array) => {
        sent.bytes += chunk.byteLength;
        if (!res.write(chunk)) answer.pause();
      });
      res.on("drain", () => answer.resume());
      answer.on("end", () => {
        sent.whole = true;
        res.end(settle);
      });
      res.on("close", () => {
        answer.destroy();
        settle();
      });
    });
    upstream.on("error", () => res.destroy());
    req.pipe(upstream);
  });
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve())
  );
  const address = server.address();
  proxy.url = `http://127.0.0.1:${
    typeof address === "object" && address ? address.port : 0
  }`;
  proxy.stop = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const socket of sockets) socket.destroy();
    });
  return proxy;
}

describe("S3Store: an object larger than 64 KiB (s3rver)", () => {
  // A 200 MB object took an instance from 64 MB to 853 MB resident, at every retry. The
  // proof here does not depend on memory: how many bytes of the object reached the store.
  const SIZE = 32 * 1024 * 1024;
  let s3: S3rverHandle | undefined;
  let proxy: ByteProxy;
  const clients: S3Client[] = [];

  before(async () => {
    s3 = await startS3rver({ bucket: BUCKET });
    proxy = await startByteProxy(s3.endpoint);
    const c = s3ClientFor(s3.endpoint, { maxAttempts: 1 });
    clients.push(c);
    const big = new Uint8Array(SIZE).fill(0x20); // spaces: no state parser would mind
    big.set(new TextEncoder().encode('{"enabled":false}'));
    await c.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: "big.json", Body: big }),
    );
  });

  after(async () => {
    for (const client of clients) client.destroy();
    await proxy?.stop();
    await s3?.stop();
  });

  function store(key: string): S3Store {
    const c = s3ClientFor(proxy.url, { maxAttempts: 1 });
    clients.push(c);
    return new S3Store({ bucket: BUCKET, key, client: c, timeoutMs: 10_000 });
  }

  /** The EFBIG error: names the object, the limit and the fix. */
  function tooLarge(s: S3Store, size?: number): (e: unknown) => boolean {
    return isStoreError(
      "EFBIG",
      `cannot read maintenance state ${s.description}`,
      "larger than 64 KiB",
      ...(size === undefined ? [] : [`(${size} bytes)`]),
      "point the store at the right object",
      "`maintenance on`",
    );
  }

  it("is refused by its Content-Length, before its body is read", async () => {
    const s = store("big.json");
    proxy.chunked = false;
    proxy.sent.length = 0;
    await assert.rejects(s.read(), tooLarge(s, SIZE));
    assert.equal(proxy.sent.length, 1);
    await proxy.sent[0].done;
    assert.equal(proxy.sent[0].whole, false, "the store hung up");
    assert.ok(
      proxy.sent[0].bytes < SIZE / 2,
      `${proxy.sent[0].bytes} of ${SIZE} bytes passed on`,
    );
  });

  it("without a Content-Length, reading stops past 64 KiB", async () => {
    const s = store("big.json");
    proxy.chunked = true;
    proxy.sent.length = 0;
    try {
      await assert.rejects(s.read(), tooLarge(s));
    } finally {
      proxy.chunked = false;
    }
    assert.equal(proxy.sent.length, 1);
    await proxy.sent[0].done;
    assert.equal(proxy.sent[0].whole, false, "the store hung up");
    assert.ok(
      proxy.sent[0].bytes < SIZE / 2,
      `${proxy.sent[0].bytes} of ${SIZE} bytes passed on`,
    );
  });

  it("an object of exactly 64 KiB still reads, with or without Content-Length", async () => {
    const text = JSON.stringify({ enabled: true, message: "" });
    const padded = text.slice(0, -2) + "x".repeat(65_536 - text.length) + '"}';
    assert.equal(new TextEncoder().encode(padded).byteLength, 65_536);
    const s = store("edge.json");
    await s.write(padded);
    assert.equal(await s.read(), padded);
    proxy.chunked = true;
    try {
      assert.equal(await s.read(), padded);
    } finally {
      proxy.chunked = false;
    }
    await s.write(padded + " ");
    await assert.rejects(s.read(), tooLarge(s, 65_537));
  });

  it("a web ReadableStream body (the SDK over fetch: Workers, browsers) is cut at the cap too", async () => {
    // FAULT INJECTION: a client of one's own whose GetObject answers with an endless
    // ReadableStream and no ContentLength, as the SDK's fetch handler gives; on Deno,
    // Bun and Node the SDK gives a Node stream, which s3rver covers above.
    let pulled = 0;
    let cancelled = false;
    const endless = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled += 16_384;
        controller.enqueue(new Uint8Array(16_384).fill(0x20));
      },
      cancel() {
        cancelled = true;
      },
    });
    const fake = {
      send: () => Promise.resolve({ Body: endless }),
    } as unknown as S3Client;
    const s = new S3Store({ bucket: BUCKET, key: "web.json", client: fake });
    await assert.rejects(s.read(), tooLarge(s));
    assert.ok(cancelled, "the stream was cancelled");
    assert.ok(pulled <= 65_536 + 3 * 16_384, `${pulled} bytes pulled`);
  });

  it("the last good state is kept, and onError hears once", async () => {
    const s = store("grows.json");
    let t = Date.UTC(2030, 0, 1);
    const errors: Error[] = [];
    const mm = createMaintenance({
      store: s,
      cache: { ttlMs: 1000 },
      now: () => t,
      onError: (e) => errors.push(e),
    });
    await mm.enable({ message: "Back at 14:00" });
    // Someone uploads a large file over the state object.
    const c = s3ClientFor(s3!.endpoint, { maxAttempts: 1 });
    clients.push(c);
    await c.send(
      new PutObjectCommand({
        Bucket: BUCKET,
        Key: "grows.json",
        Body: new Uint8Array(4 * 1024 * 1024).fill(0x20),
      }),
    );
    proxy.sent.length = 0;
    for (let i = 0; i < 5; i++) {
      t += 1500; // past the TTL and the retry pause: each round reads again
      assert.equal(await mm.isEnabled(), true, `round ${i}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal((await mm.getState()).message, "Back at 14:00");
    assert.ok(proxy.sent.length >= 2, `${proxy.sent.length} reads`);
    await Promise.all(proxy.sent.map((x) => x.done));
    assert.ok(
      proxy.sent.every((x) => !x.whole),
      "no retry read the whole object",
    );
    assert.equal(errors.length, 1, errors.map((e) => e.message).join("\n"));
    tooLarge(s, 4 * 1024 * 1024)(errors[0]);
  });
});

describe("S3Store options", () => {
  it("defaults the key", () => {
    const s = new S3Store({ bucket: "b-1", endpoint: "http://127.0.0.1:1" });
    assert.equal(s.description, `s3://b-1/${DEFAULT_S3_KEY}`);
    assert.equal(s.timeoutMs, 1000);
    s.client.destroy();
  });

  it("rejects bad options with a message that says what to change", () => {
    const fake = { send: () => Promise.resolve({}) } as unknown as S3Client;
    assert.throws(() => new S3Store({ bucket: "" }), /bucket name/);
    assert.throws(
      () => new S3Store({ bucket: "s3://b-1/prod/state.json" }),
      /is a URL; pass the bucket name and key: \{ bucket: "b-1", key: "prod\/state.json" \}/,
    );
    assert.throws(
      () => new S3Store({ bucket: "a" }),
      /not a valid S3 bucket name/,
    );
    assert.throws(() => new S3Store({ bucket: "bkt", key: "" }), /non-empty/);
    assert.throws(() => new S3Store({ bucket: "bkt", key: "/x" }), /use "x"/);
    assert.throws(
      () => new S3Store({ bucket: "bkt", client: fake, timeoutMs: 0 }),
      (e: unknown) =>
        e instanceof RangeError && /positive number/.test(e.message),
    );
    assert.throws(
      () => new S3Store({ bucket: "bkt", client: fake, timeoutMs: Number.NaN }),
      RangeError,
    );
    assert.throws(
      () => new S3Store({ bucket: "bkt", endpoint: "127.0.0.1:9000" }),
      /not an http\(s\) URL; use one such as http:\/\/127.0.0.1:9000/,
    );
    assert.throws(
      () => new S3Store({ bucket: "bkt", client: fake, endpoint: "http://x" }),
      /either client/,
    );
  });

  it("an unknown option is named, with the one meant", () => {
    assert.throws(
      () =>
        new S3Store(
          { bucket: "bkt", timeout: 500 } as unknown as S3StoreOptions,
        ),
      (e: unknown) =>
        e instanceof TypeError &&
        /unknown S3Store option "timeout"; did you mean timeoutMs\?/.test(
          e.message,
        ) && e.message.includes("known: bucket, key, timeoutMs"),
    );
    assert.throws(
      () => new S3Store(null as unknown as S3StoreOptions),
      /S3Store options must be an object/,
    );
  });
});

describe("parseS3Url", () => {
  it("splits bucket and key", () => {
    assert.deepEqual(parseS3Url("s3://my-bucket/app/state.json"), {
      bucket: "my-bucket",
      key: "app/state.json",
    });
    assert.deepEqual(parseS3Url("S3://my.bucket/a b/c?d"), {
      bucket: "my.bucket",
      key: "a b/c?d",
    });
  });

  it("defaults the key", () => {
    const expected = { bucket: "my-bucket", key: "maintenance_mode_state.txt" };
    assert.deepEqual(parseS3Url("s3://my-bucket"), expected);
    assert.deepEqual(parseS3Url("s3://my-bucket/"), expected);
    assert.deepEqual(parseS3Url("s3://my-bucket/prod/"), {
      bucket: "my-bucket",
      key: "prod/maintenance_mode_state.txt",
    });
  });

  it("rejects what is not an s3:// URL, showing a valid one", () => {
    for (
      const bad of [
        "",
        "my-bucket/key",
        "https://my-bucket/key",
        "s3://",
        "s3:///key",
      ]
    ) {
      assert.throws(
        () => parseS3Url(bad),
        (e: unknown) =>
          e instanceof TypeError && e.message.includes("s3://my-bucket/"),
        bad,
      );
    }
    assert.throws(() => parseS3Url("s3://b/key"), /not a valid bucket name/);
    assert.throws(() => parseS3Url("s3://bucket//key"), /starts with "\/"/);
  });
});
