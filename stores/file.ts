/**
 * The state in a local file, written atomically (a temporary file in the same directory,
 * then a rename), through `node:fs`: Node's, Bun's, or Deno's own implementation of it.
 * `node:fs` is imported on first use, never when this module loads, so the core imports
 * on Cloudflare Workers without `nodejs_compat`.
 *
 * @module
 */
import { StoreError } from "./_store_error.ts";
import type { StateStore } from "./_types.ts";

/** The default state file, as django-maintenance-mode names it (the CLI's default too). */
export const DEFAULT_STATE_FILE = "maintenance_mode_state.txt";

/** The largest state file read, in bytes (`parseState` accepts at most 64 KiB). */
const MAX_BYTES = 65_536;

/** A temporary file this much older than the state file was left by a writer killed
 * before its rename. */
const STALE_TEMP_MS = 10 * 60_000;

/** What follows `.<name>.` in the temporary files `tempPath` makes. */
const TEMP_RE = /^[0-9a-f-]{36}\.tmp$/;

const ABSOLUTE = /^([A-Za-z]:)?[\\/]/;

const fsp = () => import("node:fs/promises");

const deno = (globalThis as { Deno?: typeof Deno }).Deno;

/** An `Error` with a Node-style `code`, as the runtimes' own errors carry. */
const codeError = (code: string) => Object.assign(new Error(code), { code });

const codeOf = (e: unknown) => (e as { code?: unknown } | undefined)?.code;

/** `path` split at its last `/` or `\`: the directory (`.` when none), and the name. */
function split(path: string): [string, string] {
  const i = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  return [i < 0 ? "." : path.slice(0, i) || "/", path.slice(i + 1)];
}

/**
 * A new temporary file next to `target`: `.<name>.<random UUID>.tmp`, a name no other
 * writer (on any host sharing the mount) makes.
 */
export function tempPath(target: string): string {
  const [dir, name] = split(target);
  return `${dir}/.${name}.${crypto.randomUUID()}.tmp`;
}

/**
 * The temporary files among `files` (a directory's listing) that a killed writer left
 * next to the state file `name`: ours by name, and 10 minutes older than the state file,
 * which was just written. Ages are taken on the file system's clock, so a shared mount
 * with a clock of its own cannot make a writer at work look old.
 */
export function staleTemps(
  files: { name: string; mtimeMs: number }[],
  name: string,
): string[] {
  const written = files.find((f) => f.name === name)?.mtimeMs ?? 0;
  const prefix = `.${name}.`;
  return files
    .filter((f) =>
      f.mtimeMs < written - STALE_TEMP_MS && f.name.startsWith(prefix) &&
      TEMP_RE.test(f.name.slice(prefix.length))
    )
    .map((f) => f.name);
}

/**
 * The error for a failed `op` on the state file `path`, naming it (and the file it links
 * to, `target`) and what to change.
 */
export function explain(
  path: string,
  op: "read" | "write",
  e: unknown,
  target: string = path,
): StoreError {
  const { name, code: raw, message } = (e ?? {}) as {
    name?: unknown;
    code?: unknown;
    message?: unknown;
  };
  // NotCapable: Deno's permission flags refused, not the file's mode (chmod won't help).
  const code = name === "NotCapable"
    ? "EACCES"
    : typeof raw === "string"
    ? raw
    : "EIO";
  const [dir] = split(target);
  const read = op === "read";
  const orElsewhere = (fix: string) =>
    `${fix}, or choose another path (--file PATH or MAINTENANCE_STATE_FILE)`;
  const denied = name === "NotCapable"
    ? "permission denied by Deno; run it with " +
      (read
        ? `--allow-read=${target}`
        : `--allow-read=${dir} --allow-write=${dir} (a write makes a temporary file there, then renames it)`)
    : orElsewhere(
      `permission denied; let this user ${
        read ? "read the file" : `write to ${dir}`
      } (chmod/chown)`,
    );
  const fix = ({
    ENOENT: orElsewhere(`directory ${dir} does not exist; create it`),
    EACCES: denied,
    EPERM: denied,
    EISDIR: "it is a directory; remove it or point the store at a file path",
    ENOTDIR: `a part of ${dir} is a file, not a directory; choose another path`,
    EROFS: "the file system is read-only; choose a writable path",
    ENOSPC: "the disk is full; free space, the old state is unchanged",
    ELOOP: "more than 40 symbolic links in a row (a loop?); fix the link",
    ELINKOWNER:
      "a symbolic link owned by another user is not followed (as Linux's " +
      "protected_symlinks); remove it, or give the file's own path",
    TIMEOUT: "the read was cancelled or timed out",
    EFBIG: "it is larger than 64 KiB, not a state; point the store at the " +
      "right file, or rewrite it with `maintenance on` / `maintenance off`",
    EMPTY:
      "the file is empty, not a state (another tool's write cut short?); write " +
      "it with `maintenance on` / `maintenance off`, or put 0 or 1 in it",
  } as Record<string, string>)[code] ?? String(message ?? e);
  const link = target !== path ? ` (a symbolic link to ${target})` : "";
  return new StoreError(
    `cannot ${op} maintenance state file ${path}${link}: ${fix}`,
    code,
    { cause: e },
  );
}

/**
 * The file a write to `path` replaces: when `path` is a symbolic link, the file it
 * points to (through a chain of links, even to a file not there yet), as `echo 1 > path`
 * writes through a link; else `path`. Only the last part is followed: a rename in a
 * linked directory lands in the directory it points to anyway.
 */
async function follow(path: string): Promise<string> {
  const fs = await fsp();
  const me = (globalThis as { process?: { getuid?(): number } }).process
    ?.getuid?.();
  for (let i = 0; i < 40; i++) { // as Linux's ELOOP
    let link: string;
    try {
      link = await fs.readlink(path);
    } catch (e) {
      // EINVAL: not a link; ENOENT: a new file, or a link's missing target.
      if (codeOf(e) === "EINVAL" || codeOf(e) === "ENOENT") return path;
      throw e;
    }
    // A link another user planted (in a shared sticky directory) is not followed, as
    // Linux's protected_symlinks: only the writer's own links and root's.
    const { uid } = await fs.lstat(path);
    if (me !== undefined && uid !== me && uid !== 0) {
      throw codeError("ELINKOWNER");
    }
    path = ABSOLUTE.test(link) ? link : `${split(path)[0]}/${link}`;
  }
  throw codeError("ELOOP");
}

/**
 * Removes the temporary files killed writers left next to `target` (see
 * {@linkcode staleTemps}). Under Deno, only with read and write permission there
 * already: Deno would prompt (and stall a run in a terminal) for what nobody asked for.
 */
async function sweep(target: string): Promise<void> {
  const [dir, name] = split(target);
  const granted = (name: "read" | "write") =>
    !deno ||
    deno.permissions.querySync({ name, path: dir }).state === "granted";
  if (!granted("read") || !granted("write")) return;
  const fs = await fsp();
  const files = await Promise.all(
    (await fs.readdir(dir))
      .filter((n) => n === name || n.startsWith(`.${name}.`))
      .map(async (n) => ({
        name: n,
        // Gone meanwhile: NaN, which is never stale.
        mtimeMs: (await fs.lstat(`${dir}/${n}`).catch(() => null))?.mtimeMs ??
          NaN,
      })),
  );
  await Promise.all(
    staleTemps(files, name).map((n) => fs.unlink(`${dir}/${n}`)),
  );
}

/**
 * Keeps the state in one local file. A missing file reads as off; a write goes to a
 * temporary file in the same directory, flushed to disk, then renamed over the state
 * file, so a reader (or a crash) sees the old state or the new one, never half of one.
 * When the path is a symbolic link, the write goes through it to the file it points to.
 * Errors are {@linkcode StoreError}s naming the file's absolute path and what to change.
 *
 * Writes through one controller run one at a time, in call order (the controller's
 * queue); writers in other processes race as `echo 1 > file` would, and the last rename
 * wins.
 *
 * @example
 * ```ts
 * import { createMaintenance, FileStore } from "@x/maintenance";
 * const mm = createMaintenance({ store: new FileStore("maintenance_mode_state.txt") });
 * await mm.enable({ message: "Back at 14:00" });
 * ```
 */
export class FileStore implements StateStore {
  /** The state file's absolute path (as given where there is no current directory). */
  readonly description: string;
  /** Whether this store has looked for temporary files left by killed writers. */
  #swept = false;

  /** A store for the file at `path` (default `maintenance_mode_state.txt`). */
  constructor(path: string = DEFAULT_STATE_FILE) {
    if (typeof path !== "string" || !path.trim() || /[\\/]$/.test(path)) {
      throw new TypeError(
        `FileStore path ${
          JSON.stringify(path)
        } is empty or ends with a slash; give a file path, such as 'maintenance_mode_state.txt'`,
      );
    }
    let cwd: string | undefined;
    try {
      cwd = (globalThis as { process?: { cwd(): string } }).process?.cwd();
    } catch {
      // the current directory was removed
    }
    if (ABSOLUTE.test(path) || !cwd) {
      this.description = path;
      return;
    }
    // Made absolute, so that messages say which file.
    const parts: string[] = [];
    for (const part of `${cwd}/${path}`.split(/[\\/]/)) {
      if (part === "..") {
        if (parts.length > 1) parts.pop();
      } else if (part !== "." && (part || !parts.length)) parts.push(part);
    }
    this.description = parts.join("/");
  }

  /**
   * The file's text, or `null` when the file does not exist. Rejects with a
   * {@linkcode StoreError} when the file cannot be read, is a directory, is larger than
   * 64 KiB (no more is read), or is empty (a state never is: an empty file is most
   * likely a write by another tool caught half-way).
   */
  async read(signal?: AbortSignal): Promise<string | null> {
    const path = this.description;
    let text: string;
    try {
      const file = await (await fsp()).open(path, "r");
      try {
        // At most 64 KiB + 1 bytes, so a huge or endless file (a FIFO) costs one small
        // buffer; a directory fails the read with EISDIR.
        const buffer = new Uint8Array(MAX_BYTES + 1);
        let length = 0;
        let n;
        do {
          if (signal?.aborted) throw codeError("TIMEOUT");
          length += n =
            (await file.read(buffer, length, buffer.length - length))
              .bytesRead;
        } while (n && length <= MAX_BYTES);
        if (length > MAX_BYTES) throw codeError("EFBIG");
        text = new TextDecoder().decode(buffer.subarray(0, length));
      } finally {
        await file.close();
      }
      if (!text.trim()) throw codeError("EMPTY");
    } catch (e) {
      if (codeOf(e) === "ENOENT") return null;
      throw explain(path, "read", e);
    }
    return text;
  }

  /** Replaces the file's text atomically (temporary file + rename). */
  async write(text: string): Promise<void> {
    const path = this.description;
    let target = path;
    try {
      const fs = await fsp();
      // Through a symbolic link (a shared mount, a deploy's current/ directory): a
      // rename over the link itself would leave every reader of that file behind.
      target = await follow(path);
      const tmp = tempPath(target);
      // The file replaced keeps its mode (chmod 600 holds the bypass hash in) and, where
      // this process may give it, its owner.
      const old = await fs.stat(target).catch(() => {});
      try {
        const file = await fs.open(tmp, "wx", 0o644);
        try {
          await file.writeFile(text);
          await file.sync();
        } finally {
          await file.close();
        }
        if (old) {
          await fs.chmod(tmp, old.mode & 0o7777);
          await fs.chown(tmp, old.uid, old.gid).catch(() => {});
        }
        await fs.rename(tmp, target);
      } catch (e) {
        await fs.unlink(tmp).catch(() => {});
        throw e;
      }
    } catch (e) {
      throw explain(path, "write", e, target);
    }
    if (!this.#swept) {
      this.#swept = true;
      // Tidying, once per store, after its first write: never awaited, never an error.
      sweep(target).catch(() => {});
    }
  }
}
