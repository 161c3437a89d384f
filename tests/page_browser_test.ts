/// <reference lib="dom" />
/**
 * The default 503 page in a real browser: headless Chromium (Debian's /usr/bin/chromium,
 * driven by playwright-core) loads it from a real server on 127.0.0.1 at 390 px (a
 * phone) and 1280 px (a desktop), light and dark: no console errors (a CSP violation
 * would be one), no horizontal scroll, message and end time visible (in the viewer's
 * time zone; in UTC without JavaScript), and no request but the page, counted by the
 * browser and by the server.
 *
 * Screenshots for the README go to docs/page-390.png, docs/page-1280.png and
 * docs/page-390-dark.png when they are missing or UPDATE_SCREENSHOTS=1 is set; else to
 * a temporary directory, so a test run leaves the repository alone.
 *
 * Runs under Deno and Bun (playwright-core works under both); skipped, saying why,
 * where /usr/bin/chromium is missing.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import process from "node:process";
import { Hono } from "hono";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { createMaintenance, type Maintenance } from "../src/maintenance.ts";
import { MemoryStore } from "../stores/memory.ts";
import { renderPage } from "../src/_page.ts";
import {
  makeTempDir,
  removeDir,
  ROOT,
  serveFetch,
  type TestServer,
} from "./helpers.ts";

const CHROMIUM = "/usr/bin/chromium";
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const ENDS = "2030-01-01T14:00:00.000Z";
const MESSAGE =
  "We are upgrading the database. Orders placed before the upgrade are safe.";

const skip = existsSync(CHROMIUM)
  ? false
  : `${CHROMIUM} is missing (apt-get install chromium; scripts/setup.ts does it)`;

async function launch(
  userDataDir: string,
  javaScriptEnabled = true,
): Promise<BrowserContext> {
  return await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    timezoneId: "America/New_York",
    locale: "en-US",
    javaScriptEnabled,
    viewport: { width: 390, height: 844 },
  });
}

/** Where a screenshot goes: docs/ when asked or missing, else the temp dir. */
function shotPath(name: string, tmp: string): string {
  const docs = `${ROOT}/docs/${name}`;
  return process.env.UPDATE_SCREENSHOTS === "1" || !existsSync(docs)
    ? docs
    : `${tmp}/${name}`;
}

/**
 * Console errors, less the one Chromium logs for any document served with an error
 * status ("Failed to load resource: ... status of 503"): that is the page doing its
 * job, not a fault in it. Anything else (a script error, a CSP violation, a blocked
 * load) is kept.
 */
function consoleErrors(target: Page, pageUrl: string): {
  errors: string[];
  stop(): void;
} {
  const errors: string[] = [];
  const onConsole = (
    m: { type(): string; text(): string; location(): { url: string } },
  ) => {
    if (m.type() !== "error") return;
    if (
      m.location().url === pageUrl &&
      /^Failed to load resource: the server responded with a status of 503\b/
        .test(m.text())
    ) return;
    errors.push(m.text());
  };
  const onError = (e: Error) => errors.push(String(e));
  target.on("console", onConsole);
  target.on("pageerror", onError);
  return {
    errors,
    stop() {
      target.off("console", onConsole);
      target.off("pageerror", onError);
    },
  };
}

interface Look {
  errors: string[];
  requests: string[];
  hits: string[];
}

describe("default page in headless Chromium", { skip }, () => {
  let mm: Maintenance;
  let server: TestServer;
  let ctx: BrowserContext | undefined;
  let page: Page;
  let tmp: string;
  const hits: string[] = [];

  before(async () => {
    tmp = await makeTempDir("maintenance-browser-");
    mm = createMaintenance({ store: new MemoryStore() });
    await mm.enable({ message: MESSAGE, endsAt: ENDS });
    const app = new Hono();
    app.use(mm.middleware());
    app.get("/", (c) => c.text("app"));
    server = await serveFetch((req, env) => {
      hits.push(`${req.method} ${new URL(req.url).pathname}`);
      return app.fetch(req, env);
    });
    ctx = await launch(`${tmp}/profile`);
    page = ctx.pages()[0] ?? await ctx.newPage();
  });

  after(async () => {
    await ctx?.close();
    await server?.stop();
    await removeDir(tmp);
  });

  async function open(
    width: number,
    height: number,
    colorScheme: "light" | "dark",
  ): Promise<Look> {
    hits.length = 0;
    await page.setViewportSize({ width, height });
    await page.emulateMedia({ colorScheme });
    const watch = consoleErrors(page, `${server.url}/`);
    const look: Look = { errors: watch.errors, requests: [], hits };
    const onRequest = (r: { url(): string }) => look.requests.push(r.url());
    page.on("request", onRequest);
    try {
      const res = await page.goto(`${server.url}/`, {
        waitUntil: "networkidle",
      });
      assert.equal(res?.status(), 503);
    } finally {
      watch.stop();
      page.off("request", onRequest);
    }
    return look;
  }

  async function checkLayout(width: number, height: number): Promise<void> {
    const m = await page.evaluate(() => ({
      scrollWidth: document.documentElement.scrollWidth,
      clientWidth: document.documentElement.clientWidth,
      bodyScrollWidth: document.body.scrollWidth,
      lang: document.documentElement.lang,
      robots: document.querySelector('meta[name="robots"]')?.getAttribute(
        "content",
      ),
    }));
    assert.ok(
      m.scrollWidth <= m.clientWidth && m.bodyScrollWidth <= m.clientWidth,
      `no horizontal scroll at ${width}px: ${JSON.stringify(m)}`,
    );
    assert.equal(m.lang, "en");
    assert.equal(m.robots, "noindex");
    for (const sel of ["#message", "time"]) {
      const el = page.locator(sel);
      assert.ok(await el.isVisible(), `${sel} visible at ${width}px`);
      const box = (await el.boundingBox())!;
      assert.ok(
        box.x >= 0 && box.x + box.width <= width && box.y >= 0 &&
          box.y + box.height <= height,
        `${sel} inside the ${width}x${height} viewport: ${JSON.stringify(box)}`,
      );
    }
    assert.equal(await page.locator("#message").textContent(), MESSAGE);
  }

  async function background(): Promise<string> {
    return await page.evaluate(() =>
      getComputedStyle(document.body).backgroundColor
    );
  }

  for (const [width, height] of [[390, 844], [1280, 800]]) {
    it(`${width}px, light: no errors, no scroll, message and local end time, one request`, async () => {
      const look = await open(width, height, "light");
      assert.deepEqual(look.errors, [], "no console errors");
      assert.deepEqual(look.requests, [`${server.url}/`], "only the page");
      assert.deepEqual(look.hits, ["GET /"], "the server saw only the page");
      await checkLayout(width, height);
      // 14:00 UTC in New York, in the viewer's locale; UTC stays as the tooltip.
      const time = page.locator("time");
      assert.match((await time.textContent())!, /Jan 1, 2030.*9:00\sAM\sEST/);
      assert.equal(await time.getAttribute("title"), "2030-01-01 14:00 UTC");
      assert.equal(await background(), "rgb(246, 247, 249)");
      await page.screenshot({ path: shotPath(`page-${width}.png`, tmp) });
    });
  }

  it("390px, dark: the dark palette, still no errors or extra requests", async () => {
    const look = await open(390, 844, "dark");
    assert.deepEqual(look.errors, []);
    assert.deepEqual(look.hits, ["GET /"]);
    await checkLayout(390, 844);
    assert.equal(await background(), "rgb(15, 17, 21)");
    await page.screenshot({ path: shotPath("page-390-dark.png", tmp) });
  });

  it("a message with a very long word still fits 320px", async () => {
    await mm.enable({
      message: `Reference ${"MAINTENANCE-WINDOW-".repeat(8)}END`,
      endsAt: ENDS,
    });
    try {
      const look = await open(320, 640, "light");
      assert.deepEqual(look.errors, []);
      const m = await page.evaluate(() => ({
        scrollWidth: document.documentElement.scrollWidth,
        clientWidth: document.documentElement.clientWidth,
      }));
      assert.ok(m.scrollWidth <= m.clientWidth, JSON.stringify(m));
    } finally {
      await mm.enable({ message: MESSAGE, endsAt: ENDS });
    }
  });

  it("right to left: an Arabic page reads from the right, and so does a Hebrew message on an English page", async () => {
    const ar = await ctx!.newPage();
    try {
      const dirs = async (html: string) => {
        await ar.setContent(html);
        return await ar.evaluate(() => {
          const p = document.getElementById("message")!;
          const range = document.createRange();
          range.selectNodeContents(p);
          const text = range.getBoundingClientRect();
          const box = p.getBoundingClientRect();
          return {
            page: getComputedStyle(document.documentElement).direction,
            leftGap: Math.round(text.left - box.left),
            rightGap: Math.round(box.right - text.right),
          };
        });
      };
      const arabic = await dirs(
        renderPage({ enabled: true, message: "نعود في الساعة 14:00." }, {
          lang: "ar",
          title: "الموقع تحت الصيانة",
        }),
      );
      assert.equal(arabic.page, "rtl");
      assert.ok(
        arabic.rightGap === 0 && arabic.leftGap > 0,
        `the message starts at the right: ${JSON.stringify(arabic)}`,
      );
      const hebrew = await dirs(
        renderPage({ enabled: true, message: "חוזרים בקרוב." }),
      );
      assert.equal(hebrew.page, "ltr");
      assert.ok(
        hebrew.rightGap === 0 && hebrew.leftGap > 0,
        `a Hebrew message starts at the right: ${JSON.stringify(hebrew)}`,
      );
      const english = await dirs(
        renderPage({ enabled: true, message: "Back soon." }, { lang: "ar" }),
      );
      assert.ok(
        english.leftGap === 0 && english.rightGap > 0,
        `an English message on an Arabic page starts at the left: ${
          JSON.stringify(english)
        }`,
      );
    } finally {
      await ar.close();
    }
  });

  it("without JavaScript: the end time in UTC, no errors", async () => {
    const noJs = await launch(`${tmp}/profile-nojs`, false);
    try {
      const p = noJs.pages()[0] ?? await noJs.newPage();
      const watch = consoleErrors(p, `${server.url}/`);
      const res = await p.goto(`${server.url}/`, { waitUntil: "load" });
      assert.equal(res?.status(), 503);
      assert.equal(
        await p.locator("time").textContent(),
        "2030-01-01 14:00 UTC",
      );
      assert.ok(await p.locator("time").isVisible());
      assert.deepEqual(watch.errors, []);
      watch.stop();
    } finally {
      await noJs.close();
    }
  });
});
