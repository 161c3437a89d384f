import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { currentRuntime, runProcess, scriptCommand } from "./helpers.ts";

/**
 * `scripts/bench.ts --quick --json` under the runtime running the tests: every part
 * runs briefly (in process, HTTP with fetch() as the load, store reads against
 * s3rver, propagation to two demo processes over a state file), and the last line is
 * one JSON object of the documented shape. The figures of a quick run mean nothing;
 * only their presence and consistency are checked.
 */
describe("bench --quick --json", () => {
  it("runs every part and ends with one JSON line of the documented shape", async () => {
    const rt = currentRuntime();
    const [cmd, args] = scriptCommand(rt, "scripts/bench.ts", [
      "--quick",
      "--json",
    ]);
    const r = await runProcess(cmd, args, { timeoutMs: 90_000 });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const lines = r.stdout.trim().split("\n");
    assert.ok(lines.length > 5, "a readable table comes first");
    assert.match(r.stdout, /In process/);
    const out = JSON.parse(lines[lines.length - 1]);

    assert.equal(out.runtime, rt);
    assert.equal(out.quick, true);
    const numbers = (obj: Record<string, unknown>, keys: string[]) => {
      for (const k of keys) {
        assert.equal(typeof obj[k], "number", `${k}: ${JSON.stringify(obj)}`);
        assert.ok(Number.isFinite(obj[k] as number), k);
      }
    };
    const ip = out.inprocess;
    numbers(ip, [
      "bare_rps",
      "noop_rps",
      "off_rps",
      "on_rps",
      "noop_page_rps",
      "guard_rps",
      "off_ratio",
      "on_ratio",
      "guard_ratio",
    ]);
    const near = (a: number, b: number, what: string) =>
      assert.ok(
        Math.abs(a - b) <= 0.002 * Math.max(1, b),
        `${what}: ${a} vs ${b}`,
      );
    near(ip.off_ratio, ip.off_rps / ip.noop_rps, "off_ratio");
    near(ip.on_ratio, ip.on_rps / ip.noop_page_rps, "on_ratio");
    near(ip.guard_ratio, ip.guard_rps / ip.bare_rps, "guard_ratio");

    assert.equal(typeof out.http.tool, "string");
    numbers(out.http, ["noop_rps", "off_rps", "off_ratio"]);
    near(out.http.off_ratio, out.http.off_rps / out.http.noop_rps, "http");
    assert.equal(out.http.errors, 0);

    const st = out.store;
    numbers(st, [
      "requests",
      "concurrency",
      "ttl_ms",
      "duration_ms",
      "store_reads",
      "naive_store_reads",
    ]);
    assert.ok(st.store_reads >= 1, "the cached middleware read the store");
    assert.ok(
      st.naive_store_reads > st.store_reads,
      "the naive middleware reads more",
    );

    numbers(out.propagation, [
      "instances",
      "ttl_ms",
      "max_ms",
      "push_max_ms",
      "push_redis_reads",
    ]);
    assert.ok(out.propagation.instances >= 2);
    assert.ok(out.propagation.max_ms >= 0);

    for (const [name, g] of Object.entries(out.goals)) {
      assert.equal(typeof (g as { ok: unknown }).ok, "boolean", name);
    }
  });
});
