/**
 * The code blocks of `README.md` and `docs/*.md`, checked as users will copy them.
 *
 * Every ```ts block is written to its own file in a temp directory, with
 * `@x/maintenance` and its subpaths (`/admin`, `/guard`, `/redis`, `/s3`, `/cli`) pointed
 * at this repository's `mod.ts`, `src/admin.ts`, `src/guard.ts`, `stores/redis.ts`,
 * `stores/s3.ts` and `main.ts`, and `@hono/node-server` (not a dependency of this
 * repository) at a stand-in with its `serve()` signature, and all of them are
 * type-checked by one `deno check` (a child process, so this runs under Bun too). A block
 * that uses `mm`, `app` or `secret` from an earlier block without defining them gets a
 * one-line prelude of `declare const`s for those names, and nothing else: the block
 * itself is checked as the docs have it. Errors are reported as `file.md:line`.
 *
 * Then every block that can run offline (all but those that connect to Redis) is run,
 * in one Deno process, with real values for those names (a controller on a
 * `MemoryStore`, an app with its middleware, a fresh secret), and `Deno.serve` and
 * `serve()` stubbed: it must not throw, and its handler (or `app`) must answer `GET /`
 * with anything but a 500. That catches what types cannot: an option value the library
 * refuses when the example builds its middleware, a handler that throws.
 *
 * ```json blocks must parse. Shell, TOML and plain blocks are skipped, by language tag; a
 * block with a tag this file does not know fails, so that no example is skipped
 * unnoticed. Relative links between the Markdown files (and their `#anchors`) must
 * resolve, since details moved from the README to `docs/`.
 *
 * @module
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { dirname, join, normalize } from "node:path";
import { pathToFileURL } from "node:url";
import {
  cleanEnv,
  makeTempDir,
  removeDir,
  ROOT,
  runProcess,
} from "./helpers.ts";

/** A fenced code block of a Markdown file. */
interface Block {
  /** The Markdown file, relative to the repository (`README.md`, `docs/fleet.md`). */
  file: string;
  /** The language tag, lower case (`""` when there is none). */
  lang: string;
  /** Line of the opening fence in `file` (1-based). */
  line: number;
  /** The code, with the fence's indentation removed. */
  code: string;
}

/** Type-checked with `deno check`. */
const CHECKED = new Set(["ts", "typescript"]);
/** Parsed with `JSON.parse`. */
const PARSED = new Set(["json"]);
/** Not checkable here: shell sessions, usage text. */
const SKIPPED = new Set([
  "sh",
  "bash",
  "shell",
  "console",
  "text",
  "toml",
  "",
]);

/** The fenced blocks of a Markdown text, in order (fences may be indented, in lists). */
function fencedBlocks(file: string, markdown: string): Block[] {
  const lines = markdown.split("\n");
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^( *)(`{3,})\s*([^\s`]*)[^`]*$/.exec(lines[i]);
    if (!open) continue;
    const [, indent, fence, lang] = open;
    const close = new RegExp(`^ *${fence}\\s*$`);
    const body: string[] = [];
    let j = i + 1;
    while (j < lines.length && !close.test(lines[j])) {
      body.push(
        lines[j].startsWith(indent)
          ? lines[j].slice(indent.length)
          : lines[j].trimStart(),
      );
      j++;
    }
    assert.ok(
      j < lines.length,
      `${file}:${i + 1}: code block is never closed`,
    );
    blocks.push({
      file,
      lang: lang.toLowerCase(),
      line: i + 1,
      code: body.join("\n"),
    });
    i = j;
  }
  return blocks;
}

const MOD = pathToFileURL(`${ROOT}/mod.ts`).href;

/** The package's entry points, pointed at this repository's files. */
const ENTRIES: Record<string, string> = {
  "": MOD,
  "/admin": pathToFileURL(`${ROOT}/src/admin.ts`).href,
  "/bypass": pathToFileURL(`${ROOT}/src/bypass.ts`).href,
  "/guard": pathToFileURL(`${ROOT}/src/guard.ts`).href,
  "/redis": pathToFileURL(`${ROOT}/stores/redis.ts`).href,
  "/s3": pathToFileURL(`${ROOT}/stores/s3.ts`).href,
  "/cloudflare": pathToFileURL(`${ROOT}/stores/cloudflare.ts`).href,
  "/deno-kv": pathToFileURL(`${ROOT}/stores/deno_kv.ts`).href,
  "/cli": pathToFileURL(`${ROOT}/main.ts`).href,
};
/** Where `@hono/node-server` points: a file next to the blocks' files. */
const NODE_SERVER_STUB = "./__hono_node_server.ts";

/** What examples may import: the package's entry points, Hono, redis, the Node server. */
const ALLOWED_IMPORT =
  /^(@x\/maintenance(\/(admin|bypass|guard|redis|s3|cloudflare|deno-kv|cli))?|hono(\/.*)?|redis|@hono\/node-server)$/;

/**
 * `@hono/node-server`'s `serve()`, as far as the examples use it. Running, it hands the
 * fetch handler to the runner (as the `Deno.serve` stub does) instead of listening.
 */
const NODE_SERVER_SOURCE = `
export interface Options {
  fetch: (request: Request, ...rest: never[]) => unknown;
  port?: number;
  hostname?: string;
}
export interface AddressInfo {
  address: string;
  family: string;
  port: number;
}
export function serve(
  options: Options,
  listeningListener?: (info: AddressInfo) => void,
): { close(callback?: () => void): void } {
  const served = (globalThis as { __served?: unknown[] }).__served;
  served?.push(options.fetch);
  listeningListener?.({ address: "127.0.0.1", family: "IPv4", port: options.port ?? 3000 });
  return { close: (callback) => callback?.() };
}
`;

/** The package's specifiers (and `@hono/node-server`), pointed at this repository's files. */
function rewriteImports(code: string): string {
  return code
    .replace(
      /(["'])@x\/maintenance(\/(?:admin|guard|redis|s3|cloudflare|cli))?\1/g,
      (_, q: string, sub: string | undefined) => q + ENTRIES[sub ?? ""] + q,
    )
    .replace(
      /(["'])@hono\/node-server\1/g,
      (_, q: string) => q + NODE_SERVER_STUB + q,
    );
}

/**
 * Names that examples take from an earlier block, and how the prelude declares them.
 * The type imports are aliased, so they never clash with a block's own imports.
 */
const CONTEXT: Record<string, string> = {
  mm: "declare const mm: __Maintenance;",
  app: "declare const app: __Hono<{ Variables: __MaintenanceVariables }>;",
  secret: "declare const secret: string;",
};

/** Whether `code` defines `name` itself (a declaration or an import). */
function defines(code: string, name: string): boolean {
  return new RegExp(
    `\\b(?:const|let|var|function|class)\\s+${name}\\b|` +
      `\\bimport\\b[^;]*?\\b${name}\\b[^;]*?\\bfrom\\b`,
  ).test(code);
}

/** The names of {@linkcode CONTEXT} that `code` uses without defining them. */
function contextNames(code: string): string[] {
  return Object.keys(CONTEXT).filter((name) =>
    new RegExp(`\\b${name}\\b`).test(code) && !defines(code, name)
  );
}

/**
 * The file to check for a block: the prelude on line 1 (so that line n of the block is
 * line n + 1 of the file), the block, and `export {}` so that every file is a module.
 */
function checkedSource(block: Block): string {
  const names = contextNames(block.code);
  const prelude = names.length === 0 ? "" : [
    `import type { Hono as __Hono } from "hono";`,
    `import type { Maintenance as __Maintenance, ` +
    `MaintenanceVariables as __MaintenanceVariables } from "${MOD}";`,
    ...names.map((n) => CONTEXT[n]),
  ].join(" ");
  return `${prelude}\n${rewriteImports(block.code)}\nexport {};\n`;
}

/**
 * For running a block: the names it takes from earlier blocks, as real values (a
 * controller on a `MemoryStore`, an app with its middleware, a fresh secret), and, after
 * it, its `app` (if any) exported for the runner.
 */
function runSource(block: Block): string {
  const names = contextNames(block.code);
  // The prelude's app answers through the prelude's mm when there is one (so a block's
  // mm.enable() shows on it), else through a controller of its own: never through the
  // block's own mm, which is not defined yet when the prelude runs.
  const appMm = names.includes("mm")
    ? "mm"
    : "__createMaintenance({ store: new __MemoryStore() })";
  const values: Record<string, string> = {
    mm: "const mm = __createMaintenance({ store: new __MemoryStore() });",
    app: "const app = new __Hono<{ Variables: __MaintenanceVariables }>(); " +
      `app.use(${appMm}.middleware());`,
    secret: "const secret = crypto.randomUUID();",
  };
  const prelude = names.length === 0 ? "" : [
    `import { Hono as __Hono } from "hono";`,
    `import { createMaintenance as __createMaintenance, ` +
    `MemoryStore as __MemoryStore, ` +
    `type MaintenanceVariables as __MaintenanceVariables } from "${MOD}";`,
    ...names.map((n) => values[n]),
  ].join(" ");
  const app = /\bapp\b/.test(block.code);
  return `${prelude}\n${rewriteImports(block.code)}\n` +
    `export const __app = ${app ? "app" : "undefined"};\n`;
}

/** Blocks that cannot run offline in a moment, and why. */
function cannotRun(block: Block): string | undefined {
  if (/\bcreateClient\(/.test(block.code)) return "connects to Redis";
  return undefined;
}

/**
 * Imports each block in turn in one Deno process (cwd: the temp directory, so a default
 * `FileStore` finds no state: off), with `Deno.serve` (and the `@hono/node-server`
 * stand-in's `serve`) keeping the handler instead of listening; then asks the served
 * handler, the default export's `fetch` or the block's `app` for `GET /`. Prints one
 * JSON line: per file, the status or the error.
 */
const RUNNER = `
const files = JSON.parse(Deno.args[0]);
const results = {};
for (const file of files) {
  const served = [];
  globalThis.__served = served;
  Deno.serve = (...args) => {
    served.push(args.find((a) => typeof a === "function") ?? args[0]?.handler);
    return { finished: Promise.resolve(), shutdown: () => Promise.resolve(),
      ref() {}, unref() {}, addr: { hostname: "127.0.0.1", port: 0, transport: "tcp" } };
  };
  try {
    const mod = await import("./" + file);
    const fetch = served[0] ?? mod.default?.fetch ?? mod.__app?.fetch;
    let status = null;
    if (typeof fetch === "function") {
      const info = { remoteAddr: { hostname: "127.0.0.1", port: 1, transport: "tcp" } };
      const res = await fetch(new Request("http://localhost/"), info);
      status = res.status;
      await res.body?.cancel();
    }
    results[file] = { status };
  } catch (e) {
    results[file] = { error: String(e?.stack ?? e) };
  }
}
console.log(JSON.stringify(results));
`;

/** The file name for a block: its Markdown file and line, so messages can say where it is. */
function fileName(block: Block): string {
  const stem = block.file.replace(/\.md$/, "").replace(/[^A-Za-z0-9]+/g, "_");
  return `${stem}_md_line_${String(block.line).padStart(4, "0")}.ts`;
}

/** `file.md:line` of a generated file name and a line in it (line 1 is the prelude). */
function whereOf(name: string, line = 1): string {
  const block = BLOCKS.find((b) => fileName(b) === name.replace(/^run_/, ""));
  if (!block) return name;
  // File line 1 is the prelude; file line 2 is the line after the fence.
  return `${block.file}:${block.line + line - 1}`;
}

/** `deno check` output with the temp files' positions turned into Markdown lines. */
function toMarkdownLines(output: string, dir: string): string {
  const prefix = pathToFileURL(dir).href.replace(/\/$/, "");
  return output
    // deno-lint-ignore no-control-regex
    .replace(/\u001b\[[0-9;]*m/g, "")
    .replaceAll(prefix + "/", "")
    .replace(
      /([A-Za-z0-9_]+_md_line_\d+\.ts):(\d+):(\d+)/g,
      (_, name: string, line: string, col: string) =>
        `${whereOf(name, Number(line))}:${col}`,
    );
}

/** The Markdown files whose examples are checked: the README and `docs/*.md`. */
const MARKDOWN_FILES = [
  "README.md",
  ...readdirSync(`${ROOT}/docs`).filter((f) => f.endsWith(".md")).sort()
    .map((f) => `docs/${f}`),
];
/** Files whose relative links are checked too (their code is not). */
const LINKED_FILES = [...MARKDOWN_FILES, "tests/README.md"];

const BLOCKS = MARKDOWN_FILES.flatMap((file) =>
  fencedBlocks(file, readFileSync(`${ROOT}/${file}`, "utf8"))
);

/**
 * GitHub's anchor for a heading: lower case, markup and punctuation dropped, spaces as
 * hyphens; a repeated heading gets `-1`, `-2`, ...
 */
function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  let fence: string | undefined;
  for (const line of markdown.split("\n")) {
    const f = /^ *(`{3,})/.exec(line);
    if (f) {
      if (fence === undefined) fence = f[1];
      else if (f[1].length >= fence.length) fence = undefined;
      continue;
    }
    if (fence !== undefined) continue;
    const h = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!h) continue;
    const slug = h[1]
      .replace(/\[([^\]]*)\]\([^)]*\)/g, "$1")
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, "")
      .replace(/\s/g, "-");
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    anchors.add(n === 0 ? slug : `${slug}-${n}`);
  }
  return anchors;
}

/** The relative links (and images) of a Markdown text outside code, with their lines. */
function relativeLinks(markdown: string): { target: string; line: number }[] {
  const links: { target: string; line: number }[] = [];
  let fence: string | undefined;
  markdown.split("\n").forEach((text, i) => {
    const f = /^ *(`{3,})/.exec(text);
    if (f) {
      if (fence === undefined) fence = f[1];
      else if (f[1].length >= fence.length) fence = undefined;
      return;
    }
    if (fence !== undefined) return;
    const prose = text.replace(/`[^`]*`/g, "");
    for (const m of prose.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (!/^[a-z][a-z0-9+.-]*:/i.test(m[1])) {
        links.push({ target: m[1], line: i + 1 });
      }
    }
  });
  return links;
}

describe("README and docs examples", () => {
  it("every code block has a language tag this test checks or knowingly skips", () => {
    const unknown = BLOCKS.filter((b) =>
      !CHECKED.has(b.lang) && !PARSED.has(b.lang) && !SKIPPED.has(b.lang)
    ).map((b) => `${b.file}:${b.line}: \`\`\`${b.lang}`);
    assert.deepEqual(unknown, [], "add the tag to CHECKED, PARSED or SKIPPED");
    assert.ok(
      BLOCKS.filter((b) => CHECKED.has(b.lang)).length >= 10,
      "the README's TypeScript blocks were not found",
    );
  });

  it("imports only the package's entry points, hono, redis and @hono/node-server", () => {
    const bad: string[] = [];
    for (const b of BLOCKS.filter((b) => CHECKED.has(b.lang))) {
      for (const m of b.code.matchAll(/\bfrom\s+["']([^"']+)["']/g)) {
        if (!ALLOWED_IMPORT.test(m[1])) {
          bad.push(`${b.file}:${b.line}: ${m[1]}`);
        }
      }
    }
    assert.deepEqual(bad, []);
  });

  it("relative links between the Markdown files resolve, anchors included", () => {
    const bad: string[] = [];
    const anchors = new Map<string, Set<string>>();
    const anchorsIn = (file: string) => {
      let set = anchors.get(file);
      if (!set) {
        set = anchorsOf(readFileSync(`${ROOT}/${file}`, "utf8"));
        anchors.set(file, set);
      }
      return set;
    };
    for (const file of LINKED_FILES) {
      const text = readFileSync(`${ROOT}/${file}`, "utf8");
      for (const { target, line } of relativeLinks(text)) {
        const [path, anchor] = target.split("#", 2);
        const linked = path === ""
          ? file
          : normalize(join(dirname(file), decodeURI(path)));
        if (!existsSync(`${ROOT}/${linked}`)) {
          bad.push(`${file}:${line}: ${target}: no such file`);
        } else if (
          anchor !== undefined && linked.endsWith(".md") &&
          !anchorsIn(linked).has(anchor)
        ) {
          bad.push(`${file}:${line}: ${target}: no such heading in ${linked}`);
        }
      }
    }
    assert.deepEqual(bad, []);
  });

  it("json blocks parse", () => {
    for (const b of BLOCKS.filter((b) => PARSED.has(b.lang))) {
      assert.doesNotThrow(
        () => JSON.parse(b.code),
        `${b.file}:${b.line}: not valid JSON`,
      );
    }
  });

  // Timeouts of their own: `bun test` gives a test 5 s unless told otherwise.
  it("every ts block type-checks (one deno check over all of them)", {
    timeout: 120_000,
  }, async () => {
    const blocks = BLOCKS.filter((b) => CHECKED.has(b.lang));
    const dir = await makeTempDir("readme-examples-");
    try {
      await writeFile(`${dir}/__hono_node_server.ts`, NODE_SERVER_SOURCE);
      const files: string[] = [];
      for (const b of blocks) {
        const file = `${dir}/${fileName(b)}`;
        await writeFile(file, checkedSource(b));
        files.push(file);
      }
      const r = await runProcess("deno", [
        "check",
        "--quiet",
        "--no-lock",
        "--config",
        `${ROOT}/deno.json`,
        ...files,
      ], { cwd: dir, timeoutMs: 110_000 });
      assert.equal(
        r.code,
        0,
        `deno check failed for the docs' examples:\n${
          toMarkdownLines(r.stderr + r.stdout, dir)
        }`,
      );
    } finally {
      await removeDir(dir);
    }
  });

  it("every ts block that can run offline runs, and its app answers GET /", {
    timeout: 120_000,
  }, async () => {
    const blocks = BLOCKS.filter((b) => CHECKED.has(b.lang) && !cannotRun(b));
    assert.ok(blocks.length >= 10, "too few blocks to run");
    const dir = await makeTempDir("readme-run-");
    try {
      await writeFile(`${dir}/__hono_node_server.ts`, NODE_SERVER_SOURCE);
      const files: string[] = [];
      for (const b of blocks) {
        const file = `run_${fileName(b)}`;
        await writeFile(`${dir}/${file}`, runSource(b));
        files.push(file);
      }
      await writeFile(`${dir}/runner.js`, RUNNER);
      const r = await runProcess("deno", [
        "run",
        "-A",
        "--no-check",
        "--no-lock",
        "--config",
        `${ROOT}/deno.json`,
        "runner.js",
        JSON.stringify(files),
      ], {
        cwd: dir,
        timeoutMs: 60_000,
        env: cleanEnv({
          // What the examples read from the environment.
          MAINTENANCE_ADMIN_TOKEN: "0123456789abcdef0123456789abcdef",
          MAINTENANCE_COOKIE_KEY: "docs-example-cookie-key-0123456789abcdef",
          SESSION_SECRET: "docs-example-session-secret",
          R2_ACCESS_KEY_ID: "readme-example",
          R2_SECRET_ACCESS_KEY: "readme-example",
        }),
      });
      assert.equal(r.code, 0, `the runner failed:\n${r.stderr}${r.stdout}`);
      const results = JSON.parse(r.stdout.trim().split("\n").at(-1)!) as Record<
        string,
        { status?: number | null; error?: string }
      >;
      const failures: string[] = [];
      for (const [file, res] of Object.entries(results)) {
        const where = whereOf(file);
        if (res.error !== undefined) failures.push(`${where}: ${res.error}`);
        // A handler that throws is Hono's 500: the example's route is broken.
        else if (res.status === 500) failures.push(`${where}: GET / gave 500`);
      }
      assert.deepEqual(failures, []);
      assert.equal(Object.keys(results).length, blocks.length);
    } finally {
      await removeDir(dir);
    }
  });

  it("the prelude supplies only names a block does not define", () => {
    // What the check above relies on: a block that defines mm itself is checked
    // without a declared one, so a broken definition cannot hide behind the prelude.
    assert.deepEqual(
      contextNames(`const mm = createMaintenance();\nawait mm.disable();`),
      [],
    );
    assert.deepEqual(contextNames(`await mm.enable({ secret });`), [
      "mm",
      "secret",
    ]);
    assert.deepEqual(
      contextNames(`import { Hono } from "hono";\nconst app = new Hono();`),
      [],
    );
    assert.equal(
      rewriteImports(`import { S3Store } from "@x/maintenance/s3";`),
      `import { S3Store } from "${ENTRIES["/s3"]}";`,
    );
    assert.equal(
      rewriteImports(`import { guard } from "@x/maintenance/guard";`),
      `import { guard } from "${ENTRIES["/guard"]}";`,
    );
    assert.equal(
      rewriteImports(`import { serve } from "@hono/node-server";`),
      `import { serve } from "${NODE_SERVER_STUB}";`,
    );
  });
});
