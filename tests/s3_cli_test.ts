// The CLI (main.ts) and the demo (scripts/demo.ts) as subprocesses, configured only by
// the environment, against a real s3rver and redis-server. Under `deno test` they run on
// Deno (with the permissions of `deno task maintenance`), under `bun test` on Bun, so
// the whole suite covers both.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { S3Client } from "@aws-sdk/client-s3";
import { createClient } from "redis";
import { S3Store } from "../stores/s3.ts";
import { verifySecret } from "../src/_bypass.ts";
import { cleanEnv } from "./helpers.ts";
import {
  freePort,
  type RedisHandle,
  s3ClientFor,
  type S3rverHandle,
  startCountingProxy,
  startRedis,
  startS3rver,
} from "../scripts/test_servers.ts";

const BUCKET = "maintenance";
const ROOT = new URL("..", import.meta.url).pathname;
const ON_BUN = "Bun" in globalThis;
const PERMISSIONS = [
  "--allow-net",
  "--allow-env",
  "--allow-read",
  "--allow-write",
  "--allow-sys",
];
const CLI = ON_BUN
  ? ["bun", "main.ts"]
  : ["deno", "run", ...PERMISSIONS, "main.ts"];
const DEMO = ON_BUN
  ? ["bun", "scripts/demo.ts"]
  : ["deno", "run", ...PERMISSIONS, "scripts/demo.ts"];

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs `argv` in the repository with `env`; kills it after `timeoutMs`. */
function run(
  argv: string[],
  env: Record<string, string>,
  timeoutMs = 30_000,
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn(argv[0], argv.slice(1), {
      cwd: ROOT,
      env: cleanEnv(env),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Uint8Array) => stdout += String(d));
    child.stderr.on("data", (d: Uint8Array) => stderr += String(d));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: performance.now() - start });
    });
  });
}

function cli(
  args: string[],
  env: Record<string, string>,
  timeoutMs?: number,
): Promise<Run> {
  return run([...CLI, ...args], env, timeoutMs);
}

/** Runs `jobs` at most `limit` at a time (a 2-core box does not like 15 runtimes at once). */
async function pool<T>(
  jobs: (() => Promise<T>)[],
  limit = 4,
): Promise<T[]> {
  const results: T[] = new Array(jobs.length);
  let next = 0;
  async function worker(): Promise<void> {
    while (next < jobs.length) {
      const i = next++;
      results[i] = await jobs[i]();
    }
  }
  await Promise.all(Array.from({ length: limit }, worker));
  return results;
}

function show(r: Run): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

describe(`CLI with S3 from the environment (${ON_BUN ? "bun" : "deno"}, s3rver)`, () => {
  let s3: S3rverHandle | undefined;
  let redis: RedisHandle | undefined;
  let client: S3Client;
  let dir: string;

  before(async () => {
    [s3, redis] = await Promise.all([
      startS3rver({ bucket: BUCKET }),
      startRedis(),
    ]);
    client = s3ClientFor(s3.endpoint);
    dir = mkdtempSync(join(tmpdir(), "x-maintenance-cli-"));
  });
  after(async () => {
    client?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
    await Promise.all([s3?.stop(), redis?.stop()]);
  });

  function s3Env(key: string): Record<string, string> {
    return {
      MAINTENANCE_S3_URL: `s3://${BUCKET}/${key}`,
      MAINTENANCE_S3_ENDPOINT: s3!.endpoint,
      AWS_ACCESS_KEY_ID: "S3RVER",
      AWS_SECRET_ACCESS_KEY: "S3RVER",
    };
  }

  async function object(key: string): Promise<string | null> {
    return await new S3Store({ bucket: BUCKET, key, client }).read();
  }

  it("switches on, reports the status and switches off", async () => {
    const key = "cli/on-off.json";
    const env = s3Env(key);
    // before the first write: the object does not exist, and that reads as OFF
    let r = await cli(["status", "--exit-code"], env);
    assert.equal(r.code, 0, show(r));
    assert.equal(
      r.stdout,
      `maintenance mode is OFF: no S3 object exists at s3://${BUCKET}/${key} ` +
        "(a missing S3 object reads as OFF)\n",
    );
    r = await cli(
      ["on", "-m", "Back at 14:00", "--retry-after", "600"],
      env,
    );
    assert.equal(r.code, 0, show(r));
    assert.match(r.stdout, /maintenance mode is ON/);
    assert.match(r.stdout, new RegExp(`\\(S3 object s3://${BUCKET}/${key}\\)`));
    r = await cli(["status", "--exit-code"], env);
    assert.equal(r.code, 3, show(r));
    const written = JSON.parse((await object(key))!);
    assert.equal(written.enabled, true);
    assert.equal(written.message, "Back at 14:00");
    assert.equal(written.retryAfter, 600);

    r = await cli(["status", "--json"], env);
    assert.equal(r.code, 0, show(r));
    const status = JSON.parse(r.stdout);
    assert.equal(status.enabled, true);
    assert.equal(status.store, `s3://${BUCKET}/${key}`);
    assert.equal(status.state.message, "Back at 14:00");

    r = await cli(["off", "--json"], env);
    assert.equal(r.code, 0, show(r));
    assert.deepEqual(
      { ...JSON.parse(r.stdout), state: undefined },
      {
        enabled: false,
        readOnly: false,
        bypass: false,
        state: undefined,
        store: `s3://${BUCKET}/${key}`,
        exists: true,
      },
    );
    assert.equal(JSON.parse((await object(key))!).enabled, false);
    r = await cli(["status"], env);
    assert.equal(r.code, 0, show(r));
    assert.match(r.stdout, /^maintenance mode is OFF/);
  });

  it("takes --s3 and --file over MAINTENANCE_S3_URL", async () => {
    const env = s3Env("cli/from-env.json");
    let r = await cli(["on", "--s3", `s3://${BUCKET}/cli/from-flag.json`], env);
    assert.equal(r.code, 0, show(r));
    assert.equal(
      JSON.parse((await object("cli/from-flag.json"))!).enabled,
      true,
    );
    assert.equal(await object("cli/from-env.json"), null);

    const file = join(dir, "state.txt");
    r = await cli(["on", "--file", file], env);
    assert.equal(r.code, 0, show(r));
    assert.equal(JSON.parse(readFileSync(file, "utf8")).enabled, true);
    assert.equal(await object("cli/from-env.json"), null);
  });

  it("exits 2 naming the variable when a setting is bad or half given, writing nothing", async () => {
    const key = "cli/untouched.json";
    const good = s3Env(key);
    const { AWS_ACCESS_KEY_ID: _k, AWS_SECRET_ACCESS_KEY: _s, ...noKeys } =
      good;
    const cases: [string, string[], Record<string, string>, RegExp][] = [
      ["URL not s3://", ["on"], {
        ...good,
        MAINTENANCE_S3_URL: `https://${BUCKET}/x`,
      }, /MAINTENANCE_S3_URL.*s3:\/\//],
      ["bad bucket name", ["on"], {
        ...good,
        MAINTENANCE_S3_URL: "s3://a/x",
      }, /MAINTENANCE_S3_URL.*bucket/],
      ["bad --s3", ["on", "--s3", "s3:///x"], good, /--s3.*bucket/],
      ["endpoint not a URL", ["on"], {
        ...good,
        MAINTENANCE_S3_ENDPOINT: "127.0.0.1:9000",
      }, /MAINTENANCE_S3_ENDPOINT.*http/],
      ["endpoint not http(s)", ["on"], {
        ...good,
        MAINTENANCE_S3_ENDPOINT: "ftp://127.0.0.1:9000",
      }, /MAINTENANCE_S3_ENDPOINT/],
      ["endpoint without URL", ["on"], {
        MAINTENANCE_S3_ENDPOINT: s3!.endpoint,
      }, /MAINTENANCE_S3_ENDPOINT is set but MAINTENANCE_S3_URL is not/],
      ["key id without secret", ["on"], {
        ...noKeys,
        AWS_ACCESS_KEY_ID: "S3RVER",
      }, /AWS_SECRET_ACCESS_KEY is not/],
      ["secret without key id", ["on"], {
        ...noKeys,
        AWS_SECRET_ACCESS_KEY: "S3RVER",
      }, /AWS_ACCESS_KEY_ID is not/],
      ["session token alone", ["on"], {
        ...noKeys,
        AWS_SESSION_TOKEN: "token",
      }, /AWS_SESSION_TOKEN is set/],
      ["bad region", ["on"], {
        ...good,
        AWS_REGION: "eu west 1",
      }, /AWS_REGION.*region name/],
      ["bad timeout", ["on"], {
        ...good,
        MAINTENANCE_S3_TIMEOUT_MS: "1s",
      }, /MAINTENANCE_S3_TIMEOUT_MS/],
      ["S3 and file both", ["on"], {
        ...good,
        MAINTENANCE_STATE_FILE: join(dir, "both.txt"),
      }, /MAINTENANCE_S3_URL and MAINTENANCE_STATE_FILE are both set/],
      ["Redis URL not redis://", ["on"], {
        ...good,
        MAINTENANCE_REDIS_URL: "http://127.0.0.1:6379",
      }, /MAINTENANCE_REDIS_URL must look like redis:\/\//],
      ["bad cache TTL", ["on"], {
        ...good,
        MAINTENANCE_CACHE_TTL_MS: "soon",
      }, /MAINTENANCE_CACHE_TTL_MS/],
    ];
    const results = await pool(
      cases.map(([, args, env]) => () => cli(args, env)),
    );
    results.forEach((r, i) => {
      const [name, , , message] = cases[i];
      assert.equal(r.code, 2, `${name}: ${show(r)}`);
      assert.match(r.stderr, /^error: /, name);
      assert.match(r.stderr.split("\n")[0], message, `${name}: ${r.stderr}`);
      assert.equal(r.stdout, "", name);
    });
    assert.equal(await object(key), null, "nothing was written");
  });

  it("exits 1 when S3 is down, saying why, within the timeouts", async () => {
    const port = await freePort();
    const env = {
      ...s3Env("cli/down.json"),
      MAINTENANCE_S3_ENDPOINT: `http://127.0.0.1:${port}`,
    };
    const [on, status] = await Promise.all([
      cli(["on"], env, 20_000),
      cli(["status"], env, 20_000),
    ]);
    for (const r of [on, status]) {
      assert.equal(r.code, 1, show(r));
      assert.match(r.stderr, /cannot (write|read) maintenance state/);
      assert.match(r.stderr, /cannot connect to the S3 endpoint/);
      assert.ok(r.ms < 15_000, `took ${r.ms} ms`);
    }
  });

  it("on an S3 timeout, names MAINTENANCE_S3_TIMEOUT_MS and says a write may still land", async () => {
    const proxy = await startCountingProxy(s3!.endpoint);
    proxy.mode = "hang";
    proxy.hangMs = 3000;
    try {
      const env = {
        ...s3Env("cli/slow.json"),
        MAINTENANCE_S3_ENDPOINT: proxy.url,
        MAINTENANCE_S3_TIMEOUT_MS: "500",
      };
      const [on, status] = await Promise.all([
        cli(["on"], env, 20_000),
        cli(["status"], env, 20_000),
      ]);
      for (const r of [on, status]) {
        assert.equal(r.code, 1, show(r));
        assert.match(r.stderr, /did not answer within 500 ms/);
        assert.match(
          r.stderr,
          /for this command: MAINTENANCE_S3_TIMEOUT_MS, now 500/,
        );
      }
      assert.match(
        on.stderr,
        /may still have landed: read the state to see \(for this command: MAINTENANCE_S3_TIMEOUT_MS, now \d+\); check with `maintenance status`/,
      );
      assert.doesNotMatch(status.stderr, /may still/);
    } finally {
      await proxy.stop();
    }
  });

  it("exits 1 naming AWS_REGION when AWS S3 has no region", async () => {
    const { MAINTENANCE_S3_ENDPOINT: _e, ...env } = s3Env("cli/region.json");
    const r = await cli(["status"], env);
    assert.equal(r.code, 1, show(r));
    assert.match(r.stderr, /AWS_REGION/);
  });

  it("deletes the shared Redis cache key after a write (MAINTENANCE_REDIS_URL)", async () => {
    const redisClient = createClient({ url: redis!.url });
    await redisClient.connect();
    try {
      const key = "cli/redis.json";
      await redisClient.set("maintenance_mode_state", '{"enabled":false}', {
        EX: 600,
      });
      await redisClient.set("app1:mm", "0", { EX: 600 });
      let r = await cli(["on"], {
        ...s3Env(key),
        MAINTENANCE_REDIS_URL: redis!.url,
      });
      assert.equal(r.code, 0, show(r));
      assert.equal(await redisClient.get("maintenance_mode_state"), null);
      assert.equal(await redisClient.get("app1:mm"), "0");

      r = await cli(["off"], {
        ...s3Env(key),
        MAINTENANCE_REDIS_URL: redis!.url,
        MAINTENANCE_CACHE_KEY: "app1:mm",
      });
      assert.equal(r.code, 0, show(r));
      assert.equal(await redisClient.get("app1:mm"), null);

      // status only reads: the cache is left alone.
      await redisClient.set("maintenance_mode_state", "0", { EX: 600 });
      r = await cli(["status"], {
        ...s3Env(key),
        MAINTENANCE_REDIS_URL: redis!.url,
      });
      assert.equal(r.code, 0, show(r));
      assert.equal(await redisClient.get("maintenance_mode_state"), "0");
    } finally {
      await redisClient.close();
    }
  });

  it("deletes the key again after a server's in-flight read put the old state back", async () => {
    const redisClient = createClient({ url: redis!.url });
    await redisClient.connect();
    try {
      await redisClient.set("late:mm", '{"enabled":false}', { EX: 600 });
      const cliRun = cli(["on"], {
        ...s3Env("cli/redis-late.json"),
        MAINTENANCE_REDIS_URL: redis!.url,
        MAINTENANCE_CACHE_KEY: "late:mm",
      });
      // Play a server whose S3 read began before the write and ends after the delete.
      const deadline = performance.now() + 20_000;
      while (await redisClient.get("late:mm") !== null) {
        assert.ok(
          performance.now() < deadline,
          "the CLI never deleted the key",
        );
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      await redisClient.set("late:mm", '{"enabled":false}', { EX: 600 });
      const r = await cliRun;
      assert.equal(r.code, 0, show(r));
      assert.equal(await redisClient.get("late:mm"), null);
    } finally {
      await redisClient.close();
    }
  });

  it("exits within its timeouts when Redis takes the connection but does not answer DEL", async () => {
    // CLIENT PAUSE WRITE: the handshake is answered, DEL waits, as with a Redis that is
    // stuck. The CLI must give up after its 2 s bound, not wait for the reply.
    const admin = createClient({ url: redis!.url });
    await admin.connect();
    try {
      await admin.sendCommand(["CLIENT", "PAUSE", "25000", "WRITE"]);
      const key = "cli/redis-stuck.json";
      const r = await cli(["on"], {
        ...s3Env(key),
        MAINTENANCE_REDIS_URL: redis!.url,
      }, 40_000);
      assert.equal(r.code, 1, show(r));
      assert.ok(r.ms < 12_000, `took ${Math.round(r.ms)} ms\n${show(r)}`);
      assert.match(r.stderr, /the state was written/);
      assert.match(r.stderr, /DEL maintenance_mode_state did not finish/);
      assert.match(r.stdout, /maintenance mode is ON/);
      assert.equal(JSON.parse((await object(key))!).enabled, true);
    } finally {
      await admin.sendCommand(["CLIENT", "UNPAUSE"]);
      await admin.close();
    }
  });

  it("prints a generated secret even when Redis then fails: the state holds it", async () => {
    const port = await freePort();
    const key = "cli/redis-down-secret.json";
    const r = await cli(["on", "--with-secret"], {
      ...s3Env(key),
      MAINTENANCE_REDIS_URL: `redis://127.0.0.1:${port}`,
    }, 20_000);
    assert.equal(r.code, 1, show(r));
    assert.match(r.stderr, /the state was written/);
    const secret = /bypass secret \(shown once, not stored\): (\S+)/.exec(
      r.stdout,
    )?.[1];
    assert.ok(secret, show(r));
    const stored = JSON.parse((await object(key))!);
    assert.equal(await verifySecret(secret, stored.bypass), true);
  });

  it("exits 1 when Redis is unreachable, saying the state was written", async () => {
    const port = await freePort();
    const key = "cli/redis-down.json";
    const r = await cli(["on"], {
      ...s3Env(key),
      MAINTENANCE_REDIS_URL: `redis://:secret-password@127.0.0.1:${port}`,
    }, 20_000);
    assert.equal(r.code, 1, show(r));
    assert.match(r.stderr, /the state was written/);
    assert.match(r.stderr, /MAINTENANCE_REDIS_URL/);
    assert.match(r.stderr, /redis-cli DEL maintenance_mode_state/);
    assert.doesNotMatch(r.stderr, /secret-password/, "no password in messages");
    assert.equal(JSON.parse((await object(key))!).enabled, true);
  });
});

describe(`demo with bad settings (${ON_BUN ? "bun" : "deno"})`, () => {
  it("exits 2 naming the variable", async () => {
    const closed = await freePort();
    const s3 = {
      MAINTENANCE_S3_URL: `s3://${BUCKET}/demo.json`,
      MAINTENANCE_S3_ENDPOINT: "http://127.0.0.1:9",
      AWS_ACCESS_KEY_ID: "S3RVER",
      AWS_SECRET_ACCESS_KEY: "S3RVER",
    };
    const cases: [Record<string, string>, RegExp][] = [
      [{ PORT: "99999" }, /^error: PORT must be a whole number/],
      [
        { PORT: "0", MAINTENANCE_CACHE_TTL_MS: "-5" },
        /MAINTENANCE_CACHE_TTL_MS/,
      ],
      [{ PORT: "0", ...s3, MAINTENANCE_S3_URL: "s3:/x" }, /MAINTENANCE_S3_URL/],
      [
        { PORT: "0", ...s3, MAINTENANCE_S3_ENDPOINT: "localhost" },
        /MAINTENANCE_S3_ENDPOINT/,
      ],
      [
        { PORT: "0", ...s3, AWS_SECRET_ACCESS_KEY: "" },
        /AWS_SECRET_ACCESS_KEY is not/,
      ],
      [
        { PORT: "0", ...s3, MAINTENANCE_REDIS_URL: "127.0.0.1:6379" },
        /MAINTENANCE_REDIS_URL must look like/,
      ],
      [
        {
          PORT: "0",
          ...s3,
          MAINTENANCE_REDIS_URL: `redis://127.0.0.1:${closed}`,
        },
        /MAINTENANCE_REDIS_URL: cannot connect to redis:\/\/127\.0\.0\.1/,
      ],
    ];
    const results = await pool(
      cases.map(([env]) => () => run(DEMO, env, 20_000)),
    );
    results.forEach((r, i) => {
      const [env, message] = cases[i];
      const name = JSON.stringify(env);
      assert.equal(r.code, 2, `${name}: ${show(r)}`);
      assert.match(r.stderr, message, `${name}: ${r.stderr}`);
      assert.doesNotMatch(r.stdout, /listening/, name);
    });
  });
});
