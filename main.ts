/**
 * The command line: `deno task maintenance on|off|status|run`, and the npm package's
 * `maintenance` bin (`npx @x/maintenance on`, `bunx @x/maintenance on`; a bare
 * `npx maintenance` outside a project that has the package runs an unrelated package).
 *
 * Every command names the state file (absolute path) or S3 object it used. Exit codes:
 * 0 done (and, for `status --exit-code`, maintenance is off), 3 `status --exit-code`
 * and maintenance is on, 2 usage error (stderr names the argument; nothing is written),
 * 1 the store failed (stderr says why and what to change). `run` exits with its
 * command's status (128+N for signal N, 127 not found), or 1 when the state could not
 * be set back.
 *
 * @example
 * ```sh
 * deno task maintenance on --message "Back at 14:00" --until 2030-01-01T14:00:00Z
 * deno task maintenance on --read-only --for 30m --note "migrating orders"
 * deno task maintenance run --read-only -- ./migrate.sh --all
 * deno task maintenance status --json
 * deno task maintenance status --exit-code || echo "maintenance is on"
 * deno task maintenance off --json
 * ```
 *
 * @module
 */
import { closest } from "./src/_options.ts";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { constants, hostname, userInfo } from "node:os";
import process from "node:process";
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
  warmSharedCache,
} from "./src/_env_config.ts";
import { generateSecret } from "./src/_secret.ts";
import { disabledState, enabledState } from "./src/_enable.ts";
import { parseDuration } from "./src/_duration.ts";
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
  status    print the current state: since when, by whom, the note, the time left
  run [options for on] -- CMD [ARGS...]
            switch on, run CMD, and set back the state found when CMD ends
            (however it ends); exits with CMD's status

Options for on (and run):
  -m, --message TEXT        message shown on the 503 page
      --read-only           read-only maintenance: GET, HEAD and OPTIONS pass,
                            other methods get the 503
      --for DURATION        end it by itself after 90s, 30m, 2h, 1d or 1h30m
                            (from now, or from --from)
      --until ISO-8601      end it by itself then (not with --for)
      --from ISO-8601       start of a scheduled window (requests pass until then)
      --retry-after SECONDS Retry-After when no end time is known
      --refresh SECONDS     send a Refresh header on the page
      --secret TEXT         bypass secret: visiting /TEXT sets a cookie that lets
                            the browser through (16-128 of A-Z a-z 0-9 - _; the
                            app needs bypassCookie() from @x/maintenance/bypass)
      --with-secret         generate a bypass secret and print it (once)

Options for on, off and run (who and why, for operators, never shown to visitors):
      --by NAME             who switches it (default: user@host, e.g. alice@web-1)
      --note TEXT           why (status prints it)

Options for on, off and status:
      --json                print one JSON object: enabled (now), readOnly (now),
                            bypass (whether a secret is set; never its hash),
                            state (with updatedBy, note, updatedAt, endsAt),
                            store, exists; with --with-secret also secret (once)

Options for status:
      --exit-code           exit 3 when maintenance is on, 0 when it is off

Where the state lives (all commands):
      --file PATH           state file (else $MAINTENANCE_STATE_FILE,
                            else ./maintenance_mode_state.txt)
      --s3 s3://bucket/key  S3 object (else $MAINTENANCE_S3_URL; endpoint from
                            $MAINTENANCE_S3_ENDPOINT, credentials from AWS_*)
  With $MAINTENANCE_REDIS_URL (and $MAINTENANCE_CACHE_KEY), on/off/run also delete
  the shared cache key, so every server reads the new state at once.
  -h, --help                show this help
  -V, --version             print the version

Every command prints the absolute path of the state file (or the S3 object) it used.
Exit codes: 0 done, 1 the store failed, 2 usage error,
3 maintenance is on (status --exit-code only); run: CMD's status (128+N when a
signal N ended it; 127 CMD not found), or 1 when the state could not be set back.`;

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
  "read-only": { type: "boolean" },
  for: { type: "string" },
  by: { type: "string" },
  note: { type: "string" },
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

/** An instant as the sentence shows it: to the second (`2026-12-05T14:02:11Z`). */
function when(iso: string): string {
  return iso.replace(/\.\d+Z$/, "Z");
}

/** A span for people: `42 s`, `12 min`, `1 h 46 min`, `3 d 2 h`. */
function span(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s} s`;
  const min = Math.floor(s / 60);
  if (min < 60) return `${min} min`;
  const h = Math.floor(min / 60);
  if (h < 24) return `${h} h${min % 60 ? ` ${min % 60} min` : ""}`;
  return `${Math.floor(h / 24)} d${h % 24 ? ` ${h % 24} h` : ""}`;
}

/**
 * The operator's note as the sentence shows it: as written when that is plain, else
 * as a JSON string (escaped: newlines, terminal controls, or a `;` that would read as
 * the sentence's next part).
 */
function noteShown(note: string): string {
  const quoted = terminalSafe(JSON.stringify(note));
  return quoted.slice(1, -1) === note && !note.includes(";") &&
      note.trim() === note
    ? note
    : quoted;
}

/** ` by alice@web-1: migrating orders`, or what of it the state has. */
function whoShown(state: MaintenanceState): string {
  const by = state.updatedBy === undefined
    ? ""
    : ` by ${terminalSafe(JSON.stringify(state.updatedBy)).slice(1, -1)}`;
  return by + (state.note ? `: ${noteShown(state.note)}` : "");
}

/**
 * The state in one line: `maintenance mode is ON (read-only) since
 * 2026-12-05T14:02:11Z (12 min) by alice@web-1: migrating orders; until … (1 h 46 min
 * left); message: "…"`. `since` false leaves out since when (for the state just
 * written).
 */
function describe(
  state: MaintenanceState,
  now: number,
  since = true,
): string {
  const active = isActive(toSnapshot(state), now);
  const readOnly = state.enabled && state.readOnly === true;
  const startsMs = state.startsAt ? Date.parse(state.startsAt) : -Infinity;
  const endsMs = state.endsAt ? Date.parse(state.endsAt) : Infinity;
  const scheduled = !active && state.enabled && startsMs > now;
  const ended = !active && state.enabled && endsMs <= now;
  let head = `maintenance mode is ${active ? "ON" : "OFF"}`;
  if (active && readOnly) head += " (read-only)";
  const parts: string[] = [];
  if (scheduled || ended) {
    parts.push(head);
    if (scheduled) {
      parts.push(
        `scheduled${readOnly ? " (read-only)" : ""} from ${
          when(state.startsAt!)
        } (in ${span(startsMs - now)})${whoShown(state)}`,
      );
      if (state.endsAt) parts.push(`until ${when(state.endsAt)}`);
    } else {
      parts.push(
        `the window ended at ${when(state.endsAt!)} (${
          span(now - endsMs)
        } ago)`,
      );
      const who = whoShown(state);
      if (who) parts.push(`set${who}`);
    }
  } else {
    // On since the write, or since the window opened when that came later.
    const updatedMs = state.updatedAt ? Date.parse(state.updatedAt) : NaN;
    const fromMs = active && state.startsAt && !(updatedMs >= startsMs)
      ? startsMs
      : updatedMs;
    if (since && !Number.isNaN(fromMs)) {
      head += ` since ${when(new Date(fromMs).toISOString())} (${
        span(now - fromMs)
      })`;
    }
    parts.push(head + whoShown(state));
    if (active && state.endsAt) {
      parts.push(
        `until ${when(state.endsAt)} (${span(endsMs - now)} left)`,
      );
    }
  }
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
 * The one JSON object of `--json`: `enabled` (now), `readOnly` (read-only maintenance
 * in force now), `bypass` (whether a secret is set),
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
  const enabled = isActive(toSnapshot(state), now);
  return terminalSafe(JSON.stringify({
    enabled,
    readOnly: enabled && state.readOnly === true,
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
  const { values, tokens } = parsed;
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
  // What follows `--` is run's command; everything before it, this CLI's.
  const end = tokens.findIndex((t) => t.kind === "option-terminator");
  const positionals: string[] = [];
  const commandLine: string[] = [];
  for (const t of tokens) {
    if (t.kind !== "positional") continue;
    (end >= 0 && t.index > tokens[end].index ? commandLine : positionals)
      .push(t.value);
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
      throw new UsageError("missing command: on, off, status or run");
    }
    const command = positionals[0];
    if (!["on", "off", "status", "run"].includes(command)) {
      throw new UsageError(
        `unknown command "${command}"; use on, off, status or run`,
      );
    }
    if (positionals.length > 1) {
      throw new UsageError(
        `unexpected argument "${positionals[1]}" after "${command}"` +
          (command === "run"
            ? `; put the command after --: maintenance run [options] -- ${
              positionals[1]
            } ...`
            : ""),
      );
    }
    if (command === "run" && commandLine.length === 0) {
      throw new UsageError(
        "run needs a command after --: maintenance run [options] -- CMD [ARGS...]",
      );
    }
    if (command !== "run" && commandLine.length > 0) {
      throw new UsageError(
        `unexpected argument "${commandLine[0]}" after "${command}"` +
          "; only run takes a command after --",
      );
    }
    const onOnly = [
      "message",
      "retry-after",
      "from",
      "until",
      "for",
      "read-only",
      "refresh",
      "secret",
      "with-secret",
    ] as const;
    if (command !== "on" && command !== "run") {
      for (const k of onOnly) {
        if (values[k] !== undefined) {
          throw new UsageError(`--${k} only goes with "on" or "run"`);
        }
      }
    }
    if (command === "status") {
      for (const k of ["by", "note"] as const) {
        if (values[k] !== undefined) {
          throw new UsageError(`--${k} only goes with "on", "off" or "run"`);
        }
      }
    }
    if (command !== "status" && values["exit-code"]) {
      throw new UsageError('--exit-code only goes with "status"');
    }
    if (command === "run" && values.json) {
      throw new UsageError(
        '--json does not go with "run": the command\'s own output is on stdout',
      );
    }
    if (values.file !== undefined && values.file.trim() === "") {
      throw new UsageError("--file needs a path");
    }
    if (values.by !== undefined && values.by.trim() === "") {
      throw new UsageError(
        "--by needs a name, such as --by alice (or leave it out for user@host)",
      );
    }
    const now = Date.now();
    // Validate everything before touching the store, so bad input changes nothing.
    const by = command === "status" ? "" : values.by ?? defaultBy();
    let state: MaintenanceState | undefined;
    let generated: string | undefined;
    if (command === "on" || command === "run") {
      if (values.secret !== undefined && values["with-secret"]) {
        throw new UsageError("give either --secret or --with-secret, not both");
      }
      if (values.for !== undefined && values.until !== undefined) {
        throw new UsageError(
          "give either --for or --until, not both (--for 2h ends it 2 hours " +
            "after it starts; --until gives the time)",
        );
      }
      let forMs: number | undefined;
      try {
        forMs = values.for === undefined
          ? undefined
          : parseDuration(values.for);
      } catch (e) {
        throw new UsageError(`--for: ${(e as Error).message}`);
      }
      if (values["with-secret"]) generated = generateSecret();
      const startsAt = instant(values.from, "--from");
      try {
        state = await enabledState({
          message: values.message,
          retryAfter: seconds(values["retry-after"], "--retry-after"),
          refresh: seconds(values.refresh, "--refresh"),
          startsAt,
          endsAt: instant(values.until, "--until"),
          // from the start: now, or --from's time
          for: forMs,
          readOnly: values["read-only"],
          by,
          note: values.note,
          secret: generated ?? values.secret,
        }, now);
      } catch (e) {
        if (e instanceof UsageError) throw e;
        const message = (e as Error).message;
        throw new UsageError(
          flagNames(
            values.for === undefined
              ? message
              : message.replace(/\bendsAt\b/g, "the end (--from + --for)"),
          ),
        );
      }
    } else if (command === "off") {
      try {
        state = disabledState({ by, note: values.note });
      } catch (e) {
        throw new UsageError(flagNames((e as Error).message));
      }
    }
    if (command === "run") checkRunAllowed();
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
    if (command === "run") {
      return await runWrapped(commandLine, {
        store,
        cacheSettings,
        state: state!,
        by,
        generated,
        io,
      });
    }
    const written: MaintenanceState = {
      ...state!,
      updatedAt: new Date(now).toISOString(),
    };
    await warmSharedCache(cacheSettings);
    await store.write(serializeState(written));
    // Said now: the state is written even if the cache below fails, and a generated
    // secret is in it, so it must be shown.
    if (values.json) {
      io.out(jsonReport(written, store, now, true, generated));
    } else {
      io.out(`${describe(written, now, false)} (${whereDescribed(store)})`);
      if (generated !== undefined) {
        io.out(`bypass secret (shown once, not stored): ${generated}`);
        io.out(
          `visit /${generated} on the site to get the bypass cookie ` +
            "(the app needs bypass: bypassCookie() from @x/maintenance/bypass)",
        );
      }
    }
    if (command === "on" && written.endsAt === undefined) io.err(NO_END);
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

/** What `on` without an end says on stderr. */
const NO_END = "no end set: maintenance stays on until 'maintenance off'";

/** The core's names for options, in a message, as this CLI's flags. */
function flagNames(message: string): string {
  return message.replace(/\bendsAt\b/g, "--until")
    .replace(/\bstartsAt\b/g, "--from")
    .replace(/^message\b/, "--message")
    .replace(/^secret/, "--secret")
    .replace(/^by\b/, "--by")
    .replace(/^note\b/, "--note")
    .replace(/^for\b/, "--for");
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

/**
 * Whether Deno lets this process use `descriptor` without asking (always true on Bun
 * and Node): the default `--by` must never stop at a permission prompt.
 */
function granted(descriptor: { name: string; [key: string]: string }): boolean {
  const deno = (globalThis as {
    Deno?: {
      permissions: { querySync(d: unknown): { state: string } };
    };
  }).Deno;
  if (deno === undefined) return true;
  try {
    return deno.permissions.querySync(descriptor).state === "granted";
  } catch {
    return false;
  }
}

/** The first of `names` set in the environment, where reading it is allowed. */
function envFirst(...names: string[]): string | undefined {
  for (const name of names) {
    if (!granted({ name: "env", variable: name })) continue;
    const v = processEnv(name)?.trim();
    if (v) return v;
  }
  return undefined;
}

/** `f()`, or undefined when it throws. */
function attempt<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch {
    return undefined;
  }
}

/**
 * The default `--by`: the OS user and host, `alice@web-1`; from `$USER`/`$HOSTNAME`
 * when the OS will not say (a uid without a passwd entry, Deno without
 * `--allow-sys`), `unknown` for a part nothing names. Control characters are dropped
 * and it is cut at 200 characters, so it is always a valid `updatedBy`.
 */
function defaultBy(): string {
  const sys = granted({ name: "sys" });
  // Bun says "unknown" when $USER is unset (a container's root): ask /etc/passwd.
  const user = attempt(() => sys ? userInfo().username : undefined)
    ?.replace(/^unknown$/, "") ||
    envFirst("USER", "LOGNAME", "USERNAME") || attempt(passwdName) ||
    "unknown";
  const host =
    attempt(() =>
      granted({ name: "sys", kind: "hostname" }) ? hostname() : undefined
    ) || envFirst("HOSTNAME", "COMPUTERNAME") || "unknown";
  // deno-lint-ignore no-control-regex
  const by = `${user}@${host}`.replace(/[\u0000-\u001f\u007f-\u009f]/g, "");
  return [...by].slice(0, 200).join("");
}

/**
 * This process's user name from `/etc/passwd`, by uid (not on Deno, whose `userInfo()`
 * does this already).
 */
function passwdName(): string | undefined {
  const g = globalThis as { Deno?: unknown; process?: { getuid?(): number } };
  const uid = g.Deno === undefined ? g.process?.getuid?.() : undefined;
  if (uid === undefined) return undefined;
  return readFileSync("/etc/passwd", "utf8").split("\n")
    .map((line) => line.split(":"))
    .find((f) => f.length > 2 && f[2] === String(uid))?.[0];
}

/** Under Deno, `run` needs `--allow-run`: a usage error before anything is written. */
function checkRunAllowed(): void {
  if (!granted({ name: "run" })) {
    throw new UsageError(
      "run starts a command: under Deno, allow it with --allow-run " +
        "(deno run --allow-run ... main.ts run ...)",
    );
  }
}

/** `text` as one shell word (POSIX sh): as it is when safe, else in single quotes. */
function shellWord(text: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(text)
    ? text
    : `'${text.replaceAll("'", `'\\''`)}'`;
}

/**
 * The command that writes `state` by hand (after `run` could not set it back):
 * `maintenance off --by … --file …`, or the `on` with its flags. A bypass secret
 * cannot be set back from its hash: the advice says so.
 */
function handCommand(
  state: MaintenanceState,
  store: StateStore,
  by: string,
  now: number,
): string {
  const words = ["maintenance"];
  const snap = toSnapshot(state);
  // A window that has ended reads as off: write off (on refuses a past --until).
  const on = state.enabled && snap.endsAtMs > now;
  words.push(on ? "on" : "off");
  if (on) {
    if (state.readOnly) words.push("--read-only");
    if (state.message) words.push("-m", state.message);
    if (state.startsAt && snap.startsAtMs > now) {
      words.push("--from", state.startsAt);
    }
    if (state.endsAt) words.push("--until", state.endsAt);
    if (state.retryAfter !== undefined) {
      words.push("--retry-after", String(state.retryAfter));
    }
    if (state.refresh !== undefined) {
      words.push("--refresh", String(state.refresh));
    }
  }
  words.push("--by", by);
  if (state.note) words.push("--note", state.note);
  const d = store.description;
  if (d) words.push(d.startsWith("s3://") ? "--s3" : "--file", d);
  return words.map(shellWord).join(" ") +
    (on && state.bypass
      ? " (its bypass secret cannot be set back from the stored hash: add " +
        "--secret with the old secret, or --with-secret for a new one)"
      : "");
}

/** The signals `run` passes on to its command (and never dies of while it runs). */
const FORWARDED = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

/** How a command ended: its exit code, or the signal that ended it. */
interface Ended {
  code: number | null;
  signal: string | null;
  /** Set when it could not be started at all. */
  error?: Error & { code?: string };
}

/**
 * While `run` runs: SIGINT, SIGTERM and SIGHUP do not end this process. Before the
 * command starts, the first one is kept (`received`), so `run` does not start it and
 * sets the state back; while it runs, they are passed on to it; after it has ended,
 * they are ignored until the state is back. `close()` gives them back their default.
 */
interface SignalRelay {
  /** The first signal received before the command started. */
  readonly received: string | undefined;
  /** Runs `argv` with this process's stdin, stdout and stderr; resolves when it has ended. */
  spawn(argv: string[]): Promise<Ended>;
  close(): void;
}

function signalRelay(): SignalRelay {
  let child: ReturnType<typeof spawn> | undefined;
  let received: string | undefined;
  let ended = false;
  const forward = (signal: string) => {
    if (child === undefined) {
      received ??= signal;
    } else if (!ended && child.pid !== undefined) {
      // process.kill, not child.kill: after child.kill(sig) Deno reports the child as
      // ended by sig even when it caught it and exited with a status of its own.
      try {
        process.kill(child.pid, signal);
      } catch {
        // already gone: its exit is on the way
      }
    }
  };
  const listening: string[] = [];
  for (const s of FORWARDED) {
    try {
      process.on(s, forward);
      listening.push(s);
    } catch {
      // a runtime that cannot listen for it (Windows' SIGHUP): it keeps its default
    }
  }
  return {
    get received() {
      return received;
    },
    async spawn(argv) {
      const result = await new Promise<Ended>((resolve) => {
        try {
          child = spawn(argv[0], argv.slice(1), { stdio: "inherit" });
        } catch (e) {
          resolve({ code: null, signal: null, error: e as Error });
          return;
        }
        child.once(
          "error",
          (e) => resolve({ code: null, signal: null, error: e }),
        );
        child.once("exit", (code, signal) => resolve({ code, signal }));
      });
      ended = true;
      return result;
    },
    close() {
      for (const s of listening) process.off(s, forward);
    },
  };
}

/** Exit status of a command that `ended`, as a shell gives it. */
function exitStatus(ended: Ended): number {
  if (ended.error) return ended.error.code === "ENOENT" ? 127 : 126;
  return ended.code ?? signalStatus(ended.signal ?? "");
}

/** 128 + the signal's number, as a shell gives a process that `signal` ended. */
function signalStatus(signal: string): number {
  return 128 + ((constants.signals as Record<string, number>)[signal] ?? 0);
}

/** What `run` needs to switch on, run, and set back. */
interface RunContext {
  store: StateStore;
  cacheSettings: CacheSettings;
  /** The state to switch on (validated, without `updatedAt`). */
  state: MaintenanceState;
  by: string;
  generated?: string;
  io: CliIo;
}

/**
 * `maintenance run … -- CMD ARGS`: reads the state in the store, switches on, runs the
 * command, and writes back the state it found (with `updatedBy` the same `--by`) when
 * the command ends, however it ends; returns the command's exit status. Its own lines
 * go to stderr: stdout is the command's. When the state was changed by someone else
 * while the command ran, it is left as they set it. When setting it back fails, the
 * error names the command to run by hand, and the status is 1 (or the command's, when
 * that is not 0).
 */
async function runWrapped(argv: string[], run: RunContext): Promise<number> {
  const { store, cacheSettings, io } = run;
  // From the start: a Ctrl-C between the switch and the command must not leave it on.
  const signals = signalRelay();
  try {
    const foundText = await store.read();
    const found = readStrict(store, foundText);
    const not = () => `did not run ${argv.map(shellWord).join(" ")}`;
    if (signals.received !== undefined) {
      io.err(`${signals.received} before the switch: ${not()}`);
      return signalStatus(signals.received);
    }
    const startedAt = Date.now();
    const written: MaintenanceState = {
      ...run.state,
      updatedAt: new Date(startedAt).toISOString(),
    };
    const writtenText = serializeState(written);
    await warmSharedCache(cacheSettings);
    await store.write(writtenText);
    io.err(
      `${describe(written, startedAt, false)} (${whereDescribed(store)})`,
    );
    if (run.generated !== undefined) {
      io.err(`bypass secret (shown once, not stored): ${run.generated}`);
      io.err(
        `visit /${run.generated} on the site to get the bypass cookie ` +
          "(the app needs bypass: bypassCookie() from @x/maintenance/bypass)",
      );
    }
    try {
      await invalidateSharedCache(cacheSettings);
    } catch (e) {
      // Servers may not see maintenance yet: do not run the job; set back what was found.
      io.err(`error: ${(e as Error).message}`);
      io.err(not());
      return await restore(found, writtenText, run, 0) || 1;
    }
    if (signals.received !== undefined) {
      io.err(`${signals.received} before the command started: ${not()}`);
      return await restore(
        found,
        writtenText,
        run,
        signalStatus(signals.received),
      );
    }
    const ended = await signals.spawn(argv);
    const status = exitStatus(ended);
    io.err(
      ended.error
        ? `could not start ${shellWord(argv[0])}: ${
          ended.error.code === "ENOENT"
            ? "command not found"
            : ended.error.message
        }`
        : ended.signal !== null
        ? `${
          shellWord(argv[0])
        } was ended by ${ended.signal} (status ${status})`
        : `${shellWord(argv[0])} exited with status ${status}`,
    );
    return await restore(found, writtenText, run, status);
  } finally {
    signals.close();
  }
}

/**
 * Writes back `found` (as `run` found it; a missing file becomes off), unless the store
 * no longer holds what `run` wrote. Returns `status`, or 1 instead of 0 when the state
 * could not be set back (stderr then says what to run by hand).
 */
async function restore(
  found: MaintenanceState,
  writtenText: string,
  run: RunContext,
  status: number,
): Promise<number> {
  const { store, io, by } = run;
  const now = Date.now();
  const back: MaintenanceState = {
    ...found,
    updatedBy: by,
    updatedAt: new Date(now).toISOString(),
  };
  try {
    const current = await store.read();
    if (current !== writtenText) {
      // Someone switched it meanwhile (by hand, another job): theirs is the newer word.
      let now_ = "it holds no valid state";
      try {
        now_ = describe(readStrict(store, current), now);
      } catch {
        // said as it is
      }
      io.err(
        `the ${
          where(store)
        } was changed while the command ran, so it is left as ` +
          `it is, not set back: ${now_} (${whereDescribed(store)})`,
      );
      return status;
    }
    await warmSharedCache(run.cacheSettings);
    await store.write(serializeState(back));
  } catch (e) {
    io.err(
      `error: could not set the state back after the command: ${
        (e as Error).message
      }${timeoutHint(e, store)}`,
    );
    io.err(
      `the state may still be the one run wrote; set it back by hand: ${
        handCommand(found, store, by, now)
      }`,
    );
    return status || 1;
  }
  io.err(
    `set back: ${describe(back, now, false)} (${whereDescribed(store)})`,
  );
  try {
    await invalidateSharedCache(run.cacheSettings);
  } catch (e) {
    // Running the job again is not the fix here.
    io.err(
      `error: ${
        (e as Error).message.replace(
          "run the command again, or delete the key",
          "delete the key",
        )
      }`,
    );
    return status || 1;
  }
  return status;
}

if (import.meta.main) {
  const g = globalThis as { process?: { argv: string[]; exitCode?: number } };
  const code = await runCli(g.process?.argv.slice(2) ?? []);
  if (g.process) g.process.exitCode = code;
}
