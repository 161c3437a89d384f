/**
 * Issue 16 through real HTTP on the demo (scripts/demo.ts as a child process under
 * Deno and Bun, admin routes mounted by MAINTENANCE_ADMIN_TOKEN): read-only maintenance
 * switched by the admin routes (reads pass with the banner, writes get 503, exemptions
 * still apply), who and why (updatedBy, note: shown to operators, never to visitors),
 * `for` (an end by itself), and off with a note.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import {
  makeTempDir,
  removeDir,
  type RunningProcess,
  runProcess,
  RUNTIMES,
  scriptCommand,
  sleep,
  startDemo,
} from "./helpers.ts";

const TOKEN = "demo-readonly-token-0123456789abcdef";
const AUTH = { authorization: `Bearer ${TOKEN}` };
const NOTE = "migrating orders, ticket OPS-4242";

interface Answer {
  status: number;
  headers: Headers;
  body: string;
}

for (const runtime of RUNTIMES) {
  describe(`demo under ${runtime}: read-only, who and why, for (issue 16)`, () => {
    let dir: string;
    let file: string;
    let demo: RunningProcess | undefined;
    let base: string;

    before(async () => {
      dir = await makeTempDir("maintenance-demo-ro-");
      file = `${dir}/state.txt`;
      const started = await startDemo(runtime, {
        MAINTENANCE_STATE_FILE: file,
        MAINTENANCE_CACHE_TTL_MS: "300",
        MAINTENANCE_ADMIN_TOKEN: TOKEN,
      });
      demo = started.demo;
      base = started.url;
      await demo.waitFor(/^admin routes: mounted/m, 5000);
    });

    after(async () => {
      await demo?.stop();
      await removeDir(dir);
    });

    async function request(
      method: string,
      path: string,
      init: { headers?: Record<string, string>; body?: BodyInit } = {},
    ): Promise<Answer> {
      const res = await fetch(`${base}${path}`, {
        method,
        headers: init.headers,
        body: init.body,
        redirect: "manual",
      });
      return {
        status: res.status,
        headers: res.headers,
        body: await res.text(),
      };
    }

    /** An admin route (JSON body), answered as JSON. */
    async function admin(
      path: string,
      body?: unknown,
    ): Promise<{ status: number; json: Record<string, unknown> }> {
      const r = body === undefined
        ? await request(
          path === "" ? "GET" : "POST",
          `/maintenance-mode${path}`,
          {
            headers: AUTH,
          },
        )
        : await request("POST", `/maintenance-mode${path}`, {
          headers: { ...AUTH, "content-type": "application/json" },
          body: JSON.stringify(body),
        });
      return { status: r.status, json: JSON.parse(r.body) };
    }

    function sign(name: string, headers: Record<string, string> = {}) {
      return request("POST", "/guestbook", {
        headers,
        body: new URLSearchParams({ name, text: `hello from ${name}` }),
      });
    }

    async function stored(): Promise<Record<string, unknown>> {
      return JSON.parse(await readFile(file, "utf8"));
    }

    /** What OPTIONS / answers while maintenance is off (the app's own answer). */
    let optionsWhenOff: number;

    it("off: the page has the guestbook form, and a POST signs it", async () => {
      const page = await request("GET", "/");
      assert.equal(page.status, 200);
      assert.match(page.body, /Hello from the demo app/);
      assert.match(page.body, /<form method="post" action="\/guestbook">/);
      assert.doesNotMatch(page.body, /read-only/);
      const signed = await sign("ada");
      assert.equal(signed.status, 303, signed.body);
      assert.equal(signed.headers.get("location"), "/");
      assert.match(
        (await request("GET", "/")).body,
        /<b>ada<\/b>: hello from ada/,
      );
      optionsWhenOff = (await request("OPTIONS", "/")).status;
      assert.notEqual(optionsWhenOff, 503);
    });

    it("POST /maintenance-mode/on with readOnly and a note: the status shows readOnly, updatedBy, note, updatedAt", async () => {
      const before = Date.now();
      const on = await admin("/on", {
        readOnly: true,
        message: "Moving the database",
        retryAfter: 300,
        note: NOTE,
      });
      assert.equal(on.status, 200, JSON.stringify(on.json));
      assert.equal(on.json.enabled, true);
      assert.equal(on.json.readOnly, true);
      const status = await admin("");
      assert.equal(status.status, 200);
      assert.equal(status.json.readOnly, true);
      const state = status.json.state as Record<string, unknown>;
      assert.equal(state.readOnly, true);
      // bearerToken says true, not a name: such writes are recorded as "admin".
      assert.equal(state.updatedBy, "admin");
      assert.equal(state.note, NOTE);
      const at = Date.parse(String(state.updatedAt));
      assert.ok(
        at >= before - 1000 && at <= Date.now() + 1000,
        String(state.updatedAt),
      );
      // The state file holds them too (what the CLI's status reads).
      const file = await stored();
      assert.equal(file.readOnly, true);
      assert.equal(file.updatedBy, "admin");
      assert.equal(file.note, NOTE);
    });

    it("read-only: GET, HEAD and OPTIONS pass, the page with the banner and no form", async () => {
      const page = await request("GET", "/", {
        headers: { accept: "text/html" },
      });
      assert.equal(page.status, 200);
      assert.match(page.body, /Hello from the demo app/);
      assert.match(
        page.body,
        /This site is read-only during maintenance: Moving the database/,
      );
      assert.doesNotMatch(page.body, /<form/, "the form is hidden");
      assert.match(page.body, /<b>ada<\/b>/, "the guestbook is still readable");
      const head = await request("HEAD", "/");
      assert.equal(head.status, 200);
      assert.equal(head.body, "");
      assert.equal((await request("OPTIONS", "/")).status, optionsWhenOff);
    });

    it("read-only: POST, PUT and DELETE get 503 (HTML, or JSON by Accept with readOnly), routed or not", async () => {
      const html = await sign("eve", { accept: "text/html" });
      assert.equal(html.status, 503);
      assert.equal(html.headers.get("retry-after"), "300");
      assert.equal(html.headers.get("cache-control"), "no-store");
      assert.match(html.headers.get("content-type")!, /^text\/html/);
      assert.match(html.body, /read-only/i);
      assert.match(html.body, /Moving the database/);
      for (
        const [method, path] of [
          ["POST", "/guestbook"],
          ["PUT", "/guestbook"],
          ["DELETE", "/guestbook"],
          ["POST", "/"],
          ["DELETE", "/nowhere"],
        ]
      ) {
        const r = await request(method, path, {
          headers: { accept: "application/json" },
        });
        assert.equal(r.status, 503, `${method} ${path}`);
        assert.equal(r.headers.get("retry-after"), "300");
        const body = JSON.parse(r.body);
        assert.equal(body.readOnly, true, `${method} ${path}`);
        assert.equal(body.message, "Moving the database");
      }
      assert.doesNotMatch(
        (await request("GET", "/")).body,
        /eve/,
        "nothing written",
      );
    });

    it("read-only: exemptions still apply (ignorePaths, /healthz, the admin routes, the bypass cookie)", async () => {
      // /static is in the demo's ignorePaths: a write there reaches the app (no route: 404).
      assert.equal((await request("POST", "/static/upload")).status, 404);
      assert.equal((await request("GET", "/healthz")).status, 200);
      // A bypass secret for staff who must write during read-only maintenance.
      const on = await admin("/on", {
        readOnly: true,
        message: "Moving the database",
        retryAfter: 300,
        note: NOTE,
        withSecret: true,
      });
      assert.equal(on.status, 200, JSON.stringify(on.json));
      const secret = String(on.json.secret);
      const visit = await request("GET", `/${secret}`);
      assert.equal(visit.status, 302, visit.body);
      const cookie = visit.headers.get("set-cookie")!.split(";")[0];
      assert.equal((await sign("grace")).status, 503);
      const staff = await sign("grace", { cookie });
      assert.equal(staff.status, 303, staff.body);
      assert.match((await request("GET", "/")).body, /<b>grace<\/b>/);
    });

    it("visitors never see the note or who switched: not on the page, not in the JSON", async () => {
      const answers = [
        await request("GET", "/"),
        await request("GET", "/", { headers: { accept: "application/json" } }),
        await sign("x", { accept: "text/html" }),
        await sign("x", { accept: "application/json" }),
      ];
      for (const a of answers) {
        assert.ok(!a.body.includes(NOTE), a.body);
        assert.ok(!a.body.includes("OPS-4242"), a.body);
        assert.doesNotMatch(a.body, /updatedBy|"note"|updatedAt/);
      }
      // The operator sees them.
      const status = await admin("");
      assert.equal((status.json.state as Record<string, unknown>).note, NOTE);
    });

    it("POST /maintenance-mode/off with a note: recorded with who, and the guestbook takes entries again", async () => {
      const off = await admin("/off", { note: "migration done" });
      assert.equal(off.status, 200, JSON.stringify(off.json));
      assert.equal(off.json.enabled, false);
      assert.equal(off.json.readOnly, false);
      const state = (await admin("")).json.state as Record<string, unknown>;
      assert.equal(state.enabled, false);
      assert.equal(state.updatedBy, "admin");
      assert.equal(state.note, "migration done");
      assert.equal(state.readOnly, undefined);
      const file = await stored();
      assert.equal(file.enabled, false);
      assert.equal(file.note, "migration done");
      assert.equal((await sign("linus")).status, 303);
      const page = await request("GET", "/");
      assert.match(page.body, /Maintenance mode is off\./);
      assert.match(page.body, /<form/);
    });

    it("for: 2s sets endsAt from now; the site is back by itself once it passes, with no write", async () => {
      const before = Date.now();
      const on = await admin("/on", {
        for: "2s",
        readOnly: true,
        note: "short",
      });
      assert.equal(on.status, 200, JSON.stringify(on.json));
      const endsAt = Date.parse(
        String((on.json.state as Record<string, unknown>).endsAt),
      );
      assert.ok(
        endsAt >= before + 2000 && endsAt <= Date.now() + 2000,
        `endsAt ${new Date(endsAt).toISOString()} is 2 s after the request`,
      );
      const refused = await sign("early");
      assert.equal(refused.status, 503);
      // Retry-After counts down to the end: at most the 2 s left.
      const retry = Number(refused.headers.get("retry-after"));
      assert.ok(retry >= 1 && retry <= 2, `Retry-After ${retry}`);
      const written = await readFile(file, "utf8");
      await sleep(Math.max(0, endsAt - Date.now()) + 100);
      assert.equal((await sign("late")).status, 303, "writes pass again");
      const page = await request("GET", "/");
      assert.doesNotMatch(page.body, /read-only/);
      assert.match(page.body, /Maintenance mode is off\./);
      const status = await admin("");
      assert.equal(status.json.enabled, false);
      assert.equal(status.json.readOnly, false);
      assert.equal(
        await readFile(file, "utf8"),
        written,
        "nothing was written",
      );
      // A number is milliseconds.
      const ms = await admin("/on", { for: 60_000 });
      assert.equal(ms.status, 200, JSON.stringify(ms.json));
      const end = Date.parse(
        String((ms.json.state as Record<string, unknown>).endsAt),
      );
      assert.ok(Math.abs(end - (Date.now() + 60_000)) < 5000);
      await admin("/off");
    });

    it("for with until, or a duration without a unit: 400 saying what to change, nothing written", async () => {
      const written = await readFile(file, "utf8");
      const both = await admin("/on", {
        for: "30m",
        until: "2099-01-01T00:00:00Z",
      });
      assert.equal(both.status, 400);
      assert.match(
        String(both.json.message),
        /either for .* or until .*, not both/,
      );
      const unitless = await admin("/on", { for: "30" });
      assert.equal(unitless.status, 400);
      assert.match(String(unitless.json.message), /needs a unit: 30s, 30m/);
      assert.equal(await readFile(file, "utf8"), written);
      assert.equal((await request("GET", "/")).status, 200);
    });

    it("the CLI (another process) switches read-only with --by and --note: the demo follows once its cache TTL is up, the status names who and why", async () => {
      const cli = (args: string[]) => {
        const [cmd, argv] = scriptCommand(runtime, "main.ts", [
          ...args,
          "--file",
          file,
        ]);
        return runProcess(cmd, argv, { timeoutMs: 30_000 });
      };
      const on = await cli([
        "on",
        "--read-only",
        "--by",
        "ops-bot@ci",
        "--note",
        "nightly reindex",
        "--message",
        "Reindexing",
      ]);
      assert.equal(on.code, 0, on.stderr);
      const deadline = Date.now() + 5000;
      while ((await sign("poll")).status !== 503) {
        assert.ok(Date.now() < deadline, "the demo never saw the CLI's switch");
        await sleep(50);
      }
      const page = await request("GET", "/");
      assert.equal(page.status, 200);
      assert.match(page.body, /read-only during maintenance: Reindexing/);
      assert.ok(!page.body.includes("nightly reindex"));
      assert.ok(!page.body.includes("ops-bot"));
      const state = (await admin("")).json.state as Record<string, unknown>;
      assert.equal(state.updatedBy, "ops-bot@ci");
      assert.equal(state.note, "nightly reindex");
      // And back through the admin routes, recorded as the admin.
      const off = await admin("/off", { note: "reindex done" });
      assert.equal(
        (off.json.state as Record<string, unknown>).updatedBy,
        "admin",
      );
      assert.equal((await sign("after")).status, 303);
    });
  });
}
