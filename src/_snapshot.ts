/** Moved into `./_state.ts`; this re-export goes once no module imports it. */
export { isActive, type Snapshot, toSnapshot } from "./_state.ts";
