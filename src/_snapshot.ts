/**
 * A parsed state with its window as numbers, made once per state and shared by every
 * request that sees that state.
 *
 * @module
 */
import type { MaintenanceState } from "./_state.ts";

/**
 * One state as the hot path uses it: the window as epoch milliseconds, so deciding
 * whether it is active is two comparisons.
 *
 * @example
 * ```ts
 * import { isActive, toSnapshot } from "@x/maintenance";
 * const snap = toSnapshot({ enabled: true });
 * isActive(snap, Date.now()); // true
 * ```
 */
export interface Snapshot {
  /** The state as read. */
  readonly state: Readonly<MaintenanceState>;
  /**
   * The state without its `bypass` hash, which could mint a bypass cookie (when no
   * `cookieKey` is set): what handlers (`c.get("maintenance").state`) and `render`
   * see.
   */
  readonly shown: Readonly<MaintenanceState>;
  /** `state.enabled`. */
  readonly enabled: boolean;
  /** `startsAt` in ms, or `-Infinity`. */
  readonly startsAtMs: number;
  /** `endsAt` in ms, or `Infinity`. */
  readonly endsAtMs: number;
}

/**
 * Makes the snapshot of a state.
 *
 * @example
 * ```ts
 * import { toSnapshot } from "@x/maintenance";
 * toSnapshot({ enabled: true, endsAt: "2030-01-01T00:00:00Z" }).endsAtMs;
 * ```
 */
export function toSnapshot(state: MaintenanceState): Snapshot {
  const frozen = Object.freeze({ ...state });
  let shown = frozen;
  if (state.bypass !== undefined) {
    const { bypass: _, ...rest } = state;
    shown = Object.freeze(rest);
  }
  return Object.freeze({
    state: frozen,
    shown,
    enabled: state.enabled,
    startsAtMs: state.startsAt ? Date.parse(state.startsAt) : -Infinity,
    endsAtMs: state.endsAt ? Date.parse(state.endsAt) : Infinity,
  });
}

/**
 * Whether a snapshot's state is in force at `now` (ms since epoch).
 *
 * @example
 * ```ts
 * import { isActive, toSnapshot } from "@x/maintenance";
 * isActive(toSnapshot({ enabled: false }), Date.now()); // false
 * ```
 */
export function isActive(snap: Snapshot, now: number): boolean {
  return snap.enabled && now >= snap.startsAtMs && now < snap.endsAtMs;
}
