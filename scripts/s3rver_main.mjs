// Starts s3rver (a local S3 emulator) for tests, under Node.js, so it behaves the same
// whichever runtime runs the tests. Started by `startS3rver()` in scripts/test_servers.ts.
//
//   node scripts/s3rver_main.mjs --port 0 --dir /tmp/x --bucket maintenance [--bucket other]
//     [--remove-dir]
//
// Listens on 127.0.0.1 only, logs nothing, and prints one line when ready:
//   S3RVER_READY {"port":40123}
// It exits on SIGTERM/SIGINT, and when its stdin closes (the parent died), so it never
// outlives the tests that started it. With --remove-dir it deletes --dir when it exits
// (so a crashed test run leaves no temporary directory behind).
import { rmSync } from "node:fs";
import S3rver from "s3rver";

const args = process.argv.slice(2);
let port = 0;
let directory = "";
const buckets = [];
let removeDir = false;
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
