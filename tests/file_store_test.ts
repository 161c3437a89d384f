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
import process from "node:process";
import { createMaintenance } from "../src/maintenance.ts";
import { explain, FileStore, staleTemps, tempPath } from "../stores/file.ts";
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
    const stale = ".state.txt.0e3c5d1a-9f7b-4c2e-8a61-2b4d6f8e0a13.tmp";
    const fresh = ".state.txt.7c1f2e3d-4b5a-4968-9786-a5b4c3d2e1f0.tmp"; // a writer at work now
    const others = [
      ".state.txt.bak", // not ours
      ".other.txt.0e3c5d1a-9f7b-4c2e-8a61-2b4d6f8e0a13.tmp", // another state file's
      "state.txt.0e3c5d1a-9f7b-4c2e-8a61-2b4d6f8e0a13.tmp", // not hidden: not ours
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

  it("ages temp files by the file system's clock, not this host's (a shared mount an hour behind)", () => {
    // What the sweep decides from a listing (a real one cannot be made to come from a
    // file server whose clock is behind): every time an hour before this host's.
    const behind = Date.now() - 3_600_000;
    const files = [
      { name: "state.txt", mtimeMs: behind }, // just written, by the server's clock
      {
        name: ".state.txt.7c1f2e3d-4b5a-4968-9786-a5b4c3d2e1f0.tmp",
        mtimeMs: behind - 1000,
      },
      {
        name: ".state.txt.0e3c5d1a-9f7b-4c2e-8a61-2b4d6f8e0a13.tmp",
        mtimeMs: behind - 700_000,
      },
    ];
    assert.deepEqual(staleTemps(files, "state.txt"), [
      ".state.txt.0e3c5d1a-9f7b-4c2e-8a61-2b4d6f8e0a13.tmp",
    ]);
    assert.deepEqual(
      staleTemps(files.slice(1), "state.txt"),
      [],
      "no state file",
    );
    // A file gone between the listing and its stat has no time (NaN): never stale, and
    // a state file gone so makes nothing stale.
    const gone = {
      name: ".state.txt.5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d.tmp",
      mtimeMs: NaN,
    };
    assert.deepEqual(staleTemps([files[0], gone], "state.txt"), []);
    assert.deepEqual(
      staleTemps([{ name: "state.txt", mtimeMs: NaN }, files[2]], "state.txt"),
      [],
    );
  });

  it("defaults to maintenance_mode_state.txt, and names it by its absolute path", () => {
    assert.equal(
      new FileStore().description,
      `${process.cwd()}/maintenance_mode_state.txt`,
    );
    assert.equal(
      new FileStore("./a/../b/state.txt").description,
      `${process.cwd()}/b/state.txt`,
    );
    assert.equal(new FileStore("/srv/s.txt").description, "/srv/s.txt");
  });

  it("reads at most 64 KiB: a file of 64 KiB is read, one byte more is EFBIG", async () => {
    const d = await freshDir();
    const text = JSON.stringify({ enabled: true, message: "" });
    const full = text + " ".repeat(65_536 - text.length);
    await writeFile(`${d}/state.txt`, full);
    const store = new FileStore(`${d}/state.txt`);
    assert.equal(await store.read(), full);
    await writeFile(`${d}/state.txt`, full + " ");
    await assert.rejects(store.read(), (e: Error) => {
      assert.ok(e instanceof StoreError && e.code === "EFBIG", e.message);
      assert.match(e.message, /larger than 64 KiB/);
      return true;
    });
  });

  it("a read given an aborted signal stops: TIMEOUT, naming the file", async () => {
    const d = await freshDir();
    await writeFile(`${d}/state.txt`, "1");
    const store = new FileStore(`${d}/state.txt`);
    for (const signal of [AbortSignal.abort(), AbortSignal.timeout(0)]) {
      await new Promise((r) => setTimeout(r, 5));
      await assert.rejects(store.read(signal), (e: Error) => {
        assert.ok(e instanceof StoreError && e.code === "TIMEOUT", e.message);
        assert.ok(e.message.includes(`${d}/state.txt`), e.message);
        return true;
      });
    }
  });

  it("rejects an empty path or one ending in a slash", () => {
    assert.throws(() => new FileStore(""), TypeError);
    assert.throws(() => new FileStore("  "), /give a file path/);
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

  it("a relative path: the error names it absolute", async () => {
    const d = await freshDir();
    const cwd = process.cwd();
    process.chdir(d);
    try {
      const store = new FileStore("missing/state.txt");
      await assert.rejects(store.write("1"), (e: Error) => {
        assert.ok(e.message.includes(`${d}/missing/state.txt`), e.message);
        assert.match(e.message, /missing does not exist; create it/);
        return true;
      });
    } finally {
      process.chdir(cwd);
    }
  });

  it("Deno without the permission: says which --allow-read / --allow-write flag to add", async () => {
    // A real Deno run, with no permission at all (its modules load without one).
    const d = await freshDir();
    await writeFile(`${d}/state.txt`, "1");
    const script = `${d}-permission.ts`;
    await writeFile(
      script,
      `import { FileStore } from "${ROOT}/stores/file.ts";
const store = new FileStore(${JSON.stringify(`${d}/state.txt`)});
for (const op of [() => store.read(), () => store.write("0")]) {
  try { await op(); console.log("no error"); } catch (e) { console.log(e.code + " " + e.message); }
}
`,
    );
    const r = await runProcess("deno", [
      "run",
      "--no-prompt",
      "--no-config",
      script,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const [read, write] = r.stdout.trim().split("\n");
    assert.ok(
      read.startsWith(
        `EACCES cannot read maintenance state file ${d}/state.txt`,
      ),
      read,
    );
    assert.ok(read.includes(`--allow-read=${d}/state.txt`), read);
    assert.ok(
      write.startsWith(
        `EACCES cannot write maintenance state file ${d}/state.txt`,
      ),
      write,
    );
    assert.ok(write.includes(`--allow-read=${d} --allow-write=${d}`), write);
    assert.equal(await readFile(`${d}/state.txt`, "utf8"), "1");
    assert.deepEqual(await readdir(d), ["state.txt"]);
  });

  it("EPERM, EROFS, ENOSPC (no test here can cause them on cue): named, with the fix", () => {
    // explain() is what every failed read or write goes through; these errors cannot be
    // caused here on demand, so they are given to it as the runtimes raise them.
    for (
      const [code, op, says] of [
        ["EPERM", "read", /permission denied; let this user read the file/],
        [
          "EPERM",
          "write",
          /permission denied; let this user write to \/srv\/app/,
        ],
        [
          "EACCES",
          "write",
          /permission denied; let this user write to \/srv\/app/,
        ],
        ["EROFS", "write", /read-only/],
        [
          "ENOSPC",
          "write",
          /disk is full; free space, the old state is unchanged/,
        ],
      ] as const
    ) {
      const e = explain(
        "/srv/app/state.txt",
        op,
        Object.assign(new Error(code), { code }),
      );
      assert.equal(e.code, code);
      assert.match(
        e.message,
        /^cannot (read|write) maintenance state file \/srv\/app\/state\.txt: /,
      );
      assert.match(e.message, says);
    }
  });

  it("through the controller, enable() rejects with the StoreError", async () => {
    const d = await freshDir();
    await writeFile(`${d}/plain`, "x");
    const mm = createMaintenance({ store: new FileStore(`${d}/plain/s.txt`) });
    await assert.rejects(mm.enable(), StoreError);
  });
});

describe("FileStore under concurrent writers", () => {
  it("200 concurrent writes through one controller: every read parses, the last write stays", async () => {
    // The controller runs writes one at a time in call order; the store has no queue.
    const d = await freshDir();
    const path = `${d}/state.txt`;
    const store = new FileStore(path);
    const mm = createMaintenance({ store, cache: false });
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
      (_, i) => mm.setState({ enabled: i % 2 === 0, message: `w${i}` }),
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

  it("a failed write does not hold up the writes after it", async () => {
    const d = await freshDir();
    const store = new FileStore(`${d}/sub/state.txt`);
    await assert.rejects(store.write("1"), StoreError); // sub/ does not exist yet
    await mkdir(`${d}/sub`);
    await store.write("0");
    assert.equal(await store.read(), "0");
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

describe("FileStore temporary files", () => {
  it("go next to the state file, hidden, Windows paths too", () => {
    assert.match(
      tempPath("/srv/app/state.txt"),
      /^\/srv\/app\/\.state\.txt\.[0-9a-f]{8}-[0-9a-f-]{27}\.tmp$/,
    );
    assert.match(
      tempPath("C:\\app\\state.txt"),
      /^C:\\app\/\.state\.txt\..*\.tmp$/,
    );
    assert.match(tempPath("state.txt"), /^\.\/\.state\.txt\..*\.tmp$/);
    assert.notEqual(tempPath("/a/s"), tempPath("/a/s"));
    assert.throws(() => new FileStore("C:\\app\\"), /ends with a slash/);
  });

  it("the sweep removes only its own temp file names, not one with more after .tmp", async () => {
    const d = await freshDir();
    const hourAgo = new Date(Date.now() - 3_600_000);
    const stale = ".state.txt.0e3c5d1a-9f7b-4c2e-8a61-2b4d6f8e0a13.tmp";
    const kept = ".state.txt.0e3c5d1a-9f7b-4c2e-8a61-2b4d6f8e0a13.tmp.keep";
    for (const name of [stale, kept]) {
      await writeFile(`${d}/${name}`, "1");
      await utimes(`${d}/${name}`, hourAgo, hourAgo);
    }
    await new FileStore(`${d}/state.txt`).write("1");
    await waitUntil(async () => !(await readdir(d)).includes(stale));
    assert.deepEqual((await readdir(d)).sort(), [kept, "state.txt"].sort());
  });
});
