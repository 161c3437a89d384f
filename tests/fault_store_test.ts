/**
 * Store faults under load (short versions; the 30 s / 64-connection runs are in
 * tests/stress/store_faults_test.ts): S3 stopped and started again, S3 hanging and
 * answering 500 / AccessDenied (through the fault-injecting proxy, since s3rver cannot be
 * made to do that), and the shared Redis cache going away. Real s3rver, redis-server and
 * HTTP server on 127.0.0.1; see tests/fault_scenarios.ts for what each checks.
 */
import { describe, it } from "node:test";
import {
  redisDownScenario,
  s3ProxyFaultScenario,
  s3StopStartScenario,
} from "./fault_scenarios.ts";

describe("store faults under load", () => {
  it("S3 stopped mid-run and started again: last state served, new state picked up", async () => {
    await s3StopStartScenario({ seconds: 4, connections: 8 });
  });

  it("S3 hangs 5 s, answers 500, then AccessDenied: answers stay within timeout + 100 ms", async () => {
    await s3ProxyFaultScenario({ seconds: 3, connections: 8 });
  });

  it("Redis down: falls back to the store, and uses the cache again when it is back", async () => {
    await redisDownScenario({ seconds: 3, connections: 8 });
  });
});
