/**
 * The state in a local file, written atomically (a temporary file in the same directory,
 * then a rename), on Deno, Bun or Node.
 *
 * @module
 */
import * as fs from "./_fs.ts";
import { StoreError } from "./_store_error.ts";
import type { StateStore } from "./_types.ts";

/** The default state file, as django-maintenance-mode names it (the CLI's default too). */
export const DEFAULT_STATE_FILE = "maintenance_mode_state.txt";

/** The largest state file read, in bytes (`parseState` accepts at most 64 KiB). */
const MAX_STATE_BYTES = 65_536;

/** A temporary file this much older than the state file was left by a writer killed
 * before its rename. */
const STALE_TEMP_MS = 10 * 60_000;

/** What follows `.<name>.` in the temporary files `tempPath` makes. */
const TEMP_RE = /^[0-9]+-[0-9a-z]+-[0-9a-z]+-[0-9a-z]*\.tmp$/;

let counter = 0;

/** A new temporary file next to `target`: `.<name>.<pid>-<time>-<n>-<random>.tmp`. */
export function tempPath(target: string): string {
  const name = fs.basename(target);
  const pid = (globalThis as { process?: { pid?: number } }).process?.pid ?? 0;
  return `${fs.dirname(target)}/.${name}.${pid}-${Date.now().toString(36)}-${
    (counter++).toString(36)
  }-${Math.random().toString(36).slice(2, 8)}.tmp`;
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
  const written = files.find((f) => f.name === name)?.mtimeMs;
  const prefix = `.${name}.`;
  return written === undefined ? [] : files
    .filter((f) =>
      f.name.startsWith(prefix) && f.mtimeMs < written - STALE_TEMP_MS &&
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
  const err = (e ?? {}) as { code?: unknown; name?: unknown };
  const dir = fs.dirname(target);
  const elsewhere =
    "choose another path (--file PATH or MAINTENANCE_STATE_FILE)";
  let code = typeof err.code === "string" ? err.code : "EIO";
  let fix: string;
  if (err.name === "NotCapable") {
    // Deno's permission flags, not the file's mode: chmod would not help.
    code = "EACCES";
    fix = op === "read"
      ? `permission denied by Deno; run it with --allow-read=${target}`
      : `permission denied by Deno; run it with --allow-read=${dir} --allow-write=${dir} ` +
        "(a write makes a temporary file there, then renames it)";
  } else if (err.name === "AbortError" || err.name === "TimeoutError") {
    code = "TIMEOUT";
    fix = "the read was cancelled or timed out";
  } else {
    switch (code) {
      case "ENOENT":
        fix = `directory ${dir} does not exist; create it, or ${elsewhere}`;
        break;
      case "EACCES":
      case "EPERM":
        fix = op === "read"
          ? "permission denied; let this user read the file (chmod/chown), or choose another path"
          : `permission denied; let this user write to ${dir} (chmod/chown), or ${elsewhere}`;
        break;
      case "EISDIR":
        fix = "it is a directory; remove it or point the store at a file path";
        break;
      case "ENOTDIR":
        fix =
          `a part of ${dir} is a file, not a directory; choose another path`;
        break;
      case "EROFS":
        fix = "the file system is read-only; choose a writable path";
        break;
      case "ENOSPC":
        fix = "the disk is full; free space, the old state is unchanged";
        break;
      case "EFBIG":
        fix =
          `it is larger than ${MAX_STATE_BYTES / 1024} KiB, so it is not a ` +
          "maintenance state (a state is one short line); point the store at the right " +
          "file, or replace it with `maintenance on` / `maintenance off`";
        break;
      case "EMPTY":
        fix =
          "the file is empty, which is not a state (did a write by another tool " +
          "stop half-way? `echo 1 > file` empties the file first); write it with " +
          "`maintenance on` / `maintenance off`, or put 0 or 1 in it";
        break;
      default:
        fix = String((e as Error)?.message ?? e);
    }
  }
  const link = target !== path ? ` (a symbolic link to ${target})` : "";
  return new StoreError(
    `cannot ${op} maintenance state file ${path}${link}: ${fix}`,
    code,
    { cause: e },
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
    this.description = fs.absolute(path);
  }

  /**
   * The file's text, or `null` when the file does not exist. Rejects with a
   * {@linkcode StoreError} when the file cannot be read, is a directory, is larger than
   * 64 KiB (no more is read), or is empty (a state never is: an empty file is most
   * likely a write by another tool caught half-way).
   */
  async read(signal?: AbortSignal): Promise<string | null> {
    let text: string | null;
    try {
      text = await fs.readText(this.description, MAX_STATE_BYTES, signal);
    } catch (e) {
      throw explain(this.description, "read", e);
    }
    if (text?.trim() === "") {
      throw explain(this.description, "read", fs.codeError("EMPTY"));
    }
    return text;
  }

  /** Replaces the file's text atomically (temporary file + rename). */
  async write(text: string): Promise<void> {
    const path = this.description;
    let target = path;
    try {
      // Through a symbolic link (a shared mount, a deploy's current/ directory): a
      // rename over the link itself would leave every reader of that file behind.
      target = await fs.resolve(path);
      await fs.replace(target, tempPath(target), text);
    } catch (e) {
      throw explain(path, "write", e, target);
    }
    if (!this.#swept) {
      this.#swept = true;
      // Tidying, once per store, after its first write: never awaited, never an error.
      const dir = fs.dirname(target);
      const name = fs.basename(target);
      fs.list(dir, (n) => n === name || n.startsWith(`.${name}.`))
        .then((files) =>
          Promise.all(
            staleTemps(files, name).map((n) => fs.remove(`${dir}/${n}`)),
          )
        )
        .catch(() => {});
    }
  }
}
