/**
 * The command line: `deno task maintenance on|off|status`, and the npm package's
 * `maintenance` bin (`npx @x/maintenance on`, `bunx @x/maintenance on`; a bare
 * `npx maintenance` outside a project that has the package runs an unrelated package).
 *
 * Every command names the state file (absolute path) or S3 object it used. Exit codes:
 * 0 done (and, for `status --exit-code`, maintenance is off), 3 `status --exit-code`
 * and maintenance is on, 2 usage error (stderr names the argument; nothing is written),
 * 1 the store failed (stderr says why and what to change).
 *
 * @example
 * ```sh
 * deno task maintenance on --message "Back at 14:00" --until 2030-01-01T14:00:00Z
 * deno task maintenance status --json
 * deno task maintenance status --exit-code || echo "maintenance is on"
 * deno task maintenance off --json
 * ```
 *
 * @module
 */
import { closest } from "./src/_options.ts";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import {
  type CacheSettings,
  cacheSettingsFromEnv,
  ConfigError,
  invalidateSharedCache,
  processEnv,
  storeFromEnv,
  strictProcessEnv,
} from "./src/_env_config.ts";
import { generateSecret } from "./src/_secret.ts";
import { enabledState } from "./src/_enable.ts";
import {
  isActive,
  isNaiveDateTime,
  type MaintenanceState,
  parseInstant,
  parseState,
  serializeState,
  StateParseError,
  toSnapshot,
} from "./src/_state.ts";
import { StoreError } from "./stores/_store_error.ts";
import type { StateStore } from "./stores/_types.ts";

/**
 * The CLI's usage text.
 *
 * @example
 * ```ts
 * import { USAGE } from "@x/maintenance/cli";
 * console.log(USAGE);
 * ```
 */
export const USAGE: string = `Usage: maintenance <command> [options]

Commands:
  on        switch maintenance mode on
  off       switch maintenance mode off
  status    print the current state

Options for on:
  -m, --message TEXT        message shown on the 503 page
      --retry-after SECONDS Retry-After when no end time is known
      --from ISO-8601       start of a scheduled window (requests pass until then)
      --until ISO-8601      end of the window (maintenance ends by itself then)
      --refresh SECONDS     send a Refresh header on the page
      --secret TEXT         bypass secret: visiting /TEXT sets a cookie that lets
                            the browser through (16-128 of A-Z a-z 0-9 - _)
      --with-secret         generate a bypass secret and print it (once)

Options for on, off and status:
      --json                print one JSON object: enabled (now), bypass (whether
                            a secret is set; never its hash), state, store, exists;
                            with --with-secret also secret (shown once)

Options for status:
      --exit-code           exit 3 when maintenance is on, 0 when it is off

Where the state lives (all commands):
      --file PATH           state file (else $MAINTENANCE_STATE_FILE,
                            else ./maintenance_mode_state.txt)
      --s3 s3://bucket/key  S3 object (else $MAINTENANCE_S3_URL; endpoint from
                            $MAINTENANCE_S3_ENDPOINT, credentials from AWS_*)
  With $MAINTENANCE_REDIS_URL (and $MAINTENANCE_CACHE_KEY), on/off also delete the
  shared cache key, so every server reads the new state at once.
  -h, --help                show this help
  -V, --version             print the version

Every command prints the absolute path of the state file (or the S3 object) it used.
Exit codes: 0 done, 1 the store failed, 2 usage error,
3 maintenance is on (status --exit-code only).`;

/**
 * Where the CLI writes; the process's streams by default.
 *
 * @example
 * ```ts
 * import { type CliIo, runCli } from "@x/maintenance/cli";
 * const lines: string[] = [];
 * const io: CliIo = { out: (l) => lines.push(l), err: (l) => lines.push(l) };
 * await runCli(["status", "--json"], io);
 * ```
 */
export interface CliIo {
  /** Standard output, one line at a time. */
  out: (line: string) => void;
  /** Standard error, one line at a time. */
  err: (line: string) => void;
}

const defaultIo: CliIo = {
  out: (line) => console.log(line),
  err: (line) => console.error(line),
};

class UsageError extends Error {}

/** The options, for `parseArgs`. */
const OPTIONS = {
  message: { type: "string", short: "m" },
  "retry-after": { type: "string" },
  from: { type: "string" },
  until: { type: "string" },
  refresh: { type: "string" },
  secret: { type: "string" },
  "with-secret": { type: "boolean" },
  json: { type: "boolean" },
  "exit-code": { type: "boolean" },
  file: { type: "string" },
  s3: { type: "string" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "V" },
} as const;

/** What follows every usage error, instead of the whole usage text. */
const SEE_HELP = "run 'maintenance --help' for the commands and options";

/** Exit code of `status --exit-code` when maintenance is on. */
const EXIT_ON = 3;

/**
 * Joins `--retry-after -5` into `--retry-after=-5`: `parseArgs` takes a value that
 * starts with a dash for an option it forgot and says so in its own words; a negative
 * number is meant as the value, and gets this CLI's message about the value.
 */
function joinNegativeValues(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--") {
      out.push(...args.slice(i));
      break;
    }
    const next = args[i + 1];
    const name = /^--([^=]+)$/.exec(a)?.[1] ??
      Object.entries(OPTIONS).find(([, o]) =>
        "short" in o && `-${o.short}` === a
      )?.[0];
    const option = name !== undefined
      ? (OPTIONS as Record<string, { type: string }>)[name]
      : undefined;
    if (
      option?.type === "string" && next !== undefined &&
      /^-\d/.test(next)
    ) {
      out.push(`--${name}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

/** The message for what `parseArgs` refused, in this CLI's words where it has them. */
function parseError(e: unknown): string {
  const err = e as Error & { code?: unknown };
  const message = String(err?.message ?? e);
  if (err.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
    const raw = /^Unknown option '([^']*)'/.exec(message)?.[1];
    if (raw !== undefined) return unknownOption(raw);
  }
  // "Option '-m, --message <value>' argument missing", "Option '-m' argument is
  // ambiguous. ...", "Option '--json' does not take an argument"
  const m =
    /^Option '([^']*)' (argument missing|argument is ambiguous|does not take)/
      .exec(message);
  if (m) {
    const short = /^-(\w)\b/.exec(m[1])?.[1];
    const flag = /--[\w-]+/.exec(m[1])?.[0] ??
      `--${
        Object.entries(OPTIONS).find(([, o]) =>
          "short" in o && o.short === short
        )?.[0] ?? m[1]
      }`;
    if (m[2] === "does not take") return `${flag} takes no value`;
    return m[2] === "argument missing"
      ? `${flag} needs a value`
      : `${flag} needs a value; to give one that starts with a dash, write ${flag}=VALUE`;
  }
  return message;
}

/**
 * The package's version: from the `package.json` next to this module in the npm build
 * (which the build writes, with any `--set-version`), else from `deno.json` next to it
 * (this repository, JSR). Each must name this package: the repository's own
 * `package.json` only lists development dependencies.
 */
async function packageVersion(): Promise<string> {
  for (const name of ["package.json", "deno.json"]) {
    const url = new URL(name, import.meta.url);
    try {
      const text = url.protocol === "file:"
        ? await readFile(fileURLToPath(url), "utf8")
        : await (await fetch(url)).text();
      const { name: pkg, version } = JSON.parse(text);
      if (pkg === PACKAGE && typeof version === "string") return version;
    } catch {
      // not there, or not readable: try the next
    }
  }
  throw new Error(
    `cannot find the version of ${PACKAGE}: neither package.json nor deno.json ` +
      `next to ${import.meta.url} names it (under Deno, allow reading them: --allow-read)`,
  );
}

const PACKAGE = "@x/maintenance";

/**
 * What to say about an option `parseArgs` does not know. Its own advice (pass it after
 * `--` as a positional argument) is wrong here: the CLI takes no such argument.
 */
function unknownOption(raw: string): string {
  const name = raw.replace(/^-+/, "").split("=")[0].toLowerCase();
  const best = closest(name.replaceAll("_", "-"), Object.keys(OPTIONS));
  const hint = best !== undefined ? `; did you mean --${best}?` : "";
  return `Unknown option '${raw}'${hint}`;
}

function seconds(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) > 31_536_000) {
    throw new UsageError(
      `${flag} must be a whole number of seconds (0 to 31536000), not "${value}"`,
    );
  }
  return Number(value);
}

function instant(value: string | undefined, flag: string): string | undefined {
  if (value === undefined) return undefined;
  const ms = parseInstant(value);
  if (Number.isNaN(ms)) {
    if (isNaiveDateTime(value)) {
      // Servers in other zones would read it differently: say which zone to add.
      const offset = localOffset(value);
      throw new UsageError(
        `${flag} "${value}" has no time zone; add this machine's offset (${value}${offset}) ` +
          `or Z for UTC (${value}Z)`,
      );
    }
    const colon = /^(.*[Tt ].*[+-])(\d{2})(\d{2})$/.exec(value);
    throw new UsageError(
      `${flag} must be an ISO-8601 date and time such as 2030-01-01T14:00:00Z, not "${value}"` +
        (colon &&
            !Number.isNaN(parseInstant(`${colon[1]}${colon[2]}:${colon[3]}`))
          ? `; write the offset with a colon: ${colon[1]}${colon[2]}:${
            colon[3]
          }`
          : ""),
    );
  }
  return new Date(ms).toISOString();
}

/** This machine's UTC offset at a local date-time, as `+01:00`. */
function localOffset(naive: string): string {
  const [y, mo, d, h, mi] = naive.split(/[-Tt :.]/).map(Number);
  const minutes = -new Date(y, mo - 1, d, h, mi).getTimezoneOffset();
  const abs = Math.abs(minutes);
  return `${minutes < 0 ? "-" : "+"}${
    String(Math.floor(abs / 60)).padStart(2, "0")
  }:${String(abs % 60).padStart(2, "0")}`;
}

/**
 * JSON text with the characters a terminal acts on or that reorder what it shows
 * (C1 controls, bidi controls, line and paragraph separators) written as `\uXXXX`
 * escapes, which `JSON.stringify` leaves raw. The state may have been written by
 * another tool, so its message is not trusted to be free of them.
 */
function terminalSafe(json: string): string {
  return json.replace(
    /[\u0080-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g,
    (ch) => "\\u" + ch.charCodeAt(0).toString(16).padStart(4, "0"),
  );
}

function describe(state: MaintenanceState, now: number): string {
  const active = isActive(toSnapshot(state), now);
  const parts = [`maintenance mode is ${active ? "ON" : "OFF"}`];
  if (
    !active && state.enabled && state.startsAt &&
    Date.parse(state.startsAt) > now
  ) {
    parts.push(`scheduled from ${state.startsAt}`);
  }
  if (
    !active && state.enabled && state.endsAt && Date.parse(state.endsAt) <= now
  ) {
    parts.push(`the window ended at ${state.endsAt}`);
  }
  if (active && state.endsAt) parts.push(`until ${state.endsAt}`);
  if (state.message) {
    parts.push(`message: ${terminalSafe(JSON.stringify(state.message))}`);
  }
  if (state.enabled && state.bypass) parts.push("secret bypass set");
  return parts.join("; ");
}

/** What the store keeps the state in, for messages: "state file" or "S3 object". */
function where(store: StateStore): string {
  return store.description?.startsWith("s3://") ? "S3 object" : "state file";
}

/** "state file /abs/path" or "S3 object s3://bucket/key". */
function whereDescribed(store: StateStore): string {
  return `${where(store)} ${store.description ?? "(unnamed store)"}`;
}

/**
 * The one JSON object of `--json`: `enabled` (now), `bypass` (whether a secret is set),
 * `state` (without the bypass hash), `store` (absolute path or `s3://` URL), `exists`
 * (whether the file or object exists), and a generated `secret`, shown this once.
 */
function jsonReport(
  state: MaintenanceState,
  store: StateStore,
  now: number,
  exists: boolean,
  secret?: string,
): string {
  // The stored hash is enough to mint a bypass cookie (without a cookieKey), and
  // this output lands in CI logs: say that a bypass is set, never the hash.
  const { bypass, ...shown } = state;
  return terminalSafe(JSON.stringify({
    enabled: isActive(toSnapshot(state), now),
    bypass: bypass !== undefined,
    state: shown,
    store: store.description ?? null,
    exists,
    ...(secret !== undefined ? { secret } : {}),
  }));
}

function readStrict(
  store: StateStore,
  text: string | null,
): MaintenanceState {
  try {
    return parseState(text);
  } catch (e) {
    if (e instanceof StateParseError) {
      throw new StoreError(
        `${store.description ?? "the store"}: ${e.message}; ` +
          "run `maintenance on` or `maintenance off` to write a valid state",
        "CORRUPT",
        { cause: e },
      );
    }
    throw e;
  }
}

/**
 * Runs the CLI with `args` (without the program name) and returns the exit code.
 *
 * @example
 * ```ts
 * import { runCli } from "@x/maintenance/cli";
 * const code = await runCli(["status", "--json", "--file", "/tmp/state.txt"]);
 * ```
 */
export async function runCli(
  args: string[],
  io: CliIo = defaultIo,
): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: joinNegativeValues(args),
      allowPositionals: true,
      strict: true,
      tokens: true,
      options: OPTIONS,
    });
  } catch (e) {
    io.err(`error: ${parseError(e)}`);
    io.err(SEE_HELP);
    return 2;
  }
  const { values, positionals, tokens } = parsed;
  if (values.help) {
    io.out(USAGE);
    return 0;
  }
  if (values.version) {
    try {
      io.out(await packageVersion());
      return 0;
    } catch (e) {
      io.err(`error: ${(e as Error).message}`);
      return 1;
    }
  }
  let store: StateStore | undefined;
  try {
    // A second -m, --file, ... would silently replace the first (git joins two -m).
    const seen = new Set<string>();
    for (const t of tokens) {
      if (t.kind !== "option" || t.value === undefined) continue;
      if (seen.has(t.name)) {
        throw new UsageError(
          `--${t.name} is given more than once; give it once`,
        );
      }
      seen.add(t.name);
    }
    if (positionals.length === 0) {
      throw new UsageError("missing command: on, off or status");
    }
    if (positionals.length > 1) {
      throw new UsageError(
        `unexpected argument "${positionals[1]}" after "${positionals[0]}"`,
      );
    }
    const command = positionals[0];
    if (command !== "on" && command !== "off" && command !== "status") {
      throw new UsageError(
        `unknown command "${command}"; use on, off or status`,
      );
    }
    const onOnly = [
      "message",
      "retry-after",
      "from",
      "until",
      "refresh",
      "secret",
      "with-secret",
    ] as const;
    if (command !== "on") {
      for (const k of onOnly) {
        if (values[k] !== undefined) {
          throw new UsageError(`--${k} only goes with "on"`);
        }
      }
    }
    if (command !== "status" && values["exit-code"]) {
      throw new UsageError('--exit-code only goes with "status"');
    }
    if (values.file !== undefined && values.file.trim() === "") {
      throw new UsageError("--file needs a path");
    }
    const now = Date.now();
    // Validate everything before touching the store, so bad input changes nothing.
    let state: MaintenanceState | undefined;
    let generated: string | undefined;
    if (command === "on") {
      if (values.secret !== undefined && values["with-secret"]) {
        throw new UsageError("give either --secret or --with-secret, not both");
      }
      if (values["with-secret"]) generated = generateSecret();
      try {
        state = await enabledState({
          message: values.message,
          retryAfter: seconds(values["retry-after"], "--retry-after"),
          refresh: seconds(values.refresh, "--refresh"),
          startsAt: instant(values.from, "--from"),
          endsAt: instant(values.until, "--until"),
          secret: generated ?? values.secret,
        }, now);
      } catch (e) {
        if (e instanceof UsageError) throw e;
        throw new UsageError(
          (e as Error).message.replace(/\bendsAt\b/g, "--until")
            .replace(/\bstartsAt\b/g, "--from")
            .replace(/^message\b/, "--message")
            .replace(/^secret/, "--secret"),
        );
      }
    }
    let cacheSettings: CacheSettings;
    try {
      // A variable that cannot be read (Deno without --allow-env) is an error, not unset.
      store = await storeFromEnv(
        { file: values.file, s3: values.s3 },
        strictProcessEnv,
      );
      // MAINTENANCE_REDIS_URL, checked before writing (status does not use it)
      cacheSettings = cacheSettingsFromEnv(
        command === "status" ? processEnv : strictProcessEnv,
      );
    } catch (e) {
      if (e instanceof ConfigError) throw new UsageError(e.message);
      throw e;
    }
    if (command === "status") {
      const text = await store.read();
      const current = readStrict(store, text);
      const active = isActive(toSnapshot(current), now);
      if (values.json) {
        io.out(jsonReport(current, store, now, text !== null));
      } else if (text === null) {
        io.out(
          `maintenance mode is OFF: no ${where(store)} exists at ${
            store.description ?? "the store"
          } (a missing ${where(store)} reads as OFF)`,
        );
      } else {
        io.out(`${describe(current, now)} (${whereDescribed(store)})`);
      }
      return values["exit-code"] && active ? EXIT_ON : 0;
    }
    const written: MaintenanceState = {
      ...(command === "on" ? state! : { enabled: false }),
      updatedAt: new Date(now).toISOString(),
    };
    await store.write(serializeState(written));
    // Said now: the state is written even if the cache below fails, and a generated
    // secret is in it, so it must be shown.
    if (values.json) {
      io.out(jsonReport(written, store, now, true, generated));
    } else {
      io.out(`${describe(written, now)} (${whereDescribed(store)})`);
      if (generated !== undefined) {
        io.out(`bypass secret (shown once, not stored): ${generated}`);
        io.out(`visit /${generated} on the site to get the bypass cookie`);
      }
    }
    // Servers sharing a Redis cache (MAINTENANCE_REDIS_URL) read the new state at once.
    await invalidateSharedCache(cacheSettings);
    return 0;
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`error: ${e.message}`);
      io.err(SEE_HELP);
      return 2;
    }
    io.err(`error: ${(e as Error).message}${timeoutHint(e, store)}`);
    return 1;
  }
}

/** For an S3 call that timed out: the setting that bounds it here, and what a write
 * that timed out means. */
function timeoutHint(e: unknown, store: StateStore | undefined): string {
  if (!(e instanceof StoreError) || e.code !== "TIMEOUT") return "";
  const ms = (store as { timeoutMs?: unknown } | undefined)?.timeoutMs;
  if (!store?.description?.startsWith("s3://") || typeof ms !== "number") {
    return "";
  }
  return ` (for this command: MAINTENANCE_S3_TIMEOUT_MS, now ${ms})` +
    (/^cannot write\b/.test(e.message)
      ? "; check with `maintenance status`"
      : "");
}

if (import.meta.main) {
  const g = globalThis as { process?: { argv: string[]; exitCode?: number } };
  const code = await runCli(g.process?.argv.slice(2) ?? []);
  if (g.process) g.process.exitCode = code;
}
