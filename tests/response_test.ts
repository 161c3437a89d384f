import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Hono } from "hono";
import { createMaintenance } from "../src/maintenance.ts";
import { createResponder, retryAfterSeconds } from "../src/_response.ts";
import type { EnableOptions } from "../src/_enable.ts";
import { forceMaintenance, type MiddlewareOptions } from "../src/middleware.ts";
import { MemoryStore } from "../stores/memory.ts";
import { toSnapshot } from "../src/_state.ts";

const T0 = Date.parse("2030-01-01T12:00:00.000Z");

/** A real Hono app behind the middleware, with a fixed clock and the state switched on. */
async function appWith(
  state: EnableOptions = {},
  options: MiddlewareOptions = {},
): Promise<Hono> {
  const mm = createMaintenance({
    store: new MemoryStore(),
    cache: { ttlMs: 60_000 },
    now: () => T0,
  });
  await mm.enable(state);
  const app = new Hono();
  app.use(mm.middleware(options));
  app.all("*", (c) => c.text("app"));
  return app;
}

function get(
  app: Hono,
  headers: Record<string, string> = {},
  method = "GET",
): Promise<Response> {
  return Promise.resolve(
    app.fetch(new Request("http://localhost/page", { method, headers })),
  );
}

describe("the 503 response", () => {
  it("is 503 with Retry-After (default 300 s), Cache-Control: no-store, Vary: Accept", async () => {
    const res = await get(await appWith());
    assert.equal(res.status, 503);
    assert.equal(res.headers.get("retry-after"), "300");
    assert.equal(res.headers.get("cache-control"), "no-store");
    assert.equal(res.headers.get("vary"), "Accept");
    assert.equal(res.headers.get("content-type"), "text/html; charset=utf-8");
    const html = await res.text();
    assert.match(html, /^<!doctype html>/i);
    assert.match(html, /<meta name="robots" content="noindex">/);
  });
  it("Retry-After is the state's retryAfter, else the option", async () => {
    const a = await get(await appWith({ retryAfter: 600 }));
    assert.equal(a.headers.get("retry-after"), "600");
    const b = await get(await appWith({}, { retryAfter: 120 }));
    assert.equal(b.headers.get("retry-after"), "120");
  });
  it("Retry-After counts the seconds to endsAt, rounded up, over retryAfter", async () => {
    const endsAt = new Date(T0 + 90_500).toISOString();
    const res = await get(await appWith({ endsAt, retryAfter: 600 }));
    assert.equal(res.headers.get("retry-after"), "91");
    const html = await res.text();
    assert.match(html, /<time datetime="2030-01-01T12:01:30\.500Z">/);
  });
  it("retryAfterSeconds is at least 1 right before the end", () => {
    const snap = toSnapshot({
      enabled: true,
      endsAt: new Date(T0 + 10).toISOString(),
    });
    assert.equal(retryAfterSeconds(snap, T0, 300), 1);
    assert.equal(
      retryAfterSeconds(toSnapshot({ enabled: true }), T0, 300),
      300,
    );
  });
  it("a refresh in the state adds a Refresh header and meta tag", async () => {
    const res = await get(await appWith({ refresh: 30 }));
    assert.equal(res.headers.get("refresh"), "30");
    assert.match(await res.text(), /<meta http-equiv="refresh" content="30">/);
  });
});

describe("HTML or JSON by Accept", () => {
  const cases: [string | undefined, "html" | "json"][] = [
    [undefined, "html"],
    ["text/html", "html"],
    ["*/*", "html"],
    [
      "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
      "html",
    ],
    ["application/json", "json"],
    ["application/json, */*", "json"],
    ["application/json;charset=utf-8", "json"],
    ["application/problem+json", "json"],
    ["Application/JSON", "json"],
    ["text/html;q=0.9, application/json", "json"],
    ["application/json;q=0.5, text/html", "html"],
    ["application/json;q=0.5, */*;q=0.1", "json"],
    ["application/json;q=0", "html"],
    ["text/*;q=0.5, application/json;q=0.4", "html"],
    ["application/json, text/html", "json"],
    ["text/html;q=0.8, application/json;q=0.8", "json"],
  ];
  for (const [accept, want] of cases) {
    it(`Accept ${accept === undefined ? "(none)" : JSON.stringify(accept)} → ${want}`, async () => {
      const app = await appWith({ message: "Back soon" });
      const res = await get(app, accept === undefined ? {} : { accept });
      assert.equal(res.status, 503);
      const body = await res.text();
      if (want === "json") {
        assert.equal(res.headers.get("content-type"), "application/json");
        assert.deepEqual(JSON.parse(body), {
          error: "maintenance",
          message: "Back soon",
        });
      } else {
        assert.equal(
          res.headers.get("content-type"),
          "text/html; charset=utf-8",
        );
        assert.match(body, /<p id="message">Back soon<\/p>/);
      }
    });
  }
  it("JSON carries endsAt when the window has an end", async () => {
    const endsAt = new Date(T0 + 3_600_000).toISOString();
    const res = await get(await appWith({ endsAt }), {
      accept: "application/json",
    });
    assert.deepEqual(await res.json(), {
      error: "maintenance",
      message: "Service temporarily unavailable for maintenance",
      endsAt,
    });
  });
});

describe("the message is escaped", () => {
  const message =
    `<script>alert("x")</script> & 'quotes' — Zurück um 14:00 ☕ \u2028`;

  it("in HTML: no markup gets through, unicode does", async () => {
    const res = await get(await appWith({ message }));
    const html = await res.text();
    assert.ok(!html.includes("<script>"), "raw <script> in the page");
    assert.ok(!html.includes(`"x"`), "raw quotes in the page");
    assert.ok(
      html.includes(
        "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;quotes&#39;",
      ),
    );
    assert.ok(html.includes("— Zurück um 14:00 ☕"));
  });
  it("in JSON: parses back to the message, with no < > & on the wire", async () => {
    const res = await get(await appWith({ message }), {
      accept: "application/json",
    });
    const text = await res.text();
    assert.ok(!/[<>&\u2028]/.test(text), text);
    assert.equal(JSON.parse(text).message, message);
  });
  it("page options (title) are escaped too", async () => {
    const res = await get(
      await appWith({}, { page: { title: `<img src=x onerror="alert(1)">` } }),
    );
    const html = await res.text();
    assert.ok(!html.includes("<img"), "raw <img> in the page");
    assert.ok(html.includes("&lt;img src=x onerror=&quot;alert(1)&quot;&gt;"));
  });
});

describe("HEAD", () => {
  it("same status and headers as GET, no body", async () => {
    const app = await appWith({ message: "Back soon", retryAfter: 60 });
    const getRes = await get(app);
    await getRes.body?.cancel();
    const head = await get(app, {}, "HEAD");
    assert.equal(head.status, 503);
    for (const h of ["retry-after", "cache-control", "content-type", "vary"]) {
      assert.equal(head.headers.get(h), getRes.headers.get(h), h);
    }
    assert.equal(await head.text(), "");
  });
  it("for JSON too", async () => {
    const head = await get(
      await appWith(),
      { accept: "application/json" },
      "HEAD",
    );
    assert.equal(head.status, 503);
    assert.equal(head.headers.get("content-type"), "application/json");
    assert.equal(await head.text(), "");
  });
});

describe("a render that returns a Response", () => {
  const snap = toSnapshot({ enabled: true, retryAfter: 60 });
  const page = () =>
    new Response("<h1>Back soon</h1>", {
      status: 200,
      headers: {
        "content-type": "text/html; charset=utf-8",
        "cache-control": "public, max-age=3600",
      },
    });
  function respond(method: string, custom: Response, status?: number) {
    return createResponder(status === undefined ? {} : { status }).respond(
      new Request("http://localhost/page", { method }),
      snap,
      T0,
      custom,
    );
  }

  it("a 2xx gets the configured status, no-store and Retry-After, its body and headers", async () => {
    const res = respond("GET", page());
    assert.equal(res.status, 503);
    assert.equal(res.headers.get("cache-control"), "no-store");
    assert.equal(res.headers.get("retry-after"), "60");
    assert.equal(res.headers.get("content-type"), "text/html; charset=utf-8");
    assert.equal(await res.text(), "<h1>Back soon</h1>");
    const custom = respond("GET", page(), 500);
    await custom.body?.cancel();
    assert.equal(custom.status, 500);
  });
  it("HEAD: the same status and headers, no body", async () => {
    const res = respond("HEAD", page());
    assert.equal(res.status, 503);
    assert.equal(res.headers.get("cache-control"), "no-store");
    assert.equal(res.headers.get("retry-after"), "60");
    assert.equal(res.body, null);
    assert.equal(await res.text(), "");
  });
  it("a non-2xx status it chose is kept, and so is its own Retry-After", async () => {
    const res = respond(
      "GET",
      new Response("broken", {
        status: 500,
        headers: { "retry-after": "5", "cache-control": "max-age=60" },
      }),
    );
    assert.equal(res.status, 500);
    assert.equal(res.headers.get("retry-after"), "5");
    assert.equal(res.headers.get("cache-control"), "no-store");
    assert.equal(await res.text(), "broken");
    const moved = respond(
      "GET",
      new Response(null, {
        status: 302,
        headers: { location: "https://status.example.com/" },
      }),
    );
    assert.equal(moved.status, 302);
    assert.equal(moved.headers.get("location"), "https://status.example.com/");
  });
  it("a Response of another class (a fetch() result under @hono/node-server 1.x) is still a Response", async () => {
    // Stand-in for a Response from another realm or class: node-server 1.x replaces
    // the global Response, and undici's (from fetch(), Response.json()) is then not an
    // instance of it. Deno and Bun have one class, so this is a mock, and says so.
    const real = Response.json({ down: true }, { status: 200 });
    const foreign = {
      status: real.status,
      statusText: real.statusText,
      headers: real.headers,
      body: real.body,
    } as unknown as Response;
    assert.ok(!(foreign instanceof Response));
    const res = createResponder().respond(
      new Request("http://localhost/"),
      snap,
      T0,
      foreign,
    );
    assert.equal(res.status, 503);
    // Bun's Response.json() adds ";charset=utf-8".
    assert.match(res.headers.get("content-type") ?? "", /^application\/json\b/);
    assert.equal(await res.text(), '{"down":true}');
  });
  it("anything but text or a Response is a TypeError saying what render must return", () => {
    for (const bad of [null, 42, {}]) {
      assert.throws(
        () =>
          createResponder().respond(
            new Request("http://localhost/"),
            snap,
            T0,
            bad as unknown as Response,
          ),
        /render must return HTML text or a Response/,
        String(bad),
      );
    }
  });
});

describe("the redirect", () => {
  const snap = toSnapshot({ enabled: true });
  it("is 302 for GET and HEAD, 303 for other methods, always no-store", () => {
    const responder = createResponder({ redirectTo: "/maintenance" });
    for (
      const [method, status] of [
        ["GET", 302],
        ["HEAD", 302],
        ["POST", 303],
        ["PUT", 303],
        ["DELETE", 303],
        ["OPTIONS", 303],
      ] as const
    ) {
      const res = responder.respond(
        new Request("http://localhost/login", { method }),
        snap,
        T0,
      );
      assert.equal(res.status, status, method);
      assert.equal(res.headers.get("location"), "/maintenance");
      assert.equal(res.headers.get("cache-control"), "no-store");
    }
  });
  it("an absolute target is itself whatever the scheme and port the app sees", async () => {
    const responder = createResponder({
      redirectTo: "https://example.com/maintenance",
    });
    const self = responder.respond(
      new Request("http://example.com:8080/maintenance"),
      snap,
      T0,
    );
    assert.equal(self.status, 503);
    await self.body?.cancel();
    const other = responder.respond(
      new Request("http://example.org/maintenance"),
      snap,
      T0,
    );
    assert.equal(other.status, 302);
  });
});

describe("createResponder checks its options once, when built", () => {
  it("status from 200 to 599 only", () => {
    for (const status of [200, 503, 599]) {
      assert.equal(createResponder({ status }).redirectPath, undefined);
    }
    for (const status of [100, 199, 600, 999, 503.5]) {
      assert.throws(
        () => createResponder({ status }),
        (e: Error) => e instanceof RangeError && /200 to 599/.test(e.message),
        String(status),
      );
    }
  });
  it("retryAfter in whole seconds from 0 to 31536000", () => {
    for (const retryAfter of [0, 31_536_000]) {
      const res = createResponder({ retryAfter }).respond(
        new Request("http://localhost/", { method: "HEAD" }),
        toSnapshot({ enabled: true }),
        T0,
      );
      assert.equal(res.headers.get("retry-after"), String(retryAfter));
    }
    for (const retryAfter of [-1, 1.5, 31_536_001]) {
      assert.throws(
        () => createResponder({ retryAfter }),
        RangeError,
        String(retryAfter),
      );
    }
  });
  it("redirectTo: a bad target is a TypeError that says what to give, and shows what it got", () => {
    for (
      const [target, got] of [
        ["maintenance", '"maintenance"'],
        ["/down\nx", '"/down\\nx"'],
        ["ftp://files.example/", '"ftp://files.example/"'],
        [5, "5"],
      ] as const
    ) {
      assert.throws(
        () => createResponder({ redirectTo: target as string }),
        (e: Error) =>
          e instanceof TypeError &&
          e.message.startsWith(
            'redirectTo must be a path such as "/maintenance" or an http(s) URL',
          ) &&
          e.message.endsWith(
            `(got ${got === "5" ? got : `the string ${got}`})`,
          ),
        String(target),
      );
    }
  });
  it("page must be an object, not an array, with known keys", () => {
    assert.throws(
      () => createResponder({ page: [] as unknown as { title: string } }),
      (e: Error) =>
        e instanceof TypeError && /^page\b.* object/.test(e.message),
    );
    assert.throws(
      () => createResponder({ page: { titel: "x" } as never }),
      /unknown page option "titel" \(known: title, defaultMessage, lang, badge, backBy, brand, link, linkText, readOnly\)/,
    );
  });
});

describe("headers in every shape of the response", () => {
  it("with a refresh, the default page still says Vary: Accept", async () => {
    const res = await get(await appWith({ refresh: 30 }));
    assert.equal(res.headers.get("refresh"), "30");
    assert.equal(res.headers.get("vary"), "Accept");
    assert.equal(res.headers.get("cache-control"), "no-store");
    await res.body?.cancel();
  });
  it("render text: Refresh and Vary as the default page; HEAD gets no body", async () => {
    const snap = toSnapshot({ enabled: true, refresh: 15, retryAfter: 60 });
    const responder = createResponder();
    for (const method of ["GET", "HEAD"]) {
      const res = responder.respond(
        new Request("http://localhost/page", { method }),
        snap,
        T0,
        "<h1>Back soon</h1>",
      );
      assert.equal(res.status, 503, method);
      assert.equal(res.headers.get("refresh"), "15", method);
      assert.equal(res.headers.get("vary"), "Accept", method);
      assert.equal(res.headers.get("retry-after"), "60", method);
      if (method === "HEAD") assert.equal(res.body, null);
      else assert.equal(await res.text(), "<h1>Back soon</h1>");
    }
  });
  it("a render Response with 300 keeps it, and a non-2xx keeps its status text", async () => {
    const responder = createResponder();
    const snap = toSnapshot({ enabled: true });
    const choices = responder.respond(
      new Request("http://localhost/page"),
      snap,
      T0,
      new Response("pick one", { status: 300 }),
    );
    assert.equal(choices.status, 300);
    await choices.body?.cancel();
    const broken = responder.respond(
      new Request("http://localhost/page"),
      snap,
      T0,
      new Response("broken", { status: 500, statusText: "Database Down" }),
    );
    assert.equal(broken.status, 500);
    assert.equal(broken.statusText, "Database Down");
    await broken.body?.cancel();
  });
});

describe("render and forceMaintenance(true)", () => {
  it("a forceMaintenance(true) route answers with your render, while off", async () => {
    const mm = createMaintenance({
      store: new MemoryStore(),
      cache: { ttlMs: 60_000 },
      now: () => T0,
    });
    const app = new Hono();
    app.use(mm.middleware({ render: () => "<h1>Custom</h1>" }));
    app.get("/old", forceMaintenance(true), (c) => c.text("never"));
    app.get("*", (c) => c.text("app"));
    const res = await app.fetch(new Request("http://localhost/old"));
    assert.equal(res.status, 503);
    assert.equal(await res.text(), "<h1>Custom</h1>");
    assert.equal(await (await get(app)).text(), "app");
  });
});
