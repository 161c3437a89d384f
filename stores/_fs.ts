/**
 * The file operations the file store needs, over the runtime's own API: Deno's on Deno,
 * `node:fs` on Bun (Bun's native implementation of it; `Bun.file` has no rename, fsync
 * or lstat) and on Node. `node:fs` is imported on first use, never when this module
 * loads, so the core imports on Cloudflare Workers without `nodejs_compat`.
 *
 * @module
 */

const deno = (globalThis as { Deno?: typeof Deno }).Deno;

/** A file open for reading: a Deno.FsFile, or a node:fs handle seen as one. */
interface OpenFile {
  /** Reads into `buffer` at the current position: the count, 0 or null at the end. */
  read(buffer: Uint8Array): Promise<number | null>;
  stat(): Promise<{ isDirectory: boolean; size: number }>;
  close(): unknown;
}

/** The runtime's calls; the rest of this module is the same on every runtime. */
type Native = ReturnType<typeof denoNative>;

function denoNative(deno: typeof Deno) {
  return {
    open: (path: string): Promise<OpenFile> => deno.open(path),
    /** Creates `path` (failing if it exists), writes `bytes`, flushes them to disk. */
    async create(path: string, bytes: Uint8Array): Promise<void> {
      const file = await deno.open(path, {
        write: true,
        createNew: true,
        mode: 0o644,
      });
      try {
        for (let n = 0; n < bytes.length;) {
          n += await file.write(bytes.subarray(n));
        }
        await file.sync();
      } finally {
        file.close();
      }
    },
    rename: (from: string, to: string) => deno.rename(from, to),
    remove: (path: string) => deno.remove(path),
    async lstat(path: string) {
      const info = await deno.lstat(path);
      return { isSymlink: info.isSymlink, mtimeMs: info.mtime?.getTime() ?? 0 };
    },
    readLink: (path: string) => deno.readLink(path),
    async readDir(dir: string): Promise<string[]> {
      const names: string[] = [];
      for await (const entry of deno.readDir(dir)) names.push(entry.name);
      return names;
    },
    /** Whether access is granted without asking: Deno would prompt (and stall a run in
     * a terminal) for what the caller did not ask for, such as tidying a directory. */
    granted: (name: "read" | "write", path: string) =>
      deno.permissions.querySync({ name, path }).state === "granted",
  };
}

async function nodeNative(): Promise<Native> {
  const fs = await import("node:fs/promises");
  return {
    async open(path): Promise<OpenFile> {
      const handle = await fs.open(path, "r");
      return {
        read: async (buffer: Uint8Array) =>
          (await handle.read(buffer, 0, buffer.length, null)).bytesRead,
        async stat() {
          const info = await handle.stat();
          return { isDirectory: info.isDirectory(), size: info.size };
        },
        close: () => handle.close(),
      };
    },
    async create(path, bytes) {
      const handle = await fs.open(path, "wx", 0o644);
      try {
        await handle.writeFile(bytes);
        await handle.sync();
      } finally {
        await handle.close();
      }
    },
    rename: (from, to) => fs.rename(from, to),
    remove: (path) => fs.unlink(path),
    async lstat(path) {
      const info = await fs.lstat(path);
      return { isSymlink: info.isSymbolicLink(), mtimeMs: info.mtimeMs };
    },
    readLink: (path) => fs.readlink(path),
    readDir: (dir) => fs.readdir(dir),
    granted: () => true,
  };
}

let loaded: Promise<Native> | undefined;

/** The runtime's calls, loaded once, on first use. */
function native(): Promise<Native> {
  return loaded ??= deno ? Promise.resolve(denoNative(deno)) : nodeNative();
}

/** An `Error` with a Node-style `code`, as the runtimes' own errors carry. */
export function codeError(code: string, message: string = code): Error {
  return Object.assign(new Error(message), { code });
}

function isMissing(e: unknown): boolean {
  return (e as { code?: unknown })?.code === "ENOENT";
}

/** The part of `path` before its last `/` or `\`. */
export function dirname(path: string): string {
  const i = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  return i < 0 ? "." : i === 0 ? "/" : path.slice(0, i);
}

/** The part of `path` after its last `/` or `\`. */
export function basename(path: string): string {
  return path.slice(
    Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\")) + 1,
  );
}

/** `path` made absolute against the current directory (as given where there is none,
 * such as on Cloudflare Workers), so that messages say which file. */
export function absolute(path: string): string {
  if (/^([A-Za-z]:)?[\\/]/.test(path)) return path;
  let cwd: string | undefined;
  try {
    cwd = deno?.cwd() ??
      (globalThis as { process?: { cwd?(): string } }).process?.cwd?.();
  } catch {
    // the current directory was removed
  }
  if (cwd === undefined) return path;
  const parts = cwd.split(/[\\/]/).filter((part, i) => i === 0 || part !== "");
  for (const part of path.split(/[\\/]/)) {
    if (part === ".." && parts.length > 1) parts.pop();
    else if (part !== "." && part !== ".." && part !== "") parts.push(part);
  }
  return parts.join("/");
}

const decoder = new TextDecoder();

/**
 * The file's text, or `null` when it does not exist. Reads at most `maxBytes` + 1 bytes,
 * so a huge or endless file (a FIFO) costs one small buffer: rejects with code `EFBIG`
 * past `maxBytes`, and `EISDIR` for a directory.
 */
export async function readText(
  path: string,
  maxBytes: number,
  signal?: AbortSignal,
): Promise<string | null> {
  let file: OpenFile;
  try {
    file = await (await native()).open(path);
  } catch (e) {
    if (isMissing(e)) return null;
    throw e;
  }
  try {
    const info = await file.stat();
    if (info.isDirectory) throw codeError("EISDIR");
    if (info.size > maxBytes) throw codeError("EFBIG");
    // Regular files tell their size; pipes and devices say 0 and are read in steps.
    let buffer = new Uint8Array(Math.min(maxBytes + 1, info.size + 1024));
    let length = 0;
    for (;;) {
      signal?.throwIfAborted();
      if (length === buffer.length) {
        if (length > maxBytes) throw codeError("EFBIG");
        const bigger = new Uint8Array(Math.min(maxBytes + 1, length * 4));
        bigger.set(buffer);
        buffer = bigger;
      }
      const n = await file.read(buffer.subarray(length));
      if (!n) break;
      length += n;
    }
    if (length > maxBytes) throw codeError("EFBIG");
    return decoder.decode(buffer.subarray(0, length));
  } finally {
    await file.close();
  }
}

/**
 * Replaces `target` atomically: writes `text` to the new file `tmp` next to it, flushes
 * it to disk, then renames it over `target`, so a reader (or a crash) sees the old text
 * or the new, never half of one. `tmp` is removed when that fails.
 */
export async function replace(
  target: string,
  tmp: string,
  text: string,
): Promise<void> {
  const fs = await native();
  try {
    await fs.create(tmp, new TextEncoder().encode(text));
    await fs.rename(tmp, target);
  } catch (e) {
    await fs.remove(tmp).catch(() => {});
    throw e;
  }
}

/** Removes a file. */
export async function remove(path: string): Promise<void> {
  await (await native()).remove(path);
}

/** How many links in a row `resolve` follows (as Linux's ELOOP). */
const MAX_LINKS = 40;

/**
 * The file a write to `path` replaces: when `path` is a symbolic link, the file it
 * points to (through a chain of links, even to a file not there yet), as `echo 1 > path`
 * writes through a link; else `path`. Only the last part is followed: a rename in a
 * linked directory lands in the directory it points to anyway. Under Deno without read
 * permission, `path` itself (asking would stall a run in a terminal).
 */
export async function resolve(path: string): Promise<string> {
  const fs = await native();
  if (!fs.granted("read", path)) return path;
  let current = path;
  for (let i = 0; i < MAX_LINKS; i++) {
    let isSymlink: boolean;
    try {
      isSymlink = (await fs.lstat(current)).isSymlink;
    } catch (e) {
      if (isMissing(e)) return current; // a new file, or a link's missing target
      throw e;
    }
    if (!isSymlink) return current;
    const target = await fs.readLink(current);
    current = /^([A-Za-z]:)?[\\/]/.test(target)
      ? target
      : `${dirname(current)}/${target}`;
  }
  throw codeError(
    "ELOOP",
    `more than ${MAX_LINKS} symbolic links in a row (a loop?)`,
  );
}

/**
 * The files in `dir` whose names `include` accepts, with their modification times (on
 * the file system's clock); none under Deno without read and write permission there.
 */
export async function list(
  dir: string,
  include: (name: string) => boolean,
): Promise<{ name: string; mtimeMs: number }[]> {
  const fs = await native();
  if (!fs.granted("read", dir) || !fs.granted("write", dir)) return [];
  const out: { name: string; mtimeMs: number }[] = [];
  for (const name of await fs.readDir(dir)) {
    if (!include(name)) continue;
    try {
      out.push({ name, mtimeMs: (await fs.lstat(`${dir}/${name}`)).mtimeMs });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}
