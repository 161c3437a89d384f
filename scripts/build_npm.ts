/**
 * `deno task build:npm`: the npm package (Node 20+, Bun) from the same source as the JSR
 * package. `deno pack` transpiles the exports of `deno.json` (`.`, `./admin`, `./guard`,
 * `./redis`, `./s3`, `./cloudflare`, `./deno-kv`, `./cli`) to `.js` + `.d.ts` (files and `publish.exclude` as for
 * JSR); this script finishes the `package.json` that `deno pack` cannot express, adds
 * the `maintenance` bin, checks the result and packs it again with `npm pack`:
 *
 * - `hono` is a peer dependency; the optional parts' packages are optional peers, each
 *   allowed only in the entry points {@linkcode PEERS_BY_ENTRY} names:
 *   `@aws-sdk/client-s3` for `./s3` and the CLI's S3 store, `redis` for the CLI's Redis
 *   cache (ranges from the `imports` of `deno.json`);
 * - `bin.maintenance` is `bin/maintenance.mjs` (copied from the repo), `engines.node`;
 * - checks: `type: module`; every export of `deno.json` with `types` and `import`;
 *   README and LICENSE in; the README's relative links and every image of the shipped
 *   Markdown (README.md, docs/*.md) resolve in the package; no tests, scripts or
 *   TypeScript sources; no `@deno/shim-deno`; no absolute path of this machine; every bare import is `node:*`
 *   or a peer, and each entry point imports only the peers it is allowed; `import "."`
 *   loads no other entry point's module; the bin loads no package at start (the CLI
 *   loads `stores/s3.js` and the AWS SDK, or `redis`, by dynamic import when
 *   configured).
 *
 * Writes `dist/package/` (the unpacked package), `dist/<name>-<version>.tgz` and
 * `dist/build.json` (file list and sizes, read by scripts/npm_smoke.ts), and prints the
 * sizes: the tarball, the JS each entry point loads as shipped, and the table of
 * `deno task size` (scripts/size.ts: the typical import and each entry bundled and
 * minified). The size limits fail `deno task size` (which CI runs); here they fail the
 * build only with `--check-size`.
 *
 * Usage: deno task build:npm [--set-version X.Y.Z] [--check-size]
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { homedir } from "node:os";
import { dirname, join, relative, resolve, sep } from "node:path";
import process from "node:process";
import { fileURLToPath, pathToFileURL } from "node:url";
import { gzipSync } from "node:zlib";
import ts from "typescript";
import { checkLimits, markdown, measure, type SizeReport } from "./size.ts";

const root = resolve(fileURLToPath(new URL("..", import.meta.url)));
const dist = join(root, "dist");
const pkgDir = join(dist, "package");

/** The only package that `import "@x/maintenance"` may load. */
const CORE_PEER = "hono";
/**
 * The packages each entry point (export key, or `bin`) may import: `static` ones on
 * load, `dynamic` ones only by `import()`. Any other package is a problem, so a new
 * optional peer is a decision made here. Every package but hono is an optional peer.
 */
const PEERS_BY_ENTRY: Record<string, { static: string[]; dynamic?: string[] }> =
  {
    ".": { static: [CORE_PEER] },
    "./admin": { static: [CORE_PEER] },
    "./bypass": { static: [CORE_PEER] },
    "./guard": { static: [CORE_PEER] },
    "./redis": { static: [] }, // the client's shape only: the app brings its client
    "./s3": { static: ["@aws-sdk/client-s3"] },
    "./cloudflare": { static: [] }, // the bindings' shapes only: no package
    "./deno-kv": { static: [] }, // the kv's shape only: the app brings Deno.openKv() or @deno/kv
    "./cli": { static: [], dynamic: ["@aws-sdk/client-s3", "redis"] },
    bin: { static: [], dynamic: ["@aws-sdk/client-s3", "redis"] },
  };
/** The bin name and the repo file that becomes it in the package. */
const BIN = { name: "maintenance", source: "bin/maintenance.mjs" };
const ENGINES = { node: ">=20" };
const DESCRIPTION =
  "Maintenance mode for Hono apps: a 503 page, JSON or redirect while it is on, with the " +
  "state in a file or one S3 object behind a read-through cache. A port of " +
  "django-maintenance-mode.";
const KEYWORDS = [
  "hono",
  "maintenance",
  "maintenance-mode",
  "middleware",
  "503",
];

/** What `deno info --json` says about one module (the fields used here). */
interface InfoModule {
  specifier: string;
  size?: number;
  dependencies?: {
    specifier: string;
    isDynamic?: boolean;
    code?: { specifier?: string; error?: string };
  }[];
}

/** A module's imports, split into package files, Node built-ins and bare packages. */
interface ImportGraph {
  /** Package files reached (paths relative to the package), entry first. */
  files: string[];
  /** Bare specifiers (not `node:`), with whether some import of it is static. */
  bare: Map<string, { static: boolean; from: string }>;
  /** Package files reached only through `import()`. */
  dynamicFiles: string[];
}

interface CommandResult {
  status: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], cwd: string): CommandResult {
  const r = spawnSync(cmd, args, {
    cwd,
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1" },
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error) throw r.error;
  return { status: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
}

function runOrDie(cmd: string, args: string[], cwd: string): CommandResult {
  const r = run(cmd, args, cwd);
  if (r.status !== 0) {
    console.error(r.stdout + r.stderr);
    throw new Error(`${cmd} ${args.join(" ")} failed (exit ${r.status})`);
  }
  return r;
}

function listFiles(dir: string, base = dir): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...listFiles(p, base));
    else out.push(relative(base, p).split(sep).join("/"));
  }
  return out.sort();
}

/** The package's own name, for telling its self-references from dependencies. */
function packageOf(specifier: string): string {
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
}

/**
 * The modules `entry` (a package path) loads, following its static imports; `import()`
 * targets are listed apart and not followed. Uses `deno info` on the built JS, so imports
 * inside comments and strings do not count.
 */
function importGraph(entry: string): ImportGraph {
  const r = runOrDie(
    "deno",
    ["info", "--json", "--no-config", "--no-lock", entry],
    pkgDir,
  );
  const modules = new Map<string, InfoModule>();
  for (const m of (JSON.parse(r.stdout) as { modules: InfoModule[] }).modules) {
    modules.set(m.specifier, m);
  }
  const toPath = (url: string) =>
    relative(pkgDir, fileURLToPath(url)).split(sep).join("/");
  const files: string[] = [];
  const dynamicFiles = new Set<string>();
  const bare = new Map<string, { static: boolean; from: string }>();
  const seen = new Set<string>();
  const visit = (url: string) => {
    if (seen.has(url)) return;
    seen.add(url);
    files.push(toPath(url));
    for (const d of modules.get(url)?.dependencies ?? []) {
      const target = d.code?.specifier;
      if (d.specifier.startsWith("node:")) continue;
      if (target?.startsWith("file:")) {
        if (d.isDynamic) dynamicFiles.add(toPath(target));
        else visit(target);
        continue;
      }
      // Bare specifiers do not resolve without a node_modules: record them.
      const prev = bare.get(d.specifier);
      bare.set(d.specifier, {
        static: (prev?.static ?? false) || !d.isDynamic,
        from: prev?.from ?? toPath(url),
      });
    }
  };
  visit(pathToFileURL(join(pkgDir, entry)).href);
  return {
    files,
    bare,
    dynamicFiles: [...dynamicFiles].filter((f) => !files.includes(f)),
  };
}

/** Specifiers a `.d.ts` file imports or re-exports (comments and strings skipped). */
function dtsSpecifiers(text: string): string[] {
  // Declaration files hold no regular expressions, so a scan for comments and strings
  // is exact; keep the code, blank out comments, keep string literals as they are.
  let code = "";
  for (let i = 0; i < text.length;) {
    const c = text[i];
    if (c === "/" && text[i + 1] === "/") {
      while (i < text.length && text[i] !== "\n") i++;
    } else if (c === "/" && text[i + 1] === "*") {
      const end = text.indexOf("*/", i + 2);
      i = end < 0 ? text.length : end + 2;
      code += " ";
    } else if (c === '"' || c === "'" || c === "`") {
      let j = i + 1;
      while (j < text.length && text[j] !== c) j += text[j] === "\\" ? 2 : 1;
      code += text.slice(i, j + 1);
      i = j + 1;
    } else {
      code += c;
      i++;
    }
  }
  const out: string[] = [];
  const re =
    /\b(?:from|import)\s*["']([^"']+)["']|\bimport\s*\(\s*["']([^"']+)["']\s*\)/g;
  for (const m of code.matchAll(re)) out.push(m[1] ?? m[2]);
  return out;
}

/** The `^x.y.z` range of `npm:name@range` in deno.json's imports. */
function rangeFromImports(
  imports: Record<string, string>,
  name: string,
): string {
  const spec = imports[name];
  const m = spec?.match(/^npm:(?:@[^/@]+\/)?[^/@]+@([^/]+)$/);
  if (!m) {
    throw new Error(
      `deno.json "imports" must map "${name}" to "npm:${name}@<range>" (found ${
        JSON.stringify(spec)
      })`,
    );
  }
  return m[1];
}

function kb(bytes: number): string {
  return `${(bytes / 1024).toFixed(1)} KB`;
}

function main(): number {
  const args = process.argv.slice(2);
  const setVersionAt = args.indexOf("--set-version");
  const setVersion = setVersionAt >= 0 ? args[setVersionAt + 1] : undefined;
  const checkSize = args.includes("--check-size");
  if (setVersionAt >= 0 && !setVersion) {
    console.error("--set-version needs a version, such as --set-version 0.2.0");
    return 2;
  }
  const config = JSON.parse(readFileSync(join(root, "deno.json"), "utf8")) as {
    exports: Record<string, string>;
    imports: Record<string, string>;
  };

  // 1. deno pack: JS + .d.ts of every export, README, LICENSE, package.json.
  rmSync(dist, { recursive: true, force: true });
  mkdirSync(pkgDir, { recursive: true });
  const rawTarball = join(dist, "deno-pack.tgz");
  const packArgs = [
    "pack",
    "--no-source-maps",
    "--allow-dirty",
    "-o",
    rawTarball,
  ];
  if (setVersion) packArgs.push("--set-version", setVersion);
  const packed = runOrDie("deno", packArgs, root);
  const packLog = (packed.stdout + packed.stderr).trim();
  console.log(packLog);
  runOrDie(
    "tar",
    ["-xzf", rawTarball, "-C", pkgDir, "--strip-components=1"],
    root,
  );
  rmSync(rawTarball);

  const problems: string[] = [];
  const notes: string[] = [];

  // 2. TypeScript files that no export reaches are copied as they are: drop them.
  for (const f of listFiles(pkgDir)) {
    if (/\.[cm]?tsx?$/.test(f) && !/\.d\.[cm]?ts$/.test(f)) {
      rmSync(join(pkgDir, f));
      notes.push(
        `dropped ${f}: no export reaches it, so deno pack copied it as TypeScript`,
      );
    }
  }

  // 2b. The JS carries no comments: the docs live in the .d.ts (what editors show),
  // and without them the JS an app loads is a third of the size.
  for (const f of listFiles(pkgDir)) {
    if (!/\.js$/.test(f)) continue;
    const path = join(pkgDir, f);
    const out = ts.transpileModule(readFileSync(path, "utf8"), {
      compilerOptions: {
        removeComments: true,
        target: ts.ScriptTarget.ES2022,
        module: ts.ModuleKind.ESNext,
      },
    }).outputText;
    writeFileSync(path, out);
  }
  // The transpiler indents by four spaces and puts each array item on its own line;
  // `deno fmt` writes the JS in the source's own style (two spaces), which reads as
  // the source does and is smaller.
  const jsFiles = listFiles(pkgDir).filter((f) => /\.js$/.test(f))
    .map((f) => join(pkgDir, f));
  const fmt = spawnSync(
    "deno",
    ["fmt", "--quiet", "--no-config", "--line-width=100", ...jsFiles],
    { encoding: "utf8" },
  );
  if (fmt.status !== 0) {
    throw new Error(`deno fmt of the packed JS failed: ${fmt.stderr}`);
  }

  // 3. The bin.
  const binFile = BIN.source;
  mkdirSync(dirname(join(pkgDir, binFile)), { recursive: true });
  copyFileSync(join(root, BIN.source), join(pkgDir, binFile));
  chmodSync(join(pkgDir, binFile), 0o755);

  // 4. The import graphs of the exports and the bin, and the peers they make.
  const packedPkg = JSON.parse(
    readFileSync(join(pkgDir, "package.json"), "utf8"),
  ) as Record<string, unknown>;
  const exportsMap = (packedPkg.exports ?? {}) as Record<
    string,
    { types?: string; import?: string; default?: string }
  >;
  const strip = (p: string | undefined) => p?.replace(/^\.\//, "");
  const coreEntry = strip(exportsMap["."]?.import);
  if (!coreEntry) {
    console.error('build:npm: deno pack wrote no exports["."].import');
    return 1;
  }
  const jsEntries = Object.values(exportsMap).map((e) => strip(e.import))
    .filter((e): e is string => e !== undefined);
  const graphs = new Map<string, ImportGraph>();
  for (const e of [...jsEntries, binFile]) graphs.set(e, importGraph(e));
  const core = graphs.get(coreEntry)!;
  // A package that `import "."` loads is a peer; any other that some export or the bin
  // imports (statically or by import()) is an optional peer.
  const peers = new Map<string, { optional: boolean; from: string }>();
  for (const g of graphs.values()) {
    for (const [spec, how] of g.bare) {
      const name = packageOf(spec);
      if (name === packedPkg.name) {
        problems.push(`${how.from} imports its own package "${spec}"`);
        continue;
      }
      const required = g === core && how.static;
      const prev = peers.get(name);
      peers.set(name, {
        optional: !required && (prev?.optional ?? true),
        from: prev?.from ?? how.from,
      });
    }
  }
  if (peers.has(CORE_PEER)) peers.get(CORE_PEER)!.optional = false;
  for (const [name, p] of peers) {
    if (!p.optional && name !== CORE_PEER) {
      problems.push(
        `import "." loads "${name}" (from ${p.from}); the core may load no package but ${CORE_PEER}`,
      );
    }
  }
  // Each entry point imports only the packages PEERS_BY_ENTRY allows it.
  const entryFiles: [string, string][] = [
    ...Object.entries(exportsMap).flatMap(([key, e]): [string, string][] => {
      const f = strip(e.import);
      return f ? [[key, f]] : [];
    }),
    ["bin", binFile],
  ];
  const peersOf: Record<string, { static: string[]; dynamic: string[] }> = {};
  for (const [key, file] of entryFiles) {
    const allowed = PEERS_BY_ENTRY[key];
    const g = graphs.get(file)!;
    const used = { static: new Set<string>(), dynamic: new Set<string>() };
    const firstUse = new Map<string, string>();
    for (const [spec, how] of g.bare) {
      const name = packageOf(spec);
      used[how.static ? "static" : "dynamic"].add(name);
      if (!firstUse.has(name)) firstUse.set(name, `"${spec}" in ${how.from}`);
    }
    peersOf[key] = {
      static: [...used.static].sort(),
      dynamic: [...used.dynamic].filter((n) => !used.static.has(n)).sort(),
    };
    if (!allowed) {
      problems.push(
        `exports["${key}"] is not in PEERS_BY_ENTRY (scripts/build_npm.ts): say which packages it may import`,
      );
      continue;
    }
    for (const [how, names] of Object.entries(used)) {
      for (const name of names) {
        const ok = how === "static"
          ? allowed.static.includes(name)
          : allowed.static.includes(name) ||
            (allowed.dynamic ?? []).includes(name);
        if (!ok && name !== packedPkg.name) {
          const who = key === "bin" ? "the bin" : `exports["${key}"]`;
          problems.push(
            how === "static" && (allowed.dynamic ?? []).includes(name)
              ? `${who} loads "${name}" on every run (${
                firstUse.get(name)
              }); load it by import() when needed`
              : `${who} imports "${name}" ${
                how === "static" ? "statically" : "by import()"
              } (${firstUse.get(name)}); PEERS_BY_ENTRY does not allow it`,
          );
        }
      }
    }
  }
  // The core's graph holds no other entry point's module.
  const coreReach = new Set([...core.files, ...core.dynamicFiles]);
  for (const [key, file] of entryFiles) {
    if (key !== "." && key !== "bin" && coreReach.has(file)) {
      problems.push(
        `import "." loads ${file}, the module of exports["${key}"]: the core must not hold it`,
      );
    }
  }
  const peerRanges: Record<string, string> = {};
  for (const name of [...peers.keys()].sort()) {
    try {
      peerRanges[name] = rangeFromImports(config.imports, name);
    } catch (e) {
      problems.push(
        `${peers.get(name)!.from} imports "${name}": ${(e as Error).message}`,
      );
    }
  }

  // 5. package.json.
  const deps = { ...(packedPkg.dependencies as Record<string, string> ?? {}) };
  for (const d of Object.keys(deps)) {
    if (peers.has(d)) delete deps[d];
    else {
      problems.push(
        `deno pack listed ${d}@${
          deps[d]
        } as a dependency, but no export imports it`,
      );
    }
  }
  const optionalPeers = [...peers].filter(([, p]) => p.optional).map(([n]) => n)
    .sort();
  const pkg: Record<string, unknown> = {
    name: packedPkg.name,
    version: packedPkg.version,
    description: DESCRIPTION,
    keywords: KEYWORDS,
    license: packedPkg.license ?? "MIT",
    type: packedPkg.type,
    main: packedPkg.main,
    types: packedPkg.types,
    exports: packedPkg.exports,
    bin: { [BIN.name]: `./${binFile}` },
    engines: ENGINES,
    peerDependencies: peerRanges,
    peerDependenciesMeta: Object.fromEntries(
      optionalPeers.map((n) => [n, { optional: true }]),
    ),
  };
  if (Object.keys(deps).length > 0) pkg.dependencies = deps;
  for (const [k, v] of Object.entries(packedPkg)) {
    if (!(k in pkg) && k !== "dependencies") pkg[k] = v;
  }
  writeFileSync(
    join(pkgDir, "package.json"),
    JSON.stringify(pkg, null, 2) + "\n",
  );

  // 6. Checks.
  const files = listFiles(pkgDir);
  const fileSet = new Set(files);
  if (pkg.type !== "module") {
    problems.push(
      `package.json type is ${JSON.stringify(pkg.type)}, not "module"`,
    );
  }
  for (const key of new Set([".", "./s3", ...Object.keys(config.exports)])) {
    const entry = exportsMap[key];
    if (!entry) {
      problems.push(`exports has no "${key}"`);
      continue;
    }
    for (const cond of ["types", "import"] as const) {
      const target = strip(entry[cond]);
      if (!target) problems.push(`exports["${key}"] has no "${cond}"`);
      else if (!fileSet.has(target)) {
        problems.push(
          `exports["${key}"].${cond} is ${target}, which is not in the package`,
        );
      }
    }
  }
  for (const f of ["README.md", "LICENSE", "package.json", binFile]) {
    if (!fileSet.has(f)) problems.push(`${f} is not in the package`);
  }
  for (const f of files) {
    if (
      /^(tests|scripts|\.ci|node_modules|dist)\//.test(f) ||
      (f.startsWith("docs/") && !/\.(md|png)$/.test(f)) ||
      /[._]test\.[cm]?[jt]sx?$/.test(f)
    ) {
      problems.push(
        `${f} should not be in the package (publish.exclude in deno.json)`,
      );
    }
  }
  // The README's relative links (docs/*.md) and the images of all shipped Markdown
  // (`![alt](page-390.png)`, `<img src>`: the docs' screenshots, shipped for that)
  // resolve inside the package, as on JSR.
  for (const f of files.filter((f) => /^(README|docs\/[^/]+)\.md$/.test(f))) {
    const text = readFileSync(join(pkgDir, f), "utf8")
      .replace(/^ *(`{3,})[^]*?^ *\1`* *$/gm, "") // code blocks
      .replace(/`[^`\n]*`/g, ""); // inline code
    const targets = [
      ...text.matchAll(
        f === "README.md" ? /\]\(<?([^)\s>]+)/g : /!\[[^\]]*\]\(<?([^)\s>]+)/g,
      ),
      ...text.matchAll(/<img\b[^>]*?\ssrc=["']([^"']+)/gi),
    ].map((m) => m[1]);
    for (const link of targets) {
      if (/^([a-z][a-z0-9+.-]*:|#|\/)/i.test(link)) continue;
      const target = join(dirname(f), decodeURI(link.split(/[?#]/)[0]))
        .split(sep).join("/");
      if (!fileSet.has(target)) {
        problems.push(
          `${f} ${
            /\.(png|jpe?g|gif|svg|webp)$/i.test(target) ? "shows" : "links to"
          } ${target}, which is not in the package`,
        );
      }
    }
  }
  const home = homedir();
  // Paths of this machine nowhere; in code, no file URL and no Deno shim either (the
  // docs may show a file: URL as an example).
  const forbidden = [root, ...(home.length > 1 ? [home + "/"] : [])];
  const forbiddenInCode = [...forbidden, "file://", "@deno/shim-deno"];
  for (const f of files) {
    const text = readFileSync(join(pkgDir, f), "utf8");
    const code = /\.([cm]?js|d\.[cm]?ts|json)$/.test(f);
    for (const s of code ? forbiddenInCode : forbidden) {
      if (text.includes(s)) problems.push(`${f} contains "${s}"`);
    }
  }
  const reached = new Set<string>();
  for (const g of graphs.values()) {
    for (const f of [...g.files, ...g.dynamicFiles]) reached.add(f);
  }
  // Declarations: every relative import has its .d.ts, every bare one is a peer.
  const dtsSeen = new Set<string>();
  const dtsQueue = Object.values(exportsMap).map((e) => strip(e.types))
    .filter((e): e is string => e !== undefined && fileSet.has(e));
  while (dtsQueue.length > 0) {
    const f = dtsQueue.pop()!;
    if (dtsSeen.has(f)) continue;
    dtsSeen.add(f);
    for (const spec of dtsSpecifiers(readFileSync(join(pkgDir, f), "utf8"))) {
      if (spec.startsWith(".")) {
        const target = join(dirname(f), spec).split(sep).join("/")
          .replace(/\.([cm]?)js$/, ".d.$1ts");
        if (fileSet.has(target)) dtsQueue.push(target);
        else {problems.push(
            `${f} imports "${spec}", but ${target} is not in the package`,
          );}
      } else if (!spec.startsWith("node:") && !peers.has(packageOf(spec))) {
        problems.push(`${f} imports "${spec}", which is not a peer dependency`);
      }
    }
  }

  for (const f of files.filter((f) => /\.[cm]?js$/.test(f))) {
    const dts = f.replace(/\.([cm]?)js$/, ".d.$1ts");
    if (!reached.has(f) && !dtsSeen.has(dts)) {
      notes.push(`${f} is reached by no export nor the bin`);
    }
  }

  // 7. npm pack: the tarball as npm will publish it.
  const npmPacked = runOrDie(
    "npm",
    ["pack", "--json", "--pack-destination", dist, "--loglevel=error"],
    pkgDir,
  );
  const info = (JSON.parse(npmPacked.stdout) as {
    filename: string;
    size: number;
    unpackedSize: number;
    entryCount: number;
    files: { path: string }[];
  }[])[0];
  const tarball = join(dist, info.filename);
  const tarFiles = new Set(info.files.map((f) => f.path));
  const differ = [
    ...files.filter((f) => !tarFiles.has(f)),
    ...[...tarFiles].filter((f) => !fileSet.has(f)),
  ];
  if (differ.length > 0) {
    problems.push(`npm pack left out or added: ${differ.join(", ")}`);
  }

  // 8. Sizes.
  const size = (f: string) => statSync(join(pkgDir, f)).size;
  const sum = (fs: string[]) => fs.reduce((n, f) => n + size(f), 0);
  let sizes: SizeReport | undefined;
  try {
    sizes = measure();
  } catch (e) {
    problems.push(`scripts/size.ts could not measure: ${(e as Error).message}`);
  }
  const coreSet = new Set(core.files);
  const entrySummaries = entryFiles.filter(([key]) => key !== ".").map(
    ([key, file]) => {
      const g = graphs.get(file)!;
      const own = g.files.filter((f) => !coreSet.has(f));
      return {
        key,
        entry: file,
        files: g.files,
        beyondCore: own,
        beyondCoreBytes: sum(own),
        packages: peersOf[key],
        dynamicFiles: g.dynamicFiles,
      };
    },
  );
  const summary = {
    name: pkg.name,
    version: pkg.version,
    tarball: relative(root, tarball),
    packedBytes: info.size,
    unpackedBytes: info.unpackedSize,
    files: files.map((f) => ({ path: f, bytes: size(f) })),
    peerDependencies: peerRanges,
    optionalPeers,
    core: {
      entry: coreEntry,
      files: core.files,
      bytes: sum(core.files),
      gzipBytes: gzipSync(
        Buffer.concat(core.files.map((f) => readFileSync(join(pkgDir, f)))),
        { level: 9 },
      ).length,
      packages: [...core.bare.keys()],
    },
    entries: entrySummaries,
    peersByEntry: peersOf,
    sizes: sizes ?? null,
  };
  writeFileSync(
    join(dist, "build.json"),
    JSON.stringify(summary, null, 2) + "\n",
  );

  const list = (xs: string[]) => xs.length > 0 ? xs.join(", ") : "no package";
  console.log(`\n${pkg.name}@${pkg.version}: ${summary.tarball}`);
  console.log(
    `  tarball ${kb(info.size)}, ${
      kb(info.unpackedSize)
    } unpacked, ${info.entryCount} files`,
  );
  console.log(
    `  peers: ${
      Object.entries(peerRanges).map(([n, r]) =>
        `${n}@${r}${optionalPeers.includes(n) ? " (optional)" : ""}`
      ).join(", ")
    }`,
  );
  console.log(
    `  import "${pkg.name}": ${core.files.length} files, ${
      kb(summary.core.bytes)
    } of JS as ` +
      `shipped (comments stripped; docs are in the .d.ts), ${
        kb(summary.core.gzipBytes)
      } gzipped; and ${list(summary.core.packages)}`,
  );
  for (const e of entrySummaries) {
    const what = e.key === "bin"
      ? "the bin"
      : `import "${pkg.name}${e.key.slice(1)}"`;
    const dyn = [...e.dynamicFiles, ...e.packages.dynamic];
    console.log(
      `  ${what}: ${e.files.length} files, ${e.beyondCore.length} beyond the core's ` +
        `(${kb(e.beyondCoreBytes)}); and ${list(e.packages.static)}` +
        (dyn.length > 0 ? `; by import() only: ${dyn.join(", ")}` : ""),
    );
  }
  if (sizes) {
    console.log(`\n${markdown(sizes, String(pkg.name))}\n`);
    for (const c of checkLimits(sizes)) {
      console.log(`${c.ok ? "size ok" : "size OVER"}: ${c.name}`);
      if (!c.ok) {
        if (checkSize) problems.push(`size: ${c.name}`);
        else notes.push(`over a size limit (deno task size fails): ${c.name}`);
      }
    }
  }
  if (/Could not generate types for/.test(packLog)) {
    notes.push(
      "deno pack wrote no .d.ts for modules whose types no export uses " +
        "(checked: every .d.ts import resolves)",
    );
  }
  for (const n of notes) console.log(`note: ${n}`);
  if (problems.length > 0) {
    console.error(`\nbuild:npm found ${problems.length} problem(s):`);
    for (const p of problems) console.error(`  - ${p}`);
    return 1;
  }
  console.log("build:npm: all checks passed");
  return 0;
}

if (import.meta.main) {
  try {
    process.exitCode = main();
  } catch (e) {
    console.error(`build:npm: ${(e as Error).message}`);
    process.exitCode = 1;
  }
}
