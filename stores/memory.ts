/**
 * A state store in memory, for tests and single-process apps.
 *
 * @module
 */
import type { StateStore } from "./_types.ts";

/**
 * Keeps the state in memory; each instance is its own switch.
 *
 * @example
 * ```ts
 * import { createMaintenance, MemoryStore } from "@x/maintenance";
 * const mm = createMaintenance({ store: new MemoryStore() });
 * await mm.enable({ message: "Back soon" });
 * ```
 */
export class MemoryStore implements StateStore {
  #text: string | null;
  /** How many reads this store has served (for tests and benchmarks). */
  reads = 0;
  /** Always `"memory"`. */
  readonly description = "memory";

  /** Starts empty (off), or holding `initial`. */
  constructor(initial: string | null = null) {
    this.#text = initial;
  }

  /** Returns the stored text, or `null`. */
  read(): Promise<string | null> {
    this.reads++;
    return Promise.resolve(this.#text);
  }

  /** Replaces the stored text. */
  write(text: string): Promise<void> {
    this.#text = text;
    return Promise.resolve();
  }
}
