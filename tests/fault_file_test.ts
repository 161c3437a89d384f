/**
 * Fault tests for the state file: contents that are not a state, a directory in its
 * place, a file that is too big (or never ends), a file this user may not read; four
 * processes toggling one file; a writer killed with SIGKILL in the middle of writes; and
 * state flips under load. Real files, real child processes (the runtime running the
 * tests), real HTTP server on 127.0.0.1.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import {
  chmodSync,
  chownSync,
  lchownSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { Hono } from "hono";
import { createMaintenance } from "../src/maintenance.ts";
import { FileStore } from "../stores/file.ts";
import { parseState, serializeState } from "../src/_state.ts";
import { runCli } from "../main.ts";
import { toggleScenario } from "./fault_scenarios.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");
const dirs: string[] = [];

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "maintenance-fault-file-"));
  chmodSync(d, 0o755); // an unprivileged child must be able to look inside
  dirs.push(d);
  return d;
}

after(() => {
  for (const d of dirs) {
    spawnSync("chmod", ["-R", "u+rwx", d]);
    rmSync(d, { recursive: true, force: true });
  }
});

/** The command that runs a script file under the runtime running these tests. */
function runtimeCommand(script: string, args: string[]): [string, string[]] {
  return "Bun" in globalThis
    ? [process.execPath, [script, ...args]]
    : [process.execPath, [
      "run",
      "-A",
      "--no-lock",
      "--config",
      `${ROOT}/deno.json`,
      script,
      ...args,
    ]];
}

interface Ran {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

/** A child process with a line-waiting helper; killed by `timeoutMs` at the latest. */
function start(
  cmd: string,
  args: string[],
  options: { env?: Record<string, string>; timeoutMs?: number } = {},
): {
  child: ChildProcess;
  line(re: RegExp): Promise<string>;
  done: Promise<Ran>;
} {
  const child = spawn(cmd, args, {
    cwd: ROOT,
    env: { ...process.env, ...options.env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  const waiters: { re: RegExp; resolve: (l: string) => void }[] = [];
  child.stdout?.on("data", (d: Uint8Array | string) => {
    stdout += String(d);
    for (const w of [...waiters]) {
      const m = stdout.split("\n").find((l) => w.re.test(l));
      if (m !== undefined) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  });
  child.stderr?.on("data", (d: Uint8Array | string) => stderr += String(d));
  const timer = setTimeout(
    () => child.kill("SIGKILL"),
    options.timeoutMs ?? 60_000,
  );
  const done = new Promise<Ran>((resolve) => {
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
  return {
    child,
    done,
    line: (re) =>
      new Promise<string>((resolve, reject) => {
        const m = stdout.split("\n").find((l) => re.test(l));
        if (m !== undefined) return resolve(m);
        waiters.push({ re, resolve });
        done.then((r) =>
          reject(
            new Error(
              `child exited (${
                r.code ?? r.signal
              }) before printing ${re}: ${r.stderr}`,
            ),
          )
        );
      }),
  };
}

async function cli(args: string[]): Promise<{ code: number; err: string }> {
  const err: string[] = [];
  const code = await runCli(args, {
    out: () => {},
    err: (l) => err.push(l),
  });
  return { code, err: err.join("\n") };
}

function appFor(path: string, ttlMs = 0) {
  const errors: string[] = [];
  const mm = createMaintenance({
    store: new FileStore(path),
    cache: { ttlMs },
    onError: (e) => errors.push(e.message),
  });
  const app = new Hono();
  app.use(mm.middleware());
  app.get("/", (c) => c.text("ok"));
  return { app, errors, mm };
}

const GOOD = serializeState({
  enabled: true,
  message: "the last good state",
});

/** Bad state files: what is written in place of the state, and the problem named. */
const BAD_FILES: {
  name: string;
  make: (path: string) => void;
  problem: RegExp;
}[] = [
  { name: "empty file", make: (p) => writeFileSync(p, ""), problem: /empty/ },
  {
    name: "only whitespace",
    make: (p) => writeFileSync(p, " \n\t\n"),
    problem: /empty/,
  },
  {
    name: "binary bytes",
    make: (p) =>
      writeFileSync(
        p,
        new Uint8Array([0, 0xff, 0xfe, 0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a]),
      ),
    problem: /neither 0, 1 nor JSON/,
  },
  {
    name: "partial JSON (a write cut short)",
    make: (p) => writeFileSync(p, GOOD.slice(0, 20)),
    problem: /neither 0, 1 nor JSON/,
  },
  {
    name: '"enabled" is a string',
    make: (p) => writeFileSync(p, '{"enabled":"yes"}'),
    problem: /"enabled" must be true or false/,
  },
  {
    name: '"enabled" missing',
    make: (p) => writeFileSync(p, '{"message":"hi"}'),
    problem: /"enabled" must be true or false/,
  },
  {
    name: '"message" is a number',
    make: (p) => writeFileSync(p, '{"enabled":true,"message":42}'),
    problem: /"message" must be a string/,
  },
  {
    name: '"retryAfter" with CR/LF and a header',
    make: (p) =>
      writeFileSync(
        p,
        JSON.stringify({
          enabled: true,
          retryAfter: "600\r\nSet-Cookie: pwned=1",
        }),
      ),
    problem: /"retryAfter" must be a whole number/,
  },
  {
    name: '"retryAfter" negative',
    make: (p) => writeFileSync(p, '{"enabled":true,"retryAfter":-1}'),
    problem: /"retryAfter" must be a whole number/,
  },
  {
    name: '"endsAt" not a date',
    make: (p) => writeFileSync(p, '{"enabled":true,"endsAt":"tomorrow"}'),
    problem: /"endsAt" must be an ISO-8601 date/,
  },
  {
    name: '"endsAt" a day that does not exist (Feb 30)',
    make: (p) =>
      writeFileSync(p, '{"enabled":true,"endsAt":"2030-02-30T00:00:00Z"}'),
    problem: /"endsAt" must be an ISO-8601 date/,
  },
  {
    name: '"bypass" not a salted hash',
    make: (p) => writeFileSync(p, '{"enabled":true,"bypass":"letmein"}'),
    problem: /"bypass"/,
  },
  {
    name: "a JSON array",
    make: (p) => writeFileSync(p, "[true]"),
    problem: /not an object/,
  },
  {
    name: "JSON null",
    make: (p) => writeFileSync(p, "null"),
    problem: /not an object/,
  },
  {
    name: 'a JSON string "1"',
    make: (p) => writeFileSync(p, '"1"'),
    problem: /not an object/,
  },
  {
    name: "the number 2",
    make: (p) => writeFileSync(p, "2"),
    problem: /not an object/,
  },
  {
    name: "a 10 MB file",
    make: (p) =>
      writeFileSync(
        p,
        JSON.stringify({ enabled: false, message: "x".repeat(10_000_000) }),
      ),
    problem: /larger than 64 KiB/,
  },
  {
    name: "a directory in its place",
    make: (p) => {
      rmSync(p, { force: true });
      mkdirSync(p);
    },
    problem: /is a directory/,
  },
];

describe("state files that are not a state", () => {
  for (const bad of BAD_FILES) {
    it(`${bad.name}: last state kept, fallback when fresh, CLI status exits 1`, async () => {
      const d = tempDir();
      const path = join(d, "state.txt");
      writeFileSync(path, GOOD);
      const { app, errors } = appFor(path);
      const first = await app.request("/");
      assert.equal(first.status, 503);
      bad.make(path);

      // A running app keeps the last good state, and hears of the problem once.
      for (let i = 0; i < 3; i++) {
        const res = await app.request("/");
        assert.equal(res.status, 503);
        assert.match(await res.text(), /the last good state/);
      }
      assert.equal(errors.length, 1, JSON.stringify(errors));
      assert.ok(errors[0].includes(path), errors[0]);
      assert.match(errors[0], bad.problem);

      // A fresh app has no last state: it serves the fallback (off).
      const fresh = appFor(path);
      for (let i = 0; i < 2; i++) {
        assert.equal((await fresh.app.request("/")).status, 200);
      }
      assert.equal(fresh.errors.length, 1, JSON.stringify(fresh.errors));

      // The CLI names the file and the problem, and exits 1.
      const before = statSync(path).isDirectory() ? "dir" : readFileSync(path);
      const r = await cli(["status", "--file", path]);
      assert.equal(r.code, 1, r.err);
      assert.ok(r.err.includes(path), r.err);
      assert.match(r.err, bad.problem);
      const now = statSync(path).isDirectory() ? "dir" : readFileSync(path);
      assert.deepEqual(now, before, "status left the file as it was");
    });
  }

  it("a directory in its place: CLI on exits 1 and the directory stays", async () => {
    const d = tempDir();
    const path = join(d, "state.txt");
    mkdirSync(path);
    const r = await cli(["on", "--file", path]);
    assert.equal(r.code, 1, r.err);
    assert.ok(r.err.includes(path), r.err);
    assert.match(r.err, /is a directory/);
    assert.ok(statSync(path).isDirectory());
    assert.deepEqual(readdirSync(d), ["state.txt"], "no temp file left");
  });

  it("a file that never ends (a FIFO fed 20 MB) is not read whole", async () => {
    const d = tempDir();
    const path = join(d, "state.txt");
    const mk = spawnSync("mkfifo", [path]);
    if (mk.status !== 0) {
      assert.fail(`mkfifo failed: ${mk.stderr}`);
    }
    // The writer counts what it got into the pipe before the reader closed it (EPIPE).
    const writer = start("node", [
      "-e",
      `const fs = require("node:fs");
       const fd = fs.openSync(process.argv[1], "w");
       const chunk = Buffer.alloc(65536, 32);
       let n = 0;
       try { while (n < 20e6) n += fs.writeSync(fd, chunk); } catch (e) {}
       console.log("WROTE " + n);`,
      path,
    ], { timeoutMs: 20_000 });
    const { app, errors } = appFor(path);
    const res = await app.request("/");
    assert.equal(res.status, 200, "fallback (off)");
    assert.match(errors.join(), /larger than 64 KiB/);
    const out = await writer.done;
    const wrote = Number(/WROTE (\d+)/.exec(out.stdout)?.[1]);
    assert.ok(
      wrote < 1_000_000,
      `the reader took ${wrote} bytes before giving up (at most 64 KiB + pipe buffer)`,
    );
  });
});

/** Runs a command as an unprivileged user when we are root (root reads any file). */
function asUnprivileged(cmd: string, args: string[]): [string, string[]] {
  const uid = process.getuid?.();
  if (uid !== 0) return [cmd, args];
  return [
    "setpriv",
    ["--reuid=65534", "--regid=65534", "--clear-groups", cmd, ...args],
  ];
}

const canDropRoot = process.getuid?.() !== 0 ||
  spawnSync("setpriv", [
      "--reuid=65534",
      "--regid=65534",
      "--clear-groups",
      "true",
    ])
      .status === 0;

describe("a state file this user may not read or write", {
  skip: canDropRoot
    ? false
    : "running as root without setpriv: cannot drop privileges",
}, () => {
  function userEnv(d: string): Record<string, string> {
    const home = join(d, "home");
    mkdirSync(home, { recursive: true });
    chmodSync(home, 0o777);
    return {
      HOME: home,
      DENO_DIR: join(home, "deno"),
      DENO_NO_UPDATE_CHECK: "1",
      BUN_RUNTIME_TRANSPILER_CACHE_PATH: "0",
    };
  }

  it("the middleware keeps the last state, then a fresh one serves the fallback", async () => {
    const d = tempDir();
    const path = join(d, "state.txt");
    writeFileSync(path, GOOD, { mode: 0o644 });
    const script = join(d, "serve.ts");
    writeFileSync(
      script,
      `import { Hono } from "${ROOT}/node_modules/hono/dist/index.js";
import { createMaintenance, FileStore } from "${ROOT}/mod.ts";
import { createInterface } from "node:readline";
const path = process.argv[2];
function make() {
  const errors: string[] = [];
  const mm = createMaintenance({ store: new FileStore(path), cache: { ttlMs: 0 }, onError: (e) => errors.push(e.message) });
  const app = new Hono();
  app.use(mm.middleware());
  app.get("/", (c) => c.text("ok"));
  return { app, errors };
}
const running = make();
console.log("PHASE1 " + (await running.app.request("/")).status);
const lines = createInterface({ input: process.stdin });
for await (const _ of lines) break;
const statuses = [];
for (let i = 0; i < 3; i++) statuses.push((await running.app.request("/")).status);
const fresh = make();
const freshStatus = (await fresh.app.request("/")).status;
console.log("PHASE2 " + JSON.stringify({ statuses, errors: running.errors, freshStatus, freshErrors: fresh.errors }));
process.exit(0);
`,
      { mode: 0o644 },
    );
    const [cmd, args] = asUnprivileged(...runtimeCommand(script, [path]));
    const child = start(cmd, args, { env: userEnv(d), timeoutMs: 30_000 });
    assert.match(await child.line(/^PHASE1 /), /PHASE1 503/);
    chmodSync(path, 0o600); // owned by root: the child may no longer read it
    child.child.stdin?.write("go\n");
    const phase2 = JSON.parse(
      (await child.line(/^PHASE2 /)).slice("PHASE2 ".length),
    );
    await child.done;
    assert.deepEqual(phase2.statuses, [503, 503, 503], "last state kept");
    assert.equal(phase2.errors.length, 1, JSON.stringify(phase2.errors));
    assert.ok(phase2.errors[0].includes(path));
    assert.match(phase2.errors[0], /permission denied/);
    assert.equal(phase2.freshStatus, 200, "fallback (off)");
    assert.match(phase2.freshErrors.join(), /permission denied/);
  });

  it("the CLI: status and on exit 1 naming the file, and the state is untouched", async () => {
    const d = tempDir();
    const sub = join(d, "locked");
    mkdirSync(sub);
    const path = join(sub, "state.txt");
    writeFileSync(path, GOOD, { mode: 0o600 });
    chmodSync(sub, 0o755); // the child may list it but not create files in it
    const env = userEnv(d);
    for (
      const [args, problem] of [
        [["status", "--file", path], /permission denied/],
        [["on", "--file", path, "--message", "x"], /permission denied/],
        [["off", "--file", path], /permission denied/],
      ] as const
    ) {
      const [cmd, argv] = asUnprivileged(
        ...runtimeCommand(`${ROOT}/main.ts`, [...args]),
      );
      const r = await start(cmd, argv, { env, timeoutMs: 30_000 }).done;
      assert.equal(r.code, 1, `${args.join(" ")}: ${r.stderr}`);
      assert.ok(r.stderr.includes(path), r.stderr);
      assert.match(r.stderr, problem);
      assert.equal(readFileSync(path, "utf8"), GOOD, "state untouched");
      assert.deepEqual(readdirSync(sub), ["state.txt"], "no temp file left");
    }
  });
});

describe("concurrent and interrupted writers", () => {
  it("4 processes toggle one file 250 times each: every read parses, the last write stays", async () => {
    const d = tempDir();
    const path = join(d, "state.txt");
    const COUNT = 250;
    await new FileStore(path).write(serializeState({ enabled: false }));
    const script = join(d, "toggle.ts");
    writeFileSync(
      script,
      `import { FileStore } from "${ROOT}/stores/file.ts";
import { serializeState } from "${ROOT}/src/_state.ts";
const [path, id, count] = process.argv.slice(2);
const store = new FileStore(path);
const clock = () => performance.timeOrigin + performance.now();
let last = { start: 0, end: 0 };
for (let i = 0; i < Number(count); i++) {
  const text = serializeState({ enabled: i % 2 === 0, message: id + ":" + i });
  const start = clock();
  await store.write(text);
  last = { start, end: clock() };
}
console.log("LAST " + JSON.stringify({ id, ...last }));
`,
    );
    const children = ["p0", "p1", "p2", "p3"].map((id) =>
      start(...runtimeCommand(script, [path, id, String(COUNT)]), {
        timeoutMs: 90_000,
      })
    );
    const all = Promise.all(children.map((c) => c.done));
    let over = false;
    all.then(() => over = true, () => over = true);
    const reader = new FileStore(path);
    let reads = 0;
    const seen = new Set<string>();
    while (!over) {
      const text = await reader.read();
      assert.notEqual(text, null, "the file vanished during a rename");
      const state = parseState(text); // throws on a torn, empty or partial file
      seen.add(state.message ?? "");
      reads++;
      await new Promise((r) => setTimeout(r, 0));
    }
    const results = await all;
    for (const r of results) assert.equal(r.code, 0, r.stderr);
    const lasts = results.map((r) =>
      JSON.parse(/LAST (.*)/.exec(r.stdout)![1]) as {
        id: string;
        start: number;
        end: number;
      }
    );
    assert.ok(reads > 50, `only ${reads} reads overlapped the writes`);
    assert.ok(seen.size > 10, `reads saw only ${seen.size} states`);
    const final = parseState(await reader.read());
    const m = /^(p[0-3]):(\d+)$/.exec(final.message ?? "");
    assert.ok(m, `final message ${final.message}`);
    assert.equal(Number(m[2]), COUNT - 1, "the final state is a last write");
    const winner = lasts.find((l) => l.id === m[1])!;
    for (const other of lasts) {
      // Nobody began its last write after the winner's had finished (2 ms of clock
      // skew between processes allowed).
      assert.ok(
        other.start <= winner.end + 2,
        `${other.id} began its last write ${
          (other.start - winner.end).toFixed(1)
        } ms after ${winner.id}'s ended, yet ${winner.id}'s is in the file`,
      );
    }
    assert.deepEqual(readdirSync(d).sort(), ["state.txt", "toggle.ts"]);
  });

  it("a writer killed with SIGKILL mid-write leaves the old or the new state, never a torn one", async () => {
    const d = tempDir();
    const path = join(d, "state.txt");
    const script = join(d, "writer.ts");
    writeFileSync(
      script,
      `import { FileStore } from "${ROOT}/stores/file.ts";
import { serializeState } from "${ROOT}/src/_state.ts";
const store = new FileStore(process.argv[2]);
for (let i = 0; i < 200000; i++) {
  const message = "k" + i + ":" + "x".repeat(1800) + ":k" + i;
  await store.write(serializeState({ enabled: i % 2 === 0, message }));
  if (i === 0) console.log("READY");
}
`,
    );
    let previous: string | undefined;
    for (let round = 0; round < 6; round++) {
      const w = start(...runtimeCommand(script, [path]), { timeoutMs: 30_000 });
      await w.line(/^READY/);
      await new Promise((r) => setTimeout(r, 20 + Math.random() * 120));
      w.child.kill("SIGKILL");
      const r = await w.done;
      assert.equal(r.signal, "SIGKILL", "killed while still writing");
      const text = readFileSync(path, "utf8");
      const state = parseState(text); // a torn file would not parse
      const m = /^k(\d+):x{1800}:k(\d+)$/.exec(state.message ?? "");
      assert.ok(m && m[1] === m[2], "a whole state from the writer");
      assert.equal(state.enabled, Number(m[1]) % 2 === 0);
      assert.notEqual(text, previous, "the writer got to write");
      previous = text;
    }
    // Temp files of killed writers may stay behind (hidden, never read as the state).
    for (const f of readdirSync(d)) {
      assert.ok(
        ["state.txt", "writer.ts"].includes(f) ||
          /^\.state\.txt\..*\.tmp$/.test(f),
        `unexpected file ${f}`,
      );
    }
  });
});

describe("state flips under load", () => {
  it("the state flips every 100 ms for 2.5 s at 8 connections: only 200 and 503", async () => {
    await toggleScenario({ seconds: 2.5, connections: 8 });
  });
});

describe("a state file that is a symbolic link", () => {
  it("a write goes through the link to the shared file, and the link stays", async () => {
    // Each server's state path links to one file on a shared mount; a switch through
    // any of them must reach the file the others read, as `echo 1 > link` would.
    const d = tempDir();
    mkdirSync(join(d, "shared"));
    mkdirSync(join(d, "app1"));
    mkdirSync(join(d, "app2"));
    const shared = join(d, "shared", "state.txt");
    writeFileSync(shared, "0\n");
    symlinkSync("../shared/state.txt", join(d, "app1", "state.txt"));
    symlinkSync(shared, join(d, "app2", "state.txt"));
    const one = createMaintenance({
      store: new FileStore(join(d, "app1", "state.txt")),
      cache: false,
    });
    const two = createMaintenance({
      store: new FileStore(join(d, "app2", "state.txt")),
      cache: false,
    });
    await one.enable({ message: "through app1" });
    assert.ok(lstatSync(join(d, "app1", "state.txt")).isSymbolicLink());
    assert.equal(parseState(readFileSync(shared, "utf8")).enabled, true);
    assert.equal(await two.isEnabled(), true, "the other server sees it");
    await two.disable();
    assert.ok(lstatSync(join(d, "app2", "state.txt")).isSymbolicLink());
    assert.equal(await one.isEnabled(), false);
    // The temp file went next to the target (same file system), and none is left.
    assert.deepEqual(readdirSync(join(d, "shared")), ["state.txt"]);
    assert.deepEqual(readdirSync(join(d, "app1")), ["state.txt"]);
  });

  it("a link to a file not yet there: the write creates it, a loop names the path", async () => {
    const d = tempDir();
    mkdirSync(join(d, "shared"));
    const link = join(d, "state.txt");
    symlinkSync("shared/state.txt", link); // dangling until the first write
    const store = new FileStore(link);
    assert.equal(await store.read(), null, "off until written");
    await store.write("1\n");
    assert.ok(lstatSync(link).isSymbolicLink());
    assert.equal(readFileSync(join(d, "shared", "state.txt"), "utf8"), "1\n");
    // A link into a directory that does not exist names that directory.
    const lost = join(d, "lost.txt");
    symlinkSync("nowhere/state.txt", lost);
    await assert.rejects(new FileStore(lost).write("1"), (e: Error) => {
      assert.match(e.message, /symbolic link to .*nowhere\/state\.txt/);
      assert.match(e.message, /directory .*nowhere does not exist/);
      return true;
    });
    const loop = join(d, "loop.txt");
    symlinkSync("loop.txt", loop);
    await assert.rejects(new FileStore(loop).write("1"), (e: Error) => {
      assert.ok(e.message.includes(loop), e.message);
      assert.equal((e as { code?: string }).code, "ELOOP");
      assert.match(e.message, /symbolic links in a row \(a loop\?\)/);
      return true;
    });
  });
});

/** Runs as root (owners can be set and changed). */
const root = typeof process.getuid === "function" && process.getuid() === 0;

describe("state file mode, owner and planted links", () => {
  it("a write keeps the mode of the file it replaces (chmod 600 holds)", async () => {
    const d = tempDir();
    const path = join(d, "state.txt");
    writeFileSync(path, "0");
    chmodSync(path, 0o600);
    await new FileStore(path).write(serializeState({ enabled: true }));
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(parseState(readFileSync(path, "utf8")).enabled, true);
    // The CLI writes through the same store.
    assert.equal((await cli(["off", "--file", path])).code, 0);
    assert.equal(statSync(path).mode & 0o777, 0o600);
  });

  it("a write keeps the owner of the file it replaces, where the process may", {
    skip: !root && "needs root to give a file another owner",
  }, async () => {
    const d = tempDir();
    const path = join(d, "state.txt");
    writeFileSync(path, "0");
    chownSync(path, 1234, 2345);
    await new FileStore(path).write("1");
    assert.equal(statSync(path).uid, 1234);
    assert.equal(statSync(path).gid, 2345);
  });

  it(
    "a link another user planted is not followed: clear error, exit 1, nothing written",
    {
      skip: !root && "needs root to plant a link owned by another user",
    },
    async () => {
      const shared = tempDir();
      chmodSync(shared, 0o1777); // a shared sticky directory, as /tmp
      const victim = join(tempDir(), "victim.conf");
      writeFileSync(victim, "keep");
      const link = join(shared, "x");
      symlinkSync(victim, link);
      lchownSync(link, 65534, 65534); // planted by nobody
      await assert.rejects(
        new FileStore(link).write("1"),
        /symbolic link owned by another user/,
      );
      const r = await cli(["on", "--file", link]);
      assert.equal(r.code, 1, r.err);
      assert.match(r.err, /owned by another user/);
      assert.equal(readFileSync(victim, "utf8"), "keep");
      assert.deepEqual(readdirSync(shared), ["x"], "no temporary file left");
      // The writer's own links (and root's) are followed as before.
      lchownSync(link, 0, 0);
      await new FileStore(link).write("1");
      assert.equal(readFileSync(victim, "utf8"), "1");
      assert.ok(lstatSync(link).isSymbolicLink());
    },
  );
});
