import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:net";
import {
  cleanEnv,
  makeTempDir,
  type ProcessResult,
  removeDir,
  type RunningProcess,
  runProcess,
  type Runtime,
  RUNTIMES,
  scriptCommand,
  sleep,
  startProcess,
} from "./helpers.ts";

/** Whether this machine can listen on the IPv6 loopback address. */
const ipv6 = await new Promise<boolean>((resolve) => {
  const server = createServer();
  server.once("error", () => resolve(false));
  server.listen(0, "::1", () => server.close(() => resolve(true)));
});

const TTL_MS = 300;
/** How long after the CLI returns the demo must answer with the new state. */
const BOUND_MS = TTL_MS + 250;

for (const runtime of RUNTIMES) {
  describe(`demo end to end under ${runtime} (scripts/demo.ts + main.ts)`, () => {
    let dir: string;
    let file: string;
    let demo: RunningProcess | undefined;
    let base: string;

    before(async () => {
      dir = await makeTempDir("maintenance-demo-");
      file = `${dir}/state.txt`;
      const [cmd, args] = scriptCommand(runtime, "scripts/demo.ts");
      demo = startProcess(cmd, args, {
        env: cleanEnv({
          // Port 0: the OS picks a free loopback port and the demo prints it, so no
          // other test on this machine can take it between choosing and binding.
          PORT: "0",
          MAINTENANCE_STATE_FILE: file,
          MAINTENANCE_CACHE_TTL_MS: String(TTL_MS),
        }),
      });
      const m = await demo.waitFor(
        /demo listening on (http:\/\/127\.0\.0\.1:(\d+)\/)/,
        30_000,
      );
      assert.ok(Number(m[2]) > 0, m[0]);
      base = m[1];
    });

    after(async () => {
      await demo?.stop();
      await removeDir(dir);
    });

    function cli(args: string[]): Promise<ProcessResult> {
      const [cmd, argv] = scriptCommand(runtime as Runtime, "main.ts", [
        ...args,
        "--file",
        file,
      ]);
      return runProcess(cmd, argv, { timeoutMs: 30_000 });
    }

    async function get(
      path: string,
      headers: Record<string, string> = {},
    ): Promise<{ status: number; body: string; headers: Headers }> {
      const res = await fetch(new URL(path, base), { headers });
      return {
        status: res.status,
        body: await res.text(),
        headers: res.headers,
      };
    }

    /** Polls `/` until it answers `status`; returns ms since `since`. */
    async function until(status: number, since: number): Promise<number> {
      const deadline = since + 5000;
      for (;;) {
        const r = await get("/");
        if (r.status === status) return performance.now() - since;
        if (performance.now() > deadline) {
          throw new Error(
            `/ still answers ${r.status}, not ${status}, 5 s after the CLI returned\n` +
              demo!.output(),
          );
        }
        await sleep(20);
      }
    }

    it("serves / and /healthz while off", async () => {
      const home = await get("/");
      assert.equal(home.status, 200);
      assert.match(home.body, /Hello from the demo app/);
      assert.equal((await get("/healthz")).status, 200);
    });

    it(`the CLI switches it on: / answers 503 within TTL + 250 ms, /healthz stays 200`, async () => {
      const r = await cli([
        "on",
        "--message",
        "Back <soon>",
        "--retry-after",
        "120",
      ]);
      assert.equal(r.code, 0, r.stderr);
      const ms = await until(503, performance.now());
      assert.ok(
        ms <= BOUND_MS,
        `took ${Math.round(ms)} ms (bound ${BOUND_MS})`,
      );

      const page = await get("/", { accept: "text/html" });
      assert.equal(page.status, 503);
      assert.equal(page.headers.get("retry-after"), "120");
      assert.equal(page.headers.get("cache-control"), "no-store");
      assert.match(page.body, /Back &lt;soon&gt;/);
      const json = await get("/", { accept: "application/json" });
      assert.equal(json.status, 503);
      assert.equal(JSON.parse(json.body).message, "Back <soon>");

      const health = await get("/healthz");
      assert.equal(health.status, 200);
      assert.equal(health.body, "ok");
    });

    it("the CLI switches it off: / answers 200 again within TTL + 250 ms", async () => {
      const r = await cli(["off"]);
      assert.equal(r.code, 0, r.stderr);
      const ms = await until(200, performance.now());
      assert.ok(
        ms <= BOUND_MS,
        `took ${Math.round(ms)} ms (bound ${BOUND_MS})`,
      );
      assert.equal((await get("/healthz")).status, 200);
    });

    it("says at start which state file it reads, and that the admin routes are not mounted and how to mount them", async () => {
      await demo!.waitFor(/^admin routes: /m, 5000);
      const out = demo!.output();
      assert.ok(out.includes(`state: state file ${file} (`), out);
      assert.match(
        out,
        /^admin routes: not mounted; to mount them at \/maintenance-mode, set MAINTENANCE_ADMIN_TOKEN to a token of at least 16 characters/m,
      );
      assert.equal((await get("/maintenance-mode")).status, 404);
    });

    it("with MAINTENANCE_ADMIN_TOKEN: says the admin routes are mounted, at a URL that answers", async () => {
      const token = "demo-token-0123456789abcdef";
      const [cmd, args] = scriptCommand(runtime, "scripts/demo.ts");
      const admin = startProcess(cmd, args, {
        env: cleanEnv({
          PORT: "0",
          MAINTENANCE_STATE_FILE: file,
          MAINTENANCE_ADMIN_TOKEN: token,
        }),
      });
      try {
        const m = await admin.waitFor(
          /^admin routes: mounted at (http:\/\/127\.0\.0\.1:\d+\/maintenance-mode) .*POST \/maintenance-mode\/on and \/maintenance-mode\/off.*Authorization: Bearer \$MAINTENANCE_ADMIN_TOKEN$/m,
          30_000,
        );
        assert.doesNotMatch(
          admin.output(),
          new RegExp(token),
          "no token printed",
        );
        const res = await fetch(m[1], {
          headers: { authorization: `Bearer ${token}` },
        });
        assert.equal(res.status, 200);
        assert.equal(typeof (await res.json()).enabled, "boolean");
        const refused = await fetch(m[1]);
        await refused.body?.cancel();
        assert.equal(refused.status, 401);
      } finally {
        await admin.stop();
      }
    });

    it("a port in use: exits 2 naming PORT, no stack trace", async () => {
      const [cmd, args] = scriptCommand(runtime, "scripts/demo.ts");
      const r = await runProcess(cmd, args, {
        timeoutMs: 30_000,
        env: cleanEnv({
          PORT: new URL(base).port,
          MAINTENANCE_STATE_FILE: file,
        }),
      });
      assert.equal(r.code, 2, r.stdout + r.stderr);
      assert.match(
        r.stderr,
        /^error: port \d+ on 127\.0\.0\.1 is in use: .*set PORT .*PORT=0/m,
      );
      assert.doesNotMatch(r.stderr, /\bat .*demo\.ts:\d+/, "no stack trace");
    });

    it("HOST=::1 prints a URL that works: the IPv6 address in brackets", {
      skip: ipv6 ? false : "no IPv6 loopback on this machine",
    }, async () => {
      const [cmd, args] = scriptCommand(runtime, "scripts/demo.ts");
      const v6 = startProcess(cmd, args, {
        env: cleanEnv({
          HOST: "::1",
          PORT: "0",
          MAINTENANCE_STATE_FILE: file,
        }),
      });
      try {
        const m = await v6.waitFor(/demo listening on (\S+)/, 30_000);
        assert.match(m[1], /^http:\/\/\[::1\]:\d+\/$/);
        const res = await fetch(m[1]);
        assert.equal(res.status, 200);
        assert.match(await res.text(), /Hello from the demo app/);
      } finally {
        await v6.stop();
      }
    });
  });
}
