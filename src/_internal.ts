/**
 * What the optional entry points (`./admin`, `./guard`) and the CLI need from a
 * controller, kept off its public face: its cache, bypass cookie, clock and writer.
 */
import type { BypassHandler } from "./_bypass.ts";
import type { StateCache } from "./_cache.ts";
import type { MaintenanceState } from "./_state.ts";

/** A controller's internals. */
export interface Internals {
  /** The read-through cache over the store. */
  readonly cache: StateCache;
  /** The secret bypass (`/<secret>` and its cookie), if the controller has one. */
  readonly bypass?: BypassHandler;
  /** Clock, ms since epoch. */
  readonly now: () => number;
  /** Told once per failure streak. */
  readonly onError: (error: Error) => void;
  /** Writes a whole state, in call order with every other write. */
  readonly setState: (state: MaintenanceState) => Promise<MaintenanceState>;
}

const registry = new WeakMap<object, Internals>();

/** Files a controller's internals; `createMaintenance()` calls it. */
export function register(mm: object, internals: Internals): void {
  registry.set(mm, internals);
}

/** The internals of `mm`; a `TypeError` for anything `createMaintenance()` did not make. */
export function internals(mm: unknown, who: string): Internals {
  const found = typeof mm === "object" && mm !== null
    ? registry.get(mm)
    : undefined;
  if (found === undefined) {
    throw new TypeError(
      `${who} takes the controller createMaintenance() returns, e.g. ${who}(mm, ...)`,
    );
  }
  return found;
}
