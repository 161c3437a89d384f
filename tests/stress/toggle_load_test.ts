/**
 * State flips every 100 ms under heavy load (deno task test:stress): a 30 s run at 64
 * connections; shorten with STRESS_SECONDS / STRESS_CONNECTIONS while developing. Only
 * 200 and 503, no 5xx, no connection error (tests/fault_scenarios.ts toggleScenario).
 */
import { describe, it } from "node:test";
import process from "node:process";
import { toggleScenario } from "../fault_scenarios.ts";

const seconds = Number(process.env.STRESS_SECONDS ?? 30);
const connections = Number(process.env.STRESS_CONNECTIONS ?? 64);

describe("stress: toggles under load", () => {
  it(`the state flips every 100 ms (${seconds} s, ${connections} connections)`, async () => {
    console.log(JSON.stringify(await toggleScenario({ seconds, connections })));
  });
});
