// Starts s3rver (a local S3 emulator) for tests, under Node.js, so it behaves the same
// whichever runtime runs the tests. Started by `startS3rver()` in scripts/test_servers.ts.
//
//   node scripts/s3rver_main.mjs --port 0 --dir /tmp/x --bucket maintenance [--bucket other]
//     [--remove-dir] [--non-atomic]
//
// S3 replaces an object atomically: a read sees the old object or the new one, whole.
// s3rver does not: it writes an object's bytes, its MD5 file and its metadata one after
// the other, with no lock, so a read racing a write can get one version's ETag with the
// other's bytes, or a Content-Length its body never reaches (the read then hangs). Tests
// here get S3's behaviour: each key's reads, writes and deletes run one at a time, a
// write lands whole before the next read, and a read takes its body whole. With
// --non-atomic, s3rver runs as it is, for the test that shows the store copes with a
// server that tears reads (tests/s3_store_test.ts).
//
// Listens on 127.0.0.1 only, logs nothing, and prints one line when ready:
//   S3RVER_READY {"port":40123}
// It exits on SIGTERM/SIGINT, and when its stdin closes (the parent died), so it never
// outlives the tests that started it. With --remove-dir it deletes --dir when it exits
// (so a crashed test run leaves no temporary directory behind).
import { createHash } from "node:crypto";
import { rmSync } from "node:fs";
import { mkdir, rename, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { Readable } from "node:stream";
import S3rver from "s3rver";

const args = process.argv.slice(2);
let port = 0;
let directory = "";
const buckets = [];
let removeDir = false;
let atomic = true;
for (let i = 0; i < args.length; i++) {
  const value = args[i + 1];
  switch (args[i]) {
    case "--port":
      port = Number(value);
      i++;
      break;
    case "--dir":
      directory = value;
      i++;
      break;
    case "--remove-dir":
      removeDir = true;
      break;
    case "--non-atomic":
      atomic = false;
      break;
    case "--bucket":
      buckets.push({ name: value });
      i++;
      break;
    default:
      console.error(`s3rver_main: unknown argument ${args[i]}`);
      process.exit(2);
  }
}
if (!directory || !Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(
    "usage: node s3rver_main.mjs --port N --dir DIR [--bucket NAME]...",
  );
  process.exit(2);
}

const server = new S3rver({
  address: "127.0.0.1",
  port,
  directory,
  silent: true,
  configureBuckets: buckets,
  allowMismatchedSignatures: false,
});

/** Makes s3rver's filesystem store replace and read each object atomically (see top). */
function makeAtomic(store) {
  const tails = new Map();
  // Runs fn after every earlier operation on the same key has finished.
  function serial(bucket, key, fn) {
    const id = `${bucket}/${key}`;
    const run = (tails.get(id) ?? Promise.resolve()).then(fn, fn);
    const tail = run.then(() => {}, () => {});
    tails.set(id, tail);
    tail.then(() => {
      if (tails.get(id) === tail) tails.delete(id);
    });
    return run;
  }
  async function whole(content) {
    if (Buffer.isBuffer(content)) return content;
    const chunks = [];
    for await (const chunk of content) chunks.push(chunk);
    return Buffer.concat(chunks);
  }
  const getObject = store.getObject.bind(store);
  const deleteObject = store.deleteObject.bind(store);
  store.getObject = (bucket, key, options) =>
    serial(bucket, key, async () => {
      const object = await getObject(bucket, key, options);
      // Read the body inside the turn, so a later write cannot change it mid-stream.
      if (object?.content) {
        object.content = Readable.from([await whole(object.content)]);
      }
      return object;
    });
  store.putObject = (object) =>
    serial(object.bucket, object.key, async () => {
      const content = await whole(object.content);
      const md5 = createHash("md5").update(content).digest("hex");
      const path = store.getResourcePath(object.bucket, object.key, "object");
      await mkdir(dirname(path), { recursive: true });
      await writeFile(`${path}.part`, content);
      await rename(`${path}.part`, path);
      await store.putMetadata(object.bucket, object.key, object.metadata, md5);
      return { size: content.length, md5 };
    });
  store.deleteObject = (bucket, key) =>
    serial(bucket, key, () => deleteObject(bucket, key));
}

if (atomic) makeAtomic(server.store);

function exit(code) {
  if (removeDir) rmSync(directory, { recursive: true, force: true });
  process.exit(code);
}

let closing = false;
async function shutdown(code) {
  if (closing) return;
  closing = true;
  const force = setTimeout(() => exit(code), 1000);
  try {
    server.httpServer?.closeAllConnections?.();
    await server.close();
  } catch {
    // already closed
  }
  clearTimeout(force);
  exit(code);
}

process.on("SIGTERM", () => shutdown(0));
process.on("SIGINT", () => shutdown(0));
process.stdin.on("end", () => shutdown(0));
process.stdin.on("error", () => shutdown(0));
process.stdin.resume();

try {
  const address = await server.run();
  process.stdout.write(
    `S3RVER_READY ${JSON.stringify({ port: address.port })}\n`,
  );
} catch (e) {
  console.error(`s3rver_main: cannot start s3rver: ${e?.message ?? e}`);
  exit(1);
}
