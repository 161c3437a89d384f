/**
 * The default maintenance page: one self-contained HTML document (no external
 * requests), readable on a phone and a desktop, light and dark, `noindex`.
 *
 * @module
 */
import { escapeToBuffer } from "hono/utils/html";
import type { MaintenanceState } from "./_state.ts";

/** Escapes text for HTML element content and quoted attribute values (`&<>"'`). */
export function escapeHtml(text: string): string {
  const out = [""];
  escapeToBuffer(text, out);
  return out[0];
}

/**
 * What the default page shows besides the state.
 *
 * @example
 * ```ts
 * import type { PageOptions } from "@x/maintenance";
 * const page: PageOptions = {
 *   lang: "de",
 *   title: "Wartungsarbeiten",
 *   defaultMessage: "Wir sind gleich zurück.",
 *   readOnly: "Die Seite ist gerade schreibgeschützt.",
 *   badge: "Wartung",
 *   backBy: "Zurück um",
 *   brand: "Beispiel GmbH",
 *   link: "https://status.example.com/",
 *   linkText: "Statusseite",
 * };
 * ```
 */
export interface PageOptions {
  /** The heading and `<title>`. Default "Down for maintenance". */
  title?: string;
  /** Shown when the state has no message. */
  defaultMessage?: string;
  /**
   * Shown in read-only maintenance. Default "The site is read-only for now: you can
   * browse, but changes are paused."
   */
  readOnly?: string;
  /**
   * The document's `lang`. Default `"en"`. A language written right to left (`ar`,
   * `he`, `fa`, `ur`, or a tag with such a script, as `az-Arab`) lays the page out
   * right to left.
   */
  lang?: string;
  /** The badge's word after the status code. Default "Maintenance". */
  badge?: string;
  /** Before the expected end time. Default "Expected back by". */
  backBy?: string;
  /** A brand name shown above the heading. Default: none. */
  brand?: string;
  /** One http(s) link under the message (a status page, a contact). Default: none. */
  link?: string;
  /** The link's text. Default: the link itself. */
  linkText?: string;
}

/** One line: the CSP hash below is of these exact bytes. */
const STYLE =
  ":root{color-scheme:light dark;--bg:#f6f7f9;--fg:#1b1f24;--muted:#5b6470;--card:#fff;--line:#d9dee5;--accent:#c2410c}" +
  "@media (prefers-color-scheme:dark){:root{--bg:#0f1115;--fg:#e8eaee;--muted:#a2aab5;--card:#171a21;--line:#2a2f3a;--accent:#fb923c}}" +
  "*{box-sizing:border-box}" +
  "html,body{margin:0;height:100%}" +
  'body{background:var(--bg);color:var(--fg);font:16px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;display:flex;align-items:center;justify-content:center;padding:24px}' +
  "main{width:100%;max-width:34rem;background:var(--card);border:1px solid var(--line);border-radius:14px;padding:clamp(20px,5vw,40px)}" +
  ".badge{display:inline-block;font-size:.8rem;font-weight:600;letter-spacing:.04em;text-transform:uppercase;color:var(--accent);margin:0 0 .75rem}" +
  "h1{font-size:clamp(1.4rem,4.5vw,1.9rem);line-height:1.25;margin:0 0 .75rem}" +
  "p{margin:0 0 .75rem;overflow-wrap:anywhere;white-space:pre-line}" +
  "h1,p,.badge{unicode-bidi:plaintext}" +
  ".until{color:var(--muted);font-size:.95rem;margin:1.25rem 0 0;padding-top:1rem;border-top:1px solid var(--line)}" +
  "time{white-space:nowrap}";

/**
 * Shows the end time in the viewer's time zone and locale; the UTC text stays for
 * browsers without JavaScript (and as the tooltip).
 */
const SCRIPT =
  `(function(){var t=document.querySelector("time"),d=t&&new Date(t.dateTime);` +
  `if(isFinite(d))try{var s=d.toLocaleString(void 0,{year:"numeric",month:"short",` +
  `day:"numeric",hour:"numeric",minute:"2-digit",timeZoneName:"short"});` +
  `t.title=t.textContent;t.textContent=s}catch(e){}})()`;

/**
 * The page's own Content-Security-Policy: nothing may load from anywhere; only this
 * style and this script (by SHA-256, checked by tests/page_test.ts) may run.
 */
const CSP = "default-src 'none'; " +
  "style-src 'sha256-W1tvmJlTXq1CUY4IUMNwg+LdW+K2xKJtR4zzFweAGhc='; " +
  "script-src 'sha256-n0wDnIu+Q+RHDr50w8vBmkbFuzM+TUw8ceY5ovVkb6U='; " +
  "img-src data:; base-uri 'none'; form-action 'none'";

/**
 * Written right to left: scripts (ISO 15924, four letters) and languages whose usual
 * script is one of them (two or three letters).
 */
const RTL =
  "adlm arab hebr mand mend nkoo rohg samr syrc thaa yezi ar arc azb ckb dv fa he iw ji khw ks lrc mzn nqo pnb prs ps sd syr ug ur yi"
    .split(" ");

/**
 * Whether a BCP 47 language tag is written right to left: by its script subtag when it
 * has one (`az-Arab` is, `ug-Cyrl` is not), else by its language (`ar`, `he-IL`, `fa`).
 * Not `Intl.Locale`'s text info: Node 20 and Bun read `az-Arab` as left to right.
 */
function isRtl(lang: string): boolean {
  const [, language, script] =
    /^([a-z]+)(?:[-_][a-z]{3}){0,3}(?:[-_]([a-z]{4}))?(?![a-z\d])/.exec(
      lang.toLowerCase(),
    ) ?? [];
  return RTL.includes(script ?? language);
}

function utcText(iso: string): string {
  // 2030-01-01T14:00:00.000Z -> 2030-01-01 14:00 UTC
  return iso.replace("T", " ").replace(/:\d\d(\.\d+)?Z$/, " UTC");
}

/**
 * Renders the default page for a state: one self-contained document (no external
 * requests, its own CSP forbids them), `noindex`, light and dark, readable from phone
 * to desktop, with the expected end time when the state has one (in UTC, and in the
 * viewer's time zone where scripts run). Every piece of the state is escaped. Right
 * to left for an RTL `lang`; each paragraph of text also takes its own direction, so a
 * Hebrew message reads right on an English page. `status` is the code its badge
 * shows (the response's own; default 503).
 */
export function renderPage(
  state: MaintenanceState,
  options: PageOptions = {},
  status: number = 503,
): string {
  const title = escapeHtml(options.title ?? "Down for maintenance");
  const lang = options.lang ?? "en";
  // An RTL language lays the page out right to left; each paragraph of text still
  // takes the direction of its own first letter (unicode-bidi: plaintext), so an
  // Arabic message on an English page, or the English labels on an Arabic one, read
  // in their own order.
  const dir = isRtl(lang) ? ' dir="rtl"' : "";
  const message = escapeHtml(
    state.message ??
      options.defaultMessage ??
      "We are doing some maintenance right now. Please check back soon.",
  );
  const ends = state.endsAt;
  const until = ends
    ? `<p class="until" id="until">${
      escapeHtml(options.backBy ?? "Expected back by")
    } <time datetime="${escapeHtml(ends)}">${
      escapeHtml(utcText(ends))
    }</time></p>\n<script>${SCRIPT}</script>\n`
    : "";
  // Only a whole number of seconds: the store's states are checked, but a state
  // passed here by hand is not, and `content` could also carry a URL to go to.
  const seconds = state.refresh ?? 0;
  const refresh = Number.isInteger(seconds) && seconds > 0
    ? `<meta http-equiv="refresh" content="${seconds}">\n`
    : "";
  return `<!doctype html>
<html lang="${escapeHtml(lang)}"${dir}>
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${CSP}">
<meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="robots" content="noindex">
<meta name="referrer" content="no-referrer">
<meta name="color-scheme" content="light dark">
${refresh}<title>${title}</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>
<main>
<div class="badge">${status} &middot; ${
    escapeHtml(options.badge ?? "Maintenance")
  }</div>
${options.brand ? `<p>${escapeHtml(options.brand)}</p>\n` : ""}<h1>${title}</h1>
<p id="message">${message}</p>
${
    state.readOnly
      ? `<p id="read-only">${
        escapeHtml(
          options.readOnly ??
            "The site is read-only for now: you can browse, but changes are paused.",
        )
      }</p>\n`
      : ""
  }${
    options.link
      ? `<p><a href="${escapeHtml(options.link)}">${
        escapeHtml(options.linkText ?? options.link)
      }</a></p>\n`
      : ""
  }${until}</main>
</body>
</html>
`;
}
