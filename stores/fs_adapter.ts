/**
 * The few file operations the file store needs, on Deno, Bun or Node.
 *
 * @module
 */
import * as nodeFs from "node:fs/promises";

/** File operations the file store uses; `readText` returns `null` when the file is absent. */
export interface FsAdapter {
  /** Which runtime's API this adapter uses. */
  readonly runtime: "deno" | "bun" | "node";
  /** The file's text, or `null` when it does not exist. */
  readText(path: string, signal?: AbortSignal): Promise<string | null>;
  /** Writes `text` to a new file `path` and flushes it to disk. */
  writeNew(path: string, text: string): Promise<void>;
  /** Renames `from` to `to`, replacing `to` atomically. */
  rename(from: string, to: string): Promise<void>;
  /** Removes a file, ignoring a missing one. */
  remove(path: string): Promise<void>;
}

interface DenoFs {
  readTextFile(path: string, options?: { signal?: AbortSignal }): Promise<string>;
  writeTextFile(path: string, data: string, options?: { createNew?: boolean }): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  remove(path: string): Promise<void>;
  errors: { NotFound: new (...args: never[]) => Error };
}

interface BunFs {
  file(path: string): { exists(): Promise<boolean>; text(): Promise<string> };
}

function isNotFound(e: unknown): boolean {
  return (e as { code?: string })?.code === "ENOENT";
}

function denoAdapter(deno: DenoFs): FsAdapter {
  return {
    runtime: "deno",
    async readText(path, signal) {
      try {
        return await deno.readTextFile(path, { signal });
      } catch (e) {
        if (e instanceof deno.errors.NotFound) return null;
        throw e;
      }
    },
    async writeNew(path, text) {
      // node:fs gives us fsync on the handle, which Deno.writeTextFile does not.
      const handle = await nodeFs.open(path, "wx", 0o644);
      try {
        await handle.writeFile(text, "utf8");
        await handle.sync();
      } finally {
        await handle.close();
      }
    },
    rename: (from, to) => deno.rename(from, to),
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
    async readText(path, signal) {
      try {
        if (bun) {
          // Bun.file().text() is Bun's fastest read; a missing file rejects with ENOENT.
          return await bun.file(path).text();
        }
        return await nodeFs.readFile(path, { encoding: "utf8", signal });
      } catch (e) {
        if (isNotFound(e)) return null;
        throw e;
      }
    },
    async writeNew(path, text) {
      const handle = await nodeFs.open(path, "wx", 0o644);
      try {
        await handle.writeFile(text, "utf8");
        await handle.sync();
      } finally {
        await handle.close();
      }
    },
    rename: (from, to) => nodeFs.rename(from, to),
    async remove(path) {
      try {
        await nodeFs.unlink(path);
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
 * import { detectFs } from "./fs_adapter.ts";
 * const fs = detectFs();
 * console.log(fs.runtime);
 * ```
 */
export function detectFs(): FsAdapter {
  const g = globalThis as { Deno?: DenoFs; Bun?: BunFs };
  if (g.Deno && typeof g.Deno.readTextFile === "function") return denoAdapter(g.Deno);
  if (g.Bun && typeof g.Bun.file === "function") return nodeAdapter("bun", g.Bun);
  return nodeAdapter("node");
}
