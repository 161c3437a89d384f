/**
 * The few file operations the file store needs, on Deno, Bun or Node.
 *
 * @module
 */
// No static `node:` imports: `import "@x/maintenance"` must load where there is no
// node:fs (Cloudflare Workers without nodejs_compat). They load on a FileStore's first
// use, which is async anyway.
type NodeFs = typeof import("node:fs/promises");
type NodePath = typeof import("node:path");
let nodeFsLoaded: Promise<NodeFs> | undefined;
let nodePathLoaded: Promise<NodePath> | undefined;

/** `node:fs/promises`, loaded once, on first use. */
function nodeFs(): Promise<NodeFs> {
  return nodeFsLoaded ??= import("node:fs/promises");
}

/** `node:path`, loaded once, on first use. */
function nodePath(): Promise<NodePath> {
  return nodePathLoaded ??= import("node:path");
}

/** File operations the file store uses; `readText` returns `null` when the file is absent. */
export interface FsAdapter {
  /** Which runtime's API this adapter uses. */
  readonly runtime: "deno" | "bun" | "node";
  /**
   * The file's text, or `null` when it does not exist. With `maxBytes`, reads at most
   * that many bytes plus one and rejects with code `EFBIG` when there are more (a huge or
   * endless file is never read whole), and with `EISDIR` for a directory.
   */
  readText(
    path: string,
    signal?: AbortSignal,
    maxBytes?: number,
  ): Promise<string | null>;
  /** Writes `text` to a new file `path` and flushes it to disk. */
  writeNew(path: string, text: string): Promise<void>;
  /** Renames `from` to `to`, replacing `to` atomically. */
  rename(from: string, to: string): Promise<void>;
  /** Removes a file, ignoring a missing one. */
  remove(path: string): Promise<void>;
  /**
   * The file a write to `path` should replace: when `path` is a symbolic link, the file
   * it points to (through a chain of links, even to a file that does not exist yet), so
   * that a write goes through the link, as `echo 1 > path` and Django's `open(path, "w")`
   * do, instead of replacing the link by a file of its own; else `path`. Optional: an
   * adapter without it replaces the link.
   */
  resolve?(path: string): Promise<string>;
  /**
   * The files in `dir` whose names `include` accepts, with their modification times;
   * an empty list where looking would need a permission not yet granted (Deno would
   * prompt). Optional: the file store uses it to remove temporary files left by a
   * writer that was killed before its rename; an adapter without it leaves them be.
   */
  list?(
    dir: string,
    include: (name: string) => boolean,
  ): Promise<{ name: string; mtimeMs: number }[]>;
}

/** An open file, as `Deno.open` returns it. */
interface DenoFile {
  read(buffer: Uint8Array): Promise<number | null>;
  stat(): Promise<{ isDirectory: boolean; size: number }>;
  close(): void;
}

interface DenoFs {
  readTextFile(
    path: string,
    options?: { signal?: AbortSignal },
  ): Promise<string>;
  open(path: string, options: { read: true }): Promise<DenoFile>;
  writeTextFile(
    path: string,
    data: string,
    options?: { createNew?: boolean },
  ): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  remove(path: string): Promise<void>;
  errors: { NotFound: new (...args: never[]) => Error };
  permissions?: {
    querySync?(
      descriptor: { name: "read" | "write"; path: string },
    ): { state: string };
  };
}

interface BunFs {
  file(path: string): { exists(): Promise<boolean>; text(): Promise<string> };
}

/** Creates `path` (failing if it exists), writes `text` and flushes it to disk. */
async function writeNewSynced(path: string, text: string): Promise<void> {
  const handle = await (await nodeFs()).open(path, "wx", 0o644);
  try {
    await handle.writeFile(text, "utf8");
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** `list` for every adapter: node:fs works on Deno, Bun and Node alike. */
async function listMatching(
  dir: string,
  include: (name: string) => boolean,
): Promise<{ name: string; mtimeMs: number }[]> {
  const out: { name: string; mtimeMs: number }[] = [];
  for (const name of await (await nodeFs()).readdir(dir)) {
    if (!include(name)) continue;
    try {
      out.push({
        name,
        mtimeMs: (await (await nodeFs()).lstat(`${dir}/${name}`)).mtimeMs,
      });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** How many links in a row `resolveLink` follows before it gives up (as Linux's ELOOP). */
const MAX_LINKS = 40;

/** `resolve` for every adapter: node:fs works on Deno, Bun and Node alike. Only the last
 * part of the path is followed: a rename in a linked directory already lands in the
 * directory it points to. */
async function resolveLink(path: string): Promise<string> {
  let current = path;
  for (let i = 0; i < MAX_LINKS; i++) {
    let isLink: boolean;
    try {
      isLink = (await (await nodeFs()).lstat(current)).isSymbolicLink();
    } catch (e) {
      if (isNotFound(e)) return current; // a new file, or a link's missing target
      throw e;
    }
    if (!isLink) return current;
    const target = await (await nodeFs()).readlink(current);
    const { dirname, isAbsolute, join } = await nodePath();
    current = isAbsolute(target) ? target : join(dirname(current), target);
  }
  throw codeError(
    "ELOOP",
    `more than ${MAX_LINKS} symbolic links in a row (a loop?)`,
  );
}

function isNotFound(e: unknown): boolean {
  return (e as { code?: string })?.code === "ENOENT";
}

function codeError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

const decoder = new TextDecoder();

/**
 * Reads an open file up to `maxBytes` + 1 bytes: `read` fills the buffer from the current
 * position and resolves the count, 0 or null at the end. Rejects with `EISDIR` for a
 * directory and `EFBIG` past `maxBytes`, so a 10 MB (or endless) file costs one small
 * buffer, not its whole size.
 */
async function readBounded(
  stat: () => Promise<{ isDirectory: boolean; size: number }>,
  read: (buffer: Uint8Array) => Promise<number | null>,
  maxBytes: number,
  signal: AbortSignal | undefined,
): Promise<string> {
  const info = await stat();
  if (info.isDirectory) throw codeError("EISDIR", "is a directory");
  const tooLarge = () =>
    codeError("EFBIG", `larger than ${maxBytes} bytes (the limit for a state)`);
  if (info.size > maxBytes) throw tooLarge();
  // Regular files report their size; pipes and devices report 0 and are read in steps.
  let buffer = new Uint8Array(
    Math.min(maxBytes + 1, Math.max(info.size + 1, 1024)),
  );
  let length = 0;
  for (;;) {
    signal?.throwIfAborted();
    if (length === buffer.length) {
      if (length > maxBytes) throw tooLarge();
      const bigger = new Uint8Array(Math.min(maxBytes + 1, buffer.length * 4));
      bigger.set(buffer);
      buffer = bigger;
    }
    const n = await read(buffer.subarray(length));
    if (n === null || n === 0) break;
    length += n;
  }
  if (length > maxBytes) throw tooLarge();
  return decoder.decode(buffer.subarray(0, length));
}

function denoAdapter(deno: DenoFs): FsAdapter {
  return {
    runtime: "deno",
    async readText(path, signal, maxBytes) {
      try {
        if (maxBytes === undefined) {
          return await deno.readTextFile(path, { signal });
        }
        const file = await deno.open(path, { read: true });
        try {
          return await readBounded(
            () => file.stat(),
            (buffer) => file.read(buffer),
            maxBytes,
            signal,
          );
        } finally {
          file.close();
        }
      } catch (e) {
        if (e instanceof deno.errors.NotFound) return null;
        throw e;
      }
    },
    // node:fs gives us fsync on the handle, which Deno.writeTextFile does not.
    writeNew: writeNewSynced,
    rename: (from, to) => deno.rename(from, to),
    resolve(path) {
      // Without read permission Deno would prompt (and stall a run in a terminal):
      // replace the path as it is instead.
      const state = deno.permissions?.querySync?.({ name: "read", path }).state;
      return state === undefined || state === "granted"
        ? resolveLink(path)
        : Promise.resolve(path);
    },
    list(dir, include) {
      // Listing and removing without the permission would prompt (and stall) a Deno
      // run in a terminal: tidying is not worth asking for.
      const granted = (name: "read" | "write") =>
        deno.permissions?.querySync?.({ name, path: dir }).state === "granted";
      return granted("read") && granted("write")
        ? listMatching(dir, include)
        : Promise.resolve([]);
    },
    async remove(path) {
      try {
        await deno.remove(path);
      } catch (e) {
        if (!(e instanceof deno.errors.NotFound)) throw e;
      }
    },
  };
}

function nodeAdapter(runtime: "node" | "bun", bun?: BunFs): FsAdapter {
  return {
    runtime,
    async readText(path, signal, maxBytes) {
      try {
        if (maxBytes !== undefined) {
          const handle = await (await nodeFs()).open(path, "r");
          try {
            return await readBounded(
              async () => {
                const st = await handle.stat();
                return { isDirectory: st.isDirectory(), size: st.size };
              },
              async (buffer) =>
                (await handle.read(buffer, 0, buffer.length, null)).bytesRead,
              maxBytes,
              signal,
            );
          } finally {
            await handle.close();
          }
        }
        if (bun) {
          // Bun.file().text() is Bun's fastest read; a missing file rejects with ENOENT.
          return await bun.file(path).text();
        }
        return await (await nodeFs()).readFile(path, {
          encoding: "utf8",
          signal,
        });
      } catch (e) {
        if (isNotFound(e)) return null;
        throw e;
      }
    },
    writeNew: writeNewSynced,
    rename: async (from, to) => (await nodeFs()).rename(from, to),
    resolve: resolveLink,
    list: listMatching,
    async remove(path) {
      try {
        await (await nodeFs()).unlink(path);
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
    },
  };
}

/**
 * The adapter for the runtime this code runs on: Deno's API under Deno, Bun's under
 * Bun, `node:fs` elsewhere.
 *
 * @example
 * ```ts
 * import { detectFs } from "./_fs.ts";
 * const fs = detectFs();
 * console.log(fs.runtime);
 * ```
 */
export function detectFs(): FsAdapter {
  const g = globalThis as { Deno?: DenoFs; Bun?: BunFs };
  if (g.Deno && typeof g.Deno.readTextFile === "function") {
    return denoAdapter(g.Deno);
  }
  if (g.Bun && typeof g.Bun.file === "function") {
    return nodeAdapter("bun", g.Bun);
  }
  return nodeAdapter("node");
}
