/**
 * Store and cache settings from flags and environment variables, shared by the CLI and
 * the demo. Loads `stores/s3.ts` (and so the AWS SDK) by dynamic import, only when S3 is
 * configured. Not part of `mod.ts`.
 *
 * @module
 */
import { DEFAULT_STATE_FILE, FileStore } from "../stores/file.ts";
import type { StateStore } from "../stores/types.ts";

/**
 * A setting is wrong or half given; the message names the flag or variable and the fix.
 * The CLI exits 2 on it.
 *
 * @example
 * ```ts
 * import { ConfigError } from "./env_config.ts";
 * throw new ConfigError("MAINTENANCE_S3_URL must look like s3://bucket/key");
 * ```
 */
export class ConfigError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/** Reads an environment variable on any runtime; undefined when unset or not allowed. */
export type EnvReader = (name: string) => string | undefined;

/**
 * The process environment, on Deno, Bun or Node (undefined where reading is not allowed).
 *
 * @example
 * ```ts
 * import { processEnv } from "./env_config.ts";
 * processEnv("PORT") ?? "8000";
 * ```
 */
export function processEnv(name: string): string | undefined {
  try {
    const g = globalThis as {
      process?: { env?: Record<string, string | undefined> };
    };
    const v = g.process?.env?.[name];
    return v === "" ? undefined : v;
  } catch {
    return undefined;
  }
}

/** Where the state lives, as flags give it. */
export interface StoreFlags {
  /** `--file PATH`. */
  file?: string;
  /** `--s3 s3://bucket/key`. */
  s3?: string;
}

/**
 * Picks the store: `--s3` / `MAINTENANCE_S3_URL` (with `MAINTENANCE_S3_ENDPOINT`, region
 * and credentials from `AWS_*`), else `--file` / `MAINTENANCE_STATE_FILE`, else
 * `maintenance_mode_state.txt` in the working directory. Throws {@linkcode ConfigError}.
 *
 * @example
 * ```ts
 * import { storeFromEnv } from "./env_config.ts";
 * const store = await storeFromEnv({ file: "state.txt" });
 * ```
 */
export async function storeFromEnv(
  flags: StoreFlags = {},
  env: EnvReader = processEnv,
): Promise<StateStore> {
  const s3Url = flags.s3 ?? env("MAINTENANCE_S3_URL");
  const file = flags.file ?? env("MAINTENANCE_STATE_FILE");
  if (s3Url !== undefined) {
    if (flags.file !== undefined) {
      throw new ConfigError("give either --file or --s3, not both");
    }
    const where = flags.s3 !== undefined ? "--s3" : "MAINTENANCE_S3_URL";
    const { S3Store, parseS3Url } = await import("../stores/s3.ts");
    let target: { bucket: string; key: string };
    try {
      target = parseS3Url(s3Url);
    } catch (e) {
      throw new ConfigError(`${where}: ${(e as Error).message}`);
    }
    const endpoint = env("MAINTENANCE_S3_ENDPOINT");
    if (endpoint !== undefined) {
      let u: URL;
      try {
        u = new URL(endpoint);
      } catch {
        throw new ConfigError(
          `MAINTENANCE_S3_ENDPOINT ${JSON.stringify(endpoint)} is not a URL; ` +
            "write e.g. http://127.0.0.1:9000",
        );
      }
      if (u.protocol !== "http:" && u.protocol !== "https:") {
        throw new ConfigError(
          "MAINTENANCE_S3_ENDPOINT must be an http:// or https:// URL",
        );
      }
    }
    const keyId = env("AWS_ACCESS_KEY_ID");
    const secret = env("AWS_SECRET_ACCESS_KEY");
    if ((keyId === undefined) !== (secret === undefined)) {
      throw new ConfigError(
        keyId === undefined
          ? "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not; set both or neither"
          : "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not; set both or neither",
      );
    }
    const region = env("AWS_REGION") ?? env("AWS_DEFAULT_REGION") ??
      (endpoint !== undefined ? "us-east-1" : undefined);
    const timeout = env("MAINTENANCE_S3_TIMEOUT_MS");
    let timeoutMs: number | undefined;
    if (timeout !== undefined) {
      timeoutMs = Number(timeout);
      if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 60_000) {
        throw new ConfigError(
          "MAINTENANCE_S3_TIMEOUT_MS must be a whole number from 1 to 60000",
        );
      }
    }
    try {
      return new S3Store({
        bucket: target.bucket,
        key: target.key,
        endpoint,
        region,
        forcePathStyle: endpoint !== undefined ? true : undefined,
        credentials: keyId !== undefined && secret !== undefined
          ? {
            accessKeyId: keyId,
            secretAccessKey: secret,
            sessionToken: env("AWS_SESSION_TOKEN"),
          }
          : undefined,
        timeoutMs,
      });
    } catch (e) {
      throw new ConfigError(`${where}: ${(e as Error).message}`);
    }
  }
  const path = file ?? DEFAULT_STATE_FILE;
  try {
    return new FileStore(path);
  } catch (e) {
    throw new ConfigError(
      `${flags.file !== undefined ? "--file" : "MAINTENANCE_STATE_FILE"}: ${
        (e as Error).message
      }`,
    );
  }
}

/**
 * A whole number from the environment, with a default; throws {@linkcode ConfigError}
 * naming the variable when it is not one.
 *
 * @example
 * ```ts
 * import { intFromEnv } from "./env_config.ts";
 * const port = intFromEnv("PORT", 8000, 0, 65535);
 * ```
 */
export function intFromEnv(
  name: string,
  fallback: number,
  min: number,
  max: number,
  env: EnvReader = processEnv,
): number {
  const raw = env(name);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(
      `${name} must be a whole number from ${min} to ${max} (got ${raw})`,
    );
  }
  return n;
}
