/**
 * The state in a local file, written atomically (temp file in the same directory +
 * rename), on Deno, Bun or Node.
 *
 * @module
 */
import { detectFs, type FsAdapter } from "./_fs.ts";
import { StoreError } from "./_store_error.ts";
import type { StateStore } from "./_types.ts";

/**
 * The default state file name, as in django-maintenance-mode.
 *
 * @example
 * ```ts
 * import { DEFAULT_STATE_FILE } from "@x/maintenance";
 * console.log(DEFAULT_STATE_FILE); // "maintenance_mode_state.txt"
 * ```
 */
export const DEFAULT_STATE_FILE = "maintenance_mode_state.txt";

function dirname(path: string): string {
  const i = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  return i < 0 ? "." : i === 0 ? "/" : path.slice(0, i);
}

function basename(path: string): string {
  const i = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  return path.slice(i + 1);
}

function codeError(code: string): Error {
  return Object.assign(new Error(code), { code });
}

function errorCode(e: unknown): string {
  const err = e as { code?: unknown; name?: unknown };
  if (typeof err?.code === "string") return err.code;
  switch (err?.name) {
    case "NotFound":
      return "ENOENT";
    case "PermissionDenied":
    case "NotCapable":
      return "EACCES";
    case "IsADirectory":
      return "EISDIR";
    case "AbortError":
    case "TimeoutError":
      return "TIMEOUT";
  }
  return "EIO";
}

/** `target` is the file a write replaces, when `path` is a symbolic link to it. */
function explain(
  path: string,
  op: "read" | "write",
  e: unknown,
  target: string = path,
): StoreError {
  const code = errorCode(e);
  const what = `cannot ${op} maintenance state file ${path}` +
    (target !== path ? ` (a symbolic link to ${target})` : "");
  const dir = dirname(target);
  let fix: string;
  switch (code) {
    case "ENOENT":
      fix =
        `directory ${dir} does not exist; create it, or choose another path ` +
        "(--file PATH or MAINTENANCE_STATE_FILE)";
      break;
    case "EACCES":
    case "EPERM":
      fix = op === "read"
        ? "permission denied; let this user read the file (chmod/chown), or choose another path"
        : `permission denied; let this user write to ${dir} (chmod/chown), ` +
          "or choose another path (--file PATH or MAINTENANCE_STATE_FILE)";
      break;
    case "EISDIR":
      fix = "it is a directory; remove it or point the store at a file path";
      break;
    case "ENOTDIR":
      fix = `a part of ${dir} is a file, not a directory; choose another path`;
      break;
    case "EROFS":
      fix = "the file system is read-only; choose a writable path";
      break;
    case "ENOSPC":
      fix = "the disk is full; free space, the old state is unchanged";
      break;
    case "TIMEOUT":
      fix = "the read was cancelled or timed out";
      break;
    case "EFBIG":
      fix =
        `it is larger than ${
          MAX_STATE_BYTES / 1024
        } KiB, so it is not a maintenance ` +
        "state (a state is one short line); point the store at the right file, or " +
        "replace it with `maintenance on` / `maintenance off`";
      break;
    case "EMPTY":
      fix =
        "the file is empty, which is not a state (did a write by another tool stop " +
        "half-way? `echo 1 > file` empties the file first); write it with " +
        "`maintenance on` / `maintenance off`, or put 0 or 1 in it";
      break;
    default:
      fix = String((e as Error)?.message ?? e);
  }
  return new StoreError(`${what}: ${fix}`, code, { cause: e });
}

let counter = 0;

/** A temporary file this much older than the state file was left by a writer that died
 * before its rename. */
const STALE_TEMP_MS = 10 * 60_000;

/** The temporary files `#write` makes: `.<name>.<pid>-<time>-<n>-<random>.tmp`. */
const TEMP_RE = /^[0-9]+-[0-9a-z]+-[0-9a-z]+-[0-9a-z]*\.tmp$/;

/** The largest state file read, in bytes (as `parseState` accepts at most 64 KiB). */
const MAX_STATE_BYTES = 65_536;

/**
 * Keeps the state in one local file. Reads of a missing file mean off; writes go to a
 * temporary file in the same directory, flushed, then renamed over the state file, so a
 * reader (or a crash) sees the old state or the new one, never half of one.
 *
 * @example
 * ```ts
 * import { createMaintenance, FileStore } from "@x/maintenance";
 * const mm = createMaintenance({ store: new FileStore("maintenance_mode_state.txt") });
 * await mm.enable({ message: "Back at 14:00" });
 * ```
 */
export class FileStore implements StateStore {
  /** The state file's path, as given. */
  readonly path: string;
  /** The path, for messages. */
  readonly description: string;
  #fs: FsAdapter;
  /** The tail of this store's writes, which run one at a time. */
  #queue: Promise<void> = Promise.resolve();
  /** Whether this store has looked for temporary files left by killed writers. */
  #swept = false;

  /** A store for the file at `path` (default `maintenance_mode_state.txt`). */
  constructor(path: string = DEFAULT_STATE_FILE, fs: FsAdapter = detectFs()) {
    if (typeof path !== "string" || path.trim() === "") {
      throw new TypeError(
        "FileStore needs a file path, such as 'maintenance_mode_state.txt'",
      );
    }
    if (path.endsWith("/") || path.endsWith("\\")) {
      throw new TypeError(
        `FileStore path "${path}" ends with a slash; give a file path`,
      );
    }
    this.path = path;
    this.description = path;
    this.#fs = fs;
  }

  /**
   * The file's text, or `null` when the file does not exist. Rejects with a
   * {@linkcode StoreError} when the file cannot be read, is a directory, is larger than
   * 64 KiB (only that much is read), or is empty (a state is never empty; an empty file
   * is most likely a write by another tool caught half-way).
   */
  async read(signal?: AbortSignal): Promise<string | null> {
    let text: string | null;
    try {
      text = await this.#fs.readText(this.path, signal, MAX_STATE_BYTES);
    } catch (e) {
      throw explain(this.path, "read", e);
    }
    if (text !== null && text.length > MAX_STATE_BYTES) {
      // An adapter that does not bound its reads.
      throw explain(this.path, "read", codeError("EFBIG"));
    }
    if (text !== null && text.trim() === "") {
      throw explain(this.path, "read", codeError("EMPTY"));
    }
    return text;
  }

  /**
   * Replaces the file's text atomically (temp file + rename). Writes through one store
   * land in the order they were made, so the last one called is the one that stays. When
   * the path is a symbolic link, the file it points to is replaced (the temp file goes
   * next to it), and the link stays, as a plain write through the link would do.
   */
  write(text: string): Promise<void> {
    const done = this.#queue.then(() => this.#write(text));
    // The next write waits for this one, whether it succeeds or fails.
    this.#queue = done.catch(() => {});
    return done;
  }

  async #write(text: string): Promise<void> {
    // A symbolic link is written through, to the file it points to (a shared mount, a
    // deploy's current/ directory): renaming over the link itself would leave every
    // reader of that file on the old state.
    let target: string;
    try {
      target = this.#fs.resolve === undefined
        ? this.path
        : await this.#fs.resolve(this.path);
    } catch (e) {
      throw explain(this.path, "write", e);
    }
    const tmp = `${dirname(target)}/.${basename(target)}.${
      (globalThis as { process?: { pid?: number } }).process?.pid ?? 0
    }-${Date.now().toString(36)}-${(counter++).toString(36)}-${
      Math.random().toString(36).slice(2, 8)
    }.tmp`;
    try {
      await this.#fs.writeNew(tmp, text);
      await this.#fs.rename(tmp, target);
    } catch (e) {
      await this.#fs.remove(tmp).catch(() => {});
      throw explain(this.path, "write", e, target);
    }
    if (!this.#swept) {
      this.#swept = true;
      // Tidying only, after the state is written: never awaited, never an error.
      this.#sweep(target).catch(() => {});
    }
  }

  /**
   * Removes this file's temporary files that are 10 minutes older than the state file
   * itself: a writer killed between its write and its rename leaves one behind. Ages
   * are measured on the file system's clock (the state file was just written), so a
   * shared mount with a clock of its own cannot make a writer at work look old. Once
   * per store, after its first write.
   */
  async #sweep(target: string): Promise<void> {
    const list = this.#fs.list;
    if (list === undefined) return;
    const dir = dirname(target);
    const name = basename(target);
    const prefix = `.${name}.`;
    const files = await list.call(
      this.#fs,
      dir,
      (n) => n === name || n.startsWith(prefix),
    );
    const written = files.find((f) => f.name === name)?.mtimeMs;
    if (written === undefined) return;
    for (const f of files) {
      if (
        f.name !== name && f.mtimeMs < written - STALE_TEMP_MS &&
        TEMP_RE.test(f.name.slice(prefix.length))
      ) {
        await this.#fs.remove(`${dir}/${f.name}`).catch(() => {});
      }
    }
  }
}
