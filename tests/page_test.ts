/**
 * The default 503 page as text: self-contained (nothing to fetch, and its own CSP says
 * so), `lang`, `noindex`, viewport, light and dark, the escaped message, the expected
 * end time (UTC text, with a script that shows local time); and `render(c, state)`
 * replaces it. tests/page_browser_test.ts looks at it in a real browser.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Hono } from "hono";
import { createMaintenance } from "../src/maintenance.ts";
import type { MaintenanceState } from "../src/_state.ts";
import { MemoryStore } from "../stores/memory.ts";
import { renderPage } from "../src/_page.ts";

const ENDS = "2030-01-01T14:00:00.000Z";

async function sha256Base64(text: string): Promise<string> {
  const d = new Uint8Array(
    await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)),
  );
  return btoa(String.fromCharCode(...d));
}

describe("default page", () => {
  const html = renderPage({
    enabled: true,
    message: "Back at 14:00",
    endsAt: ENDS,
  });

  it("is one document with nothing to fetch", () => {
    assert.match(html, /^<!doctype html>\n<html lang="en">/);
    assert.doesNotMatch(html, /\bsrc\s*=/i);
    assert.doesNotMatch(html, /url\(/i);
    assert.doesNotMatch(html, /@import/i);
    assert.doesNotMatch(html, /https?:\/\//i);
    const hrefs = [...html.matchAll(/href="([^"]*)"/g)].map((m) => m[1]);
    assert.deepEqual(
      hrefs,
      ["data:,"],
      "only the empty icon, so no favicon.ico request",
    );
    assert.ok(html.length < 8192, `small: ${html.length} bytes`);
  });

  it("forbids loading anything with its own CSP, allowing exactly its style and script", async () => {
    const csp = html.match(
      /<meta http-equiv="Content-Security-Policy" content="([^"]+)">/,
    )?.[1];
    assert.ok(csp, "a CSP meta");
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /base-uri 'none'/);
    assert.match(csp, /form-action 'none'/);
    const style = html.match(/<style>([\s\S]*?)<\/style>/)![1];
    const script = html.match(/<script>([\s\S]*?)<\/script>/)![1];
    assert.ok(
      csp.includes(`style-src 'sha256-${await sha256Base64(style)}'`),
      "style hash in src/page.ts CSP is stale: update it to the style's SHA-256",
    );
    assert.ok(
      csp.includes(`script-src 'sha256-${await sha256Base64(script)}'`),
      "script hash in src/page.ts CSP is stale: update it to the script's SHA-256",
    );
    // The CSP comes before anything it governs.
    assert.ok(
      html.indexOf("Content-Security-Policy") < html.indexOf("<style>"),
    );
  });

  it("noindex, viewport, light and dark, lang", () => {
    assert.match(html, /<meta name="robots" content="noindex">/);
    assert.match(
      html,
      /<meta name="viewport" content="width=device-width,initial-scale=1">/,
    );
    assert.match(html, /<meta name="color-scheme" content="light dark">/);
    assert.match(html, /@media \(prefers-color-scheme:dark\)/);
    assert.match(
      renderPage({ enabled: true }, { lang: "de" }),
      /<html lang="de">/,
    );
    assert.match(
      renderPage({ enabled: true }, { lang: 'x"><script>' }),
      /<html lang="x&quot;&gt;&lt;script&gt;">/,
    );
  });

  it("shows the message, escaped; or the default message", () => {
    assert.match(html, /<p id="message">Back at 14:00<\/p>/);
    const evil = renderPage({
      enabled: true,
      message: `<img src=x onerror="alert(1)"> & 'quotes'`,
    });
    assert.match(
      evil,
      /<p id="message">&lt;img src=x onerror=&quot;alert\(1\)&quot;&gt; &amp; &#39;quotes&#39;<\/p>/,
    );
    assert.doesNotMatch(evil, /<img/);
    const plain = renderPage({ enabled: true });
    assert.match(plain, /<p id="message">We are doing some maintenance/);
    assert.match(
      renderPage({ enabled: true }, {
        title: "<b>Shop</b>",
        defaultMessage: "Soon & better",
      }),
      /<title>&lt;b&gt;Shop&lt;\/b&gt;<\/title>[\s\S]*Soon &amp; better/,
    );
  });

  it("shows the end time in UTC, marked up for the local-time script", () => {
    assert.match(
      html,
      /Expected back by <time datetime="2030-01-01T14:00:00.000Z">2030-01-01 14:00 UTC<\/time>/,
    );
    assert.match(html, /<script>\(function\(\)\{/);
    const none = renderPage({ enabled: true, message: "x" });
    assert.doesNotMatch(none, /<time|<script|Expected back/);
  });

  it("an RTL lang lays the page out right to left; text takes its own direction", () => {
    for (const lang of ["ar", "he-IL", "fa_IR", "ur", "az-Arab", "yi"]) {
      assert.match(
        renderPage({ enabled: true }, { lang }),
        new RegExp(`<html lang="${lang}" dir="rtl">`),
        lang,
      );
    }
    for (const lang of ["en", "de-CH", "ug-Cyrl", "tr", "x-ar", "arn"]) {
      assert.match(
        renderPage({ enabled: true }, { lang }),
        new RegExp(`<html lang="${lang}">`),
        lang,
      );
    }
    // An Arabic message on an English page, English labels on an Arabic one: each
    // paragraph's first letter sets its direction.
    assert.match(html, /h1,p,\.badge\{unicode-bidi:plaintext\}/);
  });

  it("renders state text only through the escaper (every field)", () => {
    const state: MaintenanceState = {
      enabled: true,
      message: "</p><script>x</script>",
      endsAt: ENDS,
      refresh: 15,
    };
    const out = renderPage(state);
    assert.equal(out.split("<script>").length, 2, "only the page's own script");
    assert.match(out, /<meta http-equiv="refresh" content="15">/);
    // A state made by hand (not read from a store) is not checked: a refresh that is
    // not a number of seconds cannot add markup or a URL to go to.
    const odd = renderPage({
      enabled: true,
      refresh: '0;url=https://evil.example/"><script>x</script>' as never,
    });
    assert.doesNotMatch(odd, /http-equiv="refresh"|evil|<script>x/);
  });
});

describe("the page as the middleware serves it", () => {
  it("the 503 body is the default page for the state", async () => {
    const mm = createMaintenance({ store: new MemoryStore() });
    const state = await mm.enable({ message: "Back soon", endsAt: ENDS });
    const app = new Hono();
    app.use(mm.middleware({ page: { lang: "fr" } }));
    app.get("/", (c) => c.text("app"));
    const res = await app.fetch(new Request("http://l/"));
    assert.equal(res.status, 503);
    assert.equal(res.headers.get("content-type"), "text/html; charset=utf-8");
    assert.equal(await res.text(), renderPage(state, { lang: "fr" }));
  });

  it("render(c, state) replaces it, as HTML text or a whole Response", async () => {
    const mm = createMaintenance({ store: new MemoryStore() });
    await mm.enable({ message: "Custom" });
    const seen: string[] = [];
    const app = new Hono();
    app.use(
      "/text/*",
      mm.middleware({
        render: (c, state) => {
          seen.push(`${c.req.path} ${state.message}`);
          return `<!doctype html><title>mine</title><p>${state.message}</p>`;
        },
      }),
    );
    app.use(
      "/response/*",
      mm.middleware({
        render: () =>
          new Response("teapot", {
            status: 418,
            headers: { "content-type": "text/plain" },
          }),
      }),
    );
    app.all("*", (c) => c.text("app"));
    const a = await app.fetch(new Request("http://l/text/x"));
    assert.equal(a.status, 503);
    assert.equal(
      await a.text(),
      "<!doctype html><title>mine</title><p>Custom</p>",
    );
    assert.deepEqual(seen, ["/text/x Custom"]);
    const b = await app.fetch(new Request("http://l/response/x"));
    assert.equal(b.status, 418);
    assert.equal(await b.text(), "teapot");
    assert.equal(b.headers.get("cache-control"), "no-store");
  });
});

describe("the badge shows the response's status", () => {
  it("503 by default, and the configured status otherwise", async () => {
    assert.match(renderPage({ enabled: true }), />503 &middot; Maintenance</);
    const mm = createMaintenance({ store: new MemoryStore() });
    await mm.enable({ message: "down" });
    const app = new Hono();
    app.use(mm.middleware({ status: 500 }));
    app.get("/", (c) => c.text("app"));
    const res = await app.request("/");
    assert.equal(res.status, 500);
    const html = await res.text();
    assert.match(html, />500 &middot; Maintenance</);
    assert.doesNotMatch(html, /503/);
  });
});

describe("default page in another language and brand", () => {
  const de = {
    lang: "de",
    title: "Wartungsarbeiten",
    defaultMessage: "Wir sind gleich zurück.",
    badge: "Wartung",
    backBy: "Zurück um",
    brand: "Beispiel <GmbH>",
    link: "https://status.example.com/?a=1&b=2",
    linkText: "Statusseite",
  };

  it("every visible string is an option: no English left", () => {
    const html = renderPage(
      { enabled: true, endsAt: "2030-01-01T14:00:00.000Z" },
      de,
    );
    const visible = html.replace(/<script>[\s\S]*?<\/script>/, "")
      .replace(/<style>[\s\S]*?<\/style>/, "").replace(/<[^>]+>/g, " ");
    for (
      const english of [
        "Maintenance",
        "Expected back",
        "Down for maintenance",
        "We are doing",
        "check back",
      ]
    ) {
      assert.doesNotMatch(visible, new RegExp(english), english);
    }
    assert.match(html, /<div class="badge">503 &middot; Wartung<\/div>/);
    assert.match(html, /Zurück um <time datetime="2030-01-01T14:00:00.000Z">/);
    assert.match(html, /Wir sind gleich zurück\./);
  });

  it("shows a brand and one link, escaped", () => {
    const html = renderPage({ enabled: true }, de);
    assert.match(
      html,
      /<p>Beispiel &lt;GmbH&gt;<\/p>\n<h1>Wartungsarbeiten<\/h1>/,
    );
    assert.match(
      html,
      /<p><a href="https:\/\/status\.example\.com\/\?a=1&amp;b=2">Statusseite<\/a><\/p>/,
    );
    const bare = renderPage({ enabled: true }, { link: "https://x.example/" });
    assert.match(
      bare,
      /<a href="https:\/\/x\.example\/">https:\/\/x\.example\/<\/a>/,
    );
  });

  it("through the middleware; a link that is not http(s) is refused at construction", async () => {
    const mm = createMaintenance({
      store: new MemoryStore('{"enabled":true}'),
    });
    const app = new Hono();
    app.use(mm.middleware({ page: de }));
    const res = await app.request("/");
    assert.equal(res.status, 503);
    assert.match(await res.text(), /Statusseite/);
    for (const bad of ["javascript:alert(1)", "/status", "https://a b"]) {
      assert.throws(
        () => mm.middleware({ page: { link: bad } }),
        /page\.link must be an http\(s\) URL/,
        bad,
      );
    }
    assert.throws(
      () => mm.middleware({ page: { badge: 1 as unknown as string } }),
      /page\.badge must be a string/,
    );
  });
});
