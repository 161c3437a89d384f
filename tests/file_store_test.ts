import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  chmod,
  mkdir,
  readdir,
  readFile,
  utimes,
  writeFile,
} from "node:fs/promises";
import { detectFs, type FsAdapter } from "../stores/_fs.ts";
import { createMaintenance } from "../src/maintenance.ts";
import { DEFAULT_STATE_FILE, FileStore } from "../stores/file.ts";
import { parseState, serializeState } from "../src/_state.ts";
import { StoreError } from "../stores/_store_error.ts";
import {
  currentRuntime,
  isRoot,
  ROOT,
  runProcess,
  scriptCommand,
  sleep,
  startProcess,
  useTempDirs,
} from "./helpers.ts";

/** Polls `cond` every 10 ms; fails the test after 2 s. */
async function waitUntil(
  cond: () => boolean | Promise<boolean>,
): Promise<void> {
  const deadline = Date.now() + 2000;
  while (!(await cond())) {
    assert.ok(Date.now() < deadline, "timed out waiting");
    await sleep(10);
  }
}

const dirs = useTempDirs("maintenance-file-store-");
const freshDir = dirs.fresh;

describe("FileStore on a real directory", () => {
  it("reads a missing file as null (off)", async () => {
    const d = await freshDir();
    const store = new FileStore(`${d}/state.txt`);
    assert.equal(await store.read(), null);
    assert.equal(
      await createMaintenance({ store }).isEnabled(),
      false,
    );
  });

  it("reads a path under a missing directory as null too", async () => {
    const store = new FileStore(`${dirs.root()}/no-such-dir/state.txt`);
    assert.equal(await store.read(), null);
  });

  it("writes and reads back", async () => {
    const d = await freshDir();
    const store = new FileStore(`${d}/state.txt`);
    const text = serializeState({ enabled: true, message: "Zurück ☕ <b>" });
    await store.write(text);
    assert.equal(await store.read(), text);
    assert.equal(await readFile(`${d}/state.txt`, "utf8"), text);
    await store.write("0");
    assert.equal(await store.read(), "0");
  });

  it("reads the Django file format written by someone else", async () => {
    const d = await freshDir();
    await writeFile(`${d}/state.txt`, "1\n");
    const mm = createMaintenance({ store: new FileStore(`${d}/state.txt`) });
    assert.equal(await mm.isEnabled(), true);
  });

  it("leaves no temp files behind", async () => {
    const d = await freshDir();
    const store = new FileStore(`${d}/state.txt`);
    for (let i = 0; i < 20; i++) {
      await store.write(`{"enabled":${i % 2 === 0}}`);
    }
    assert.deepEqual(await readdir(d), ["state.txt"]);
  });

  it("leaves no temp file behind when the rename fails", async () => {
    const d = await freshDir();
    await mkdir(`${d}/state.txt`); // a directory where the file should be
    await writeFile(`${d}/state.txt/keep`, "x"); // not empty: rename cannot replace it
    const store = new FileStore(`${d}/state.txt`);
    await assert.rejects(store.write("1"), StoreError);
    assert.deepEqual(await readdir(d), ["state.txt"]);
  });

  it("removes temp files a killed writer left (10 min older than the state), and nothing else", async () => {
    const d = await freshDir();
    const hourAgo = new Date(Date.now() - 3_600_000);
    const stale = ".state.txt.4242-lz3k1a2b-0-abc123.tmp";
    const fresh = ".state.txt.4243-lz3k1a2b-0-def456.tmp"; // a writer at work now
    const others = [
      ".state.txt.bak", // not ours
      ".other.txt.4242-lz3k1a2b-0-abc123.tmp", // another state file's
      "state.txt.4242-lz3k1a2b-0-abc123.tmp", // not hidden: not ours
    ];
    for (const name of [stale, fresh, ...others]) {
      await writeFile(`${d}/${name}`, "1");
    }
    for (const name of [stale, ...others]) {
      await utimes(`${d}/${name}`, hourAgo, hourAgo);
    }
    const store = new FileStore(`${d}/state.txt`);
    await store.write("1");
    // The sweep runs after the write, not awaited by it.
    await waitUntil(async () => !(await readdir(d)).includes(stale));
    assert.deepEqual(
      (await readdir(d)).sort(),
      [fresh, ...others, "state.txt"].sort(),
    );
    // Once per store: a stale file that appears later stays until the next store.
    await writeFile(`${d}/${stale}`, "1");
    await utimes(`${d}/${stale}`, hourAgo, hourAgo);
    await store.write("0");
    await sleep(100);
    assert.ok((await readdir(d)).includes(stale));
    await new FileStore(`${d}/state.txt`).write("0");
    await waitUntil(async () => !(await readdir(d)).includes(stale));
  });

  it("ages temp files by the file system's clock, not this host's (a shared mount an hour behind)", async () => {
    // Fault injection: an adapter that reports every time an hour early, as a file
    // server whose clock is behind would. A real one cannot be set up here.
    const d = await freshDir();
    const real = detectFs();
    const behind = {
      ...real,
      list: async (dir: string, include: (name: string) => boolean) =>
        (await real.list!(dir, include)).map((f) => ({
          ...f,
          mtimeMs: f.mtimeMs - 3_600_000,
        })),
    };
    const working = ".state.txt.4243-lz3k1a2b-0-def456.tmp";
    await writeFile(`${d}/${working}`, "1"); // just written, by the server's clock
    let listed = false;
    const store = new FileStore(`${d}/state.txt`, {
      ...behind,
      list: async (dir, include) => {
        const files = await behind.list(dir, include);
        listed = true;
        return files;
      },
    });
    await store.write("1");
    await waitUntil(() => listed);
    await sleep(50);
    assert.ok((await readdir(d)).includes(working), "a writer at work is kept");
  });

  it("an adapter without list() still writes (the sweep is skipped)", async () => {
    const d = await freshDir();
    const { list: _list, ...withoutList } = detectFs();
    const store = new FileStore(`${d}/state.txt`, withoutList);
    await store.write("1");
    assert.equal(await store.read(), "1");
  });

  it("defaults to maintenance_mode_state.txt", () => {
    assert.equal(DEFAULT_STATE_FILE, "maintenance_mode_state.txt");
    assert.equal(new FileStore().path, "maintenance_mode_state.txt");
  });

  it("rejects an empty path or one ending in a slash", () => {
    assert.throws(() => new FileStore(""), TypeError);
    assert.throws(() => new FileStore("  "), TypeError);
    assert.throws(() => new FileStore("state/"), /ends with a slash/);
  });
});

describe("FileStore errors name the path and the fix", () => {
  it("write into a missing directory: ENOENT, create it", async () => {
    const path = `${dirs.root()}/missing-dir/state.txt`;
    await assert.rejects(
      new FileStore(path).write("1"),
      (e: Error) => {
        assert.ok(e instanceof StoreError, e.name);
        assert.equal(e.code, "ENOENT");
        assert.ok(e.message.includes(path), e.message);
        assert.match(e.message, /missing-dir does not exist; create it/);
        assert.match(e.message, /--file PATH or MAINTENANCE_STATE_FILE/);
        return true;
      },
    );
  });

  it("a directory where the file should be: EISDIR (read and write)", async () => {
    const d = await freshDir();
    const path = `${d}/state.txt`;
    await mkdir(path);
    const store = new FileStore(path);
    for (const op of [() => store.read(), () => store.write("1")]) {
      await assert.rejects(op(), (e: Error) => {
        assert.ok(e instanceof StoreError, e.name);
        assert.equal(e.code, "EISDIR");
        assert.ok(e.message.includes(path), e.message);
        assert.match(e.message, /is a directory; remove it or point the store/);
        return true;
      });
    }
  });

  it("a path under a regular file: ENOTDIR (read and write)", async () => {
    const d = await freshDir();
    await writeFile(`${d}/plain`, "x");
    const path = `${d}/plain/state.txt`;
    const store = new FileStore(path);
    for (
      const [name, op] of [["read", () => store.read()], [
        "write",
        () => store.write("1"),
      ]] as const
    ) {
      await assert.rejects(op(), (e: Error) => {
        assert.ok(e instanceof StoreError, `${name}: ${e.name}`);
        assert.equal(e.code, "ENOTDIR", name);
        assert.ok(e.message.includes(path), e.message);
        assert.match(
          e.message,
          /is a file, not a directory; choose another path/,
        );
        return true;
      });
    }
  });

  it(
    "a directory this user may not write: EACCES, permission denied",
    {
      skip: isRoot()
        ? "running as root, where chmod 000 keeps nobody out"
        : false,
    },
    async () => {
      const d = await freshDir();
      await chmod(d, 0o500);
      try {
        await assert.rejects(
          new FileStore(`${d}/state.txt`).write("1"),
          (e: Error) => {
            assert.ok(e instanceof StoreError);
            assert.equal(e.code, "EACCES");
            assert.match(e.message, /permission denied; let this user write/);
            return true;
          },
        );
      } finally {
        await chmod(d, 0o700);
      }
    },
  );

  it("through the controller, enable() rejects with the StoreError", async () => {
    const d = await freshDir();
    await writeFile(`${d}/plain`, "x");
    const mm = createMaintenance({ store: new FileStore(`${d}/plain/s.txt`) });
    await assert.rejects(mm.enable(), StoreError);
  });
});

describe("FileStore under concurrent writers", () => {
  it("200 concurrent writes in one process: every read parses, the last write stays", async () => {
    const d = await freshDir();
    const path = `${d}/state.txt`;
    const store = new FileStore(path);
    await store.write(serializeState({ enabled: false, message: "start" }));
    let stop = false;
    let reads = 0;
    const reader = (async () => {
      const r = new FileStore(path);
      while (!stop) {
        const text = await r.read();
        assert.notEqual(text, null, "the file vanished during a rename");
        parseState(text); // throws on a torn or empty file
        reads++;
      }
    })();
    const writes = Array.from(
      { length: 200 },
      (_, i) =>
        store.write(serializeState({ enabled: i % 2 === 0, message: `w${i}` })),
    );
    await Promise.all(writes);
    stop = true;
    await reader;
    assert.ok(reads > 0);
    const final = parseState(await store.read());
    assert.equal(final.message, "w199");
    assert.equal(final.enabled, false);
    assert.deepEqual(await readdir(d), ["state.txt"]);
  });

  it("4 writer processes and a reader: every read parses, no temp files left", async () => {
    const d = await freshDir();
    const path = `${d}/state.txt`;
    await new FileStore(path).write(serializeState({ enabled: false }));
    const script = `${d}/writer.ts`;
    await writeFile(
      script,
      `import { FileStore } from "${ROOT}/stores/file.ts";
const [path, id, count] = process.argv.slice(2);
const store = new FileStore(path);
for (let i = 0; i < Number(count); i++) {
  await store.write(JSON.stringify({ enabled: i % 2 === 0, message: id + ":" + i }) + "\\n");
}
console.log("done " + id);
`,
    );
    const runtime = currentRuntime();
    const COUNT = 60;
    // Started (not awaited) first, so reading overlaps the writes.
    const children = [0, 1, 2, 3].map((id) => {
      const [cmd, args] = scriptCommand(runtime, script, [
        path,
        `p${id}`,
        String(COUNT),
      ]);
      return startProcess(cmd, args);
    });
    let reads = 0;
    const seen = new Set<string>();
    const reader = new FileStore(path);
    try {
      const finished = Promise.all(
        children.map((c) => c.waitFor(/done p\d/, 60_000)),
      );
      let over = false;
      finished.then(() => (over = true), () => (over = true));
      while (!over) {
        const text = await reader.read();
        assert.notEqual(text, null);
        const s = parseState(text);
        if (s.message) seen.add(s.message);
        reads++;
        await new Promise((r) => setTimeout(r, 1));
      }
      await finished;
    } finally {
      for (const c of children) await c.stop();
    }
    assert.ok(reads > 0);
    const final = parseState(await reader.read());
    // Each writer's writes land in order; the file ends with one writer's last write.
    assert.match(final.message ?? "", new RegExp(`^p[0-3]:${COUNT - 1}$`));
    assert.deepEqual((await readdir(d)).sort(), ["state.txt", "writer.ts"]);
  });

  it("a CLI-style process write is seen by a FileStore reader", async () => {
    const d = await freshDir();
    const [cmd, args] = scriptCommand(currentRuntime(), "main.ts", [
      "on",
      "--file",
      `${d}/state.txt`,
      "--message",
      "from the CLI",
    ]);
    const r = await runProcess(cmd, args);
    assert.equal(r.code, 0, r.stderr);
    const state = parseState(await new FileStore(`${d}/state.txt`).read());
    assert.equal(state.enabled, true);
    assert.equal(state.message, "from the CLI");
  });
});

/**
 * FAULT INJECTOR (a real file system cannot be made to fail this way on cue, and chmod
 * keeps nobody out when the tests run as root): an adapter over a Map whose reads and
 * writes can be made to throw, recording the paths and signals it is given.
 */
class FakeFs implements FsAdapter {
  readonly runtime = "node" as const;
  files = new Map<string, string>();
  readError: unknown = undefined;
  writeError: unknown = undefined;
  /** Text read returns as is, as an adapter that does not bound its reads. */
  unbounded: string | undefined = undefined;
  signals: (AbortSignal | undefined)[] = [];
  written: string[] = [];
  readText(path: string, signal?: AbortSignal): Promise<string | null> {
    this.signals.push(signal);
    if (this.readError !== undefined) return Promise.reject(this.readError);
    if (this.unbounded !== undefined) return Promise.resolve(this.unbounded);
    return Promise.resolve(this.files.get(path) ?? null);
  }
  writeNew(path: string, text: string): Promise<void> {
    this.written.push(path);
    if (this.writeError !== undefined) return Promise.reject(this.writeError);
    this.files.set(path, text);
    return Promise.resolve();
  }
  rename(from: string, to: string): Promise<void> {
    const text = this.files.get(from);
    if (text === undefined) return Promise.reject(new Error("no such file"));
    this.files.delete(from);
    this.files.set(to, text);
    return Promise.resolve();
  }
  remove(path: string): Promise<void> {
    this.files.delete(path);
    return Promise.resolve();
  }
}

describe("FileStore over an adapter: errors, bounds, signals, paths", () => {
  it("permission denied says read or write, for EACCES, EPERM and Deno's error names", async () => {
    const path = "/srv/app/state.txt";
    for (
      const err of [
        Object.assign(new Error("denied"), { code: "EACCES" }),
        Object.assign(new Error("denied"), { code: "EPERM" }),
        Object.assign(new Error("denied"), { name: "PermissionDenied" }),
        Object.assign(new Error("denied"), { name: "NotCapable" }),
      ]
    ) {
      const fs = new FakeFs();
      fs.readError = err;
      fs.writeError = err;
      const store = new FileStore(path, fs);
      await assert.rejects(store.read(), (e: Error) => {
        assert.ok(e instanceof StoreError, e.name);
        assert.match(
          e.message,
          /permission denied; let this user read the file/,
        );
        return true;
      });
      await assert.rejects(store.write("1"), (e: Error) => {
        assert.ok(e instanceof StoreError, e.name);
        assert.match(
          e.message,
          /permission denied; let this user write to \/srv\/app/,
        );
        return true;
      });
    }
  });

  it("Deno's error names map to the codes: NotFound, IsADirectory, AbortError", async () => {
    for (
      const [name, code] of [
        ["NotFound", "ENOENT"],
        ["IsADirectory", "EISDIR"],
        ["AbortError", "TIMEOUT"],
      ]
    ) {
      const fs = new FakeFs();
      fs.writeError = Object.assign(new Error(name), { name });
      await assert.rejects(
        new FileStore("/srv/app/state.txt", fs).write("1"),
        (e: Error) => e instanceof StoreError && e.code === code,
        name,
      );
    }
  });

  it("an adapter that does not bound its reads: more than 64 KiB is EFBIG", async () => {
    const fs = new FakeFs();
    fs.unbounded = "1" + " ".repeat(70_000);
    await assert.rejects(
      new FileStore("/srv/app/state.txt", fs).read(),
      (e: Error) =>
        e instanceof StoreError && e.code === "EFBIG" &&
        /larger than 64 KiB/.test(e.message),
    );
  });

  it("read passes the abort signal on to the adapter", async () => {
    const fs = new FakeFs();
    fs.files.set("/srv/app/state.txt", "1");
    const signal = new AbortController().signal;
    assert.equal(
      await new FileStore("/srv/app/state.txt", fs).read(signal),
      "1",
    );
    assert.equal(fs.signals[0], signal);
  });

  it("a Windows path: the temp file goes next to the state file", async () => {
    const fs = new FakeFs();
    const store = new FileStore("C:\\app\\state.txt", fs);
    await store.write("1");
    assert.match(fs.written[0], /^C:\\app\/\.state\.txt\..*\.tmp$/);
    assert.equal(fs.files.get("C:\\app\\state.txt"), "1");
    assert.throws(() => new FileStore("C:\\app\\"), /ends with a slash/);
  });

  it("a failed write does not hold up the writes after it", async () => {
    const d = await freshDir();
    const store = new FileStore(`${d}/sub/state.txt`);
    await assert.rejects(store.write("1"), StoreError); // sub/ does not exist yet
    await mkdir(`${d}/sub`);
    await store.write("0");
    assert.equal(await store.read(), "0");
  });

  it("the sweep removes only its own temp file names, not one with more after .tmp", async () => {
    const d = await freshDir();
    const hourAgo = new Date(Date.now() - 3_600_000);
    const stale = ".state.txt.4242-lz3k1a2b-0-abc123.tmp";
    const kept = ".state.txt.4242-lz3k1a2b-0-abc123.tmp.keep";
    for (const name of [stale, kept]) {
      await writeFile(`${d}/${name}`, "1");
      await utimes(`${d}/${name}`, hourAgo, hourAgo);
    }
    await new FileStore(`${d}/state.txt`).write("1");
    await waitUntil(async () => !(await readdir(d)).includes(stale));
    assert.deepEqual((await readdir(d)).sort(), [kept, "state.txt"].sort());
  });
});
