/**
 * Store faults under heavy load (deno task test:stress): the numbers, a 30 s
 * run at 64 connections per scenario; shorten with STRESS_SECONDS / STRESS_CONNECTIONS
 * while developing. See tests/fault_scenarios.ts for what each scenario checks.
 */
import { describe, it } from "node:test";
import process from "node:process";
import {
  redisDownScenario,
  s3ProxyFaultScenario,
  s3StopStartScenario,
} from "../fault_scenarios.ts";

const seconds = Number(process.env.STRESS_SECONDS ?? 30);
const connections = Number(process.env.STRESS_CONNECTIONS ?? 64);
const size = `${seconds} s, ${connections} connections`;

describe("stress: store faults under load", () => {
  it(`S3 stopped mid-run and started again (${size})`, async () => {
    console.log(JSON.stringify(
      await s3StopStartScenario({ seconds, connections }),
    ));
  });

  it(`S3 hangs 5 s, answers 500, then AccessDenied (${size})`, async () => {
    console.log(JSON.stringify(
      await s3ProxyFaultScenario({ seconds, connections }),
    ));
  });

  it(`Redis down and back (${size})`, async () => {
    console.log(JSON.stringify(
      await redisDownScenario({ seconds, connections }),
    ));
  });
});
