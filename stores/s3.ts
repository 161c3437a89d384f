/**
 * The maintenance state in one S3 object, for many servers sharing one switch. Works with
 * AWS S3 and S3-compatible endpoints (MinIO, R2, s3rver, ...). This is the only module
 * that imports `@aws-sdk/client-s3`; load it only when you use S3.
 *
 * Every read and write is bounded by `timeoutMs`; reads revalidate with the last ETag
 * (`If-None-Match`), so an unchanged state costs a `304` and no body. A missing object
 * reads as `null` (maintenance off). Failures raise {@linkcode StoreError} with a message
 * that names `s3://bucket/key` and what to change.
 *
 * @example
 * ```ts
 * import { createMaintenance } from "@x/maintenance";
 * import { parseS3Url, S3Store } from "@x/maintenance/s3";
 *
 * const { bucket, key } = parseS3Url("s3://my-bucket/maintenance_mode_state.txt");
 * const mm = createMaintenance({ store: new S3Store({ bucket, key, timeoutMs: 1000 }) });
 * await mm.isEnabled();
 * ```
 *
 * @module
 */
import {
  GetObjectCommand,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { StoreError } from "./_store_error.ts";
import type { StateStore } from "./_types.ts";

export { StoreError } from "./_store_error.ts";
export type { StateStore } from "./_types.ts";

/**
 * The default object key, as django-maintenance-mode names its state file.
 *
 * @example
 * ```ts
 * import { DEFAULT_S3_KEY } from "@x/maintenance/s3";
 * console.log(DEFAULT_S3_KEY); // "maintenance_mode_state.txt"
 * ```
 */
export const DEFAULT_S3_KEY = "maintenance_mode_state.txt";

const URL_HELP =
  "expected s3://bucket/key, such as s3://my-bucket/maintenance_mode_state.txt " +
  "(the key defaults to maintenance_mode_state.txt; a key ending in / is a folder for it)";

/** Bucket names S3 accepts, including legacy ones (upper case, underscores). */
const BUCKET_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{1,253}[A-Za-z0-9]$/;

function checkBucket(bucket: string, where: string): void {
  if (!BUCKET_RE.test(bucket)) {
    throw new TypeError(
      `${where}: "${bucket}" is not a valid S3 bucket name; use 3-63 letters, digits, ` +
        "dots or hyphens, such as my-bucket",
    );
  }
}

/**
 * Splits an `s3://bucket/key` URL. Without a key (`s3://bucket` or `s3://bucket/`) the key
 * is `maintenance_mode_state.txt`; a key ending in `/` is a folder that gets that name
 * appended. The key is taken literally (no percent-decoding), as the AWS CLI does.
 *
 * @throws {TypeError} when the URL is not of that form; the message shows a valid one.
 *
 * @example
 * ```ts
 * import { parseS3Url } from "@x/maintenance/s3";
 * parseS3Url("s3://my-bucket/app/state.json"); // { bucket: "my-bucket", key: "app/state.json" }
 * parseS3Url("s3://my-bucket"); // { bucket: "my-bucket", key: "maintenance_mode_state.txt" }
 * ```
 */
export function parseS3Url(url: string): { bucket: string; key: string } {
  if (typeof url !== "string" || url.trim() === "") {
    throw new TypeError(`S3 URL is empty; ${URL_HELP}`);
  }
  const text = url.trim();
  if (!/^s3:\/\//i.test(text)) {
    throw new TypeError(
      `invalid S3 URL "${url}": it must start with s3://; ${URL_HELP}`,
    );
  }
  const rest = text.slice(5);
  const slash = rest.indexOf("/");
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  let key = slash < 0 ? "" : rest.slice(slash + 1);
  if (bucket === "") {
    throw new TypeError(
      `invalid S3 URL "${url}": the bucket name is missing; ${URL_HELP}`,
    );
  }
  if (!BUCKET_RE.test(bucket)) {
    throw new TypeError(
      `invalid S3 URL "${url}": "${bucket}" is not a valid bucket name ` +
        `(3-63 letters, digits, dots or hyphens); ${URL_HELP}`,
    );
  }
  if (key.startsWith("/")) {
    throw new TypeError(
      `invalid S3 URL "${url}": the key starts with "/" (two slashes after the bucket); ` +
        URL_HELP,
    );
  }
  if (key === "" || key.endsWith("/")) key += DEFAULT_S3_KEY;
  return { bucket, key };
}

/**
 * Options for {@linkcode S3Store}.
 *
 * @example
 * ```ts
 * import type { S3StoreOptions } from "@x/maintenance/s3";
 * const options: S3StoreOptions = {
 *   bucket: "my-bucket",
 *   endpoint: "http://127.0.0.1:9000",
 *   timeoutMs: 500,
 * };
 * ```
 */
export interface S3StoreOptions {
  /** The bucket name (not a URL; see {@linkcode parseS3Url}). */
  bucket: string;
  /** The object key; default `maintenance_mode_state.txt`. */
  key?: string;
  /**
   * An S3 client to use. Without it the store makes one from `endpoint`, `region`,
   * `forcePathStyle` and `credentials` (and the AWS SDK's usual environment and profile).
   */
  client?: S3Client;
  /** How long one read or write may take, in milliseconds; default 1000. */
  timeoutMs?: number;
  /** An S3-compatible endpoint, such as `http://127.0.0.1:9000` (MinIO). */
  endpoint?: string;
  /** The bucket's region; default from the environment, or `us-east-1` with an endpoint. */
  region?: string;
  /** Address the bucket in the path, not the host name; default true with an endpoint. */
  forcePathStyle?: boolean;
  /** Static credentials; default the AWS SDK's provider chain (env, profile, role). */
  credentials?: {
    accessKeyId: string;
    secretAccessKey: string;
    sessionToken?: string;
  };
}

interface S3ErrorLike {
  name?: unknown;
  Code?: unknown;
  code?: unknown;
  message?: unknown;
  $metadata?: { httpStatusCode?: unknown };
}

function errorName(e: unknown): string {
  const err = (e ?? {}) as S3ErrorLike;
  if (typeof err.Code === "string" && err.Code !== "") return err.Code;
  if (typeof err.name === "string" && err.name !== "" && err.name !== "Error") {
    return err.name;
  }
  if (typeof err.code === "string" && err.code !== "") return err.code;
  return "Error";
}

function httpStatus(e: unknown): number | undefined {
  const status = ((e ?? {}) as S3ErrorLike).$metadata?.httpStatusCode;
  return typeof status === "number" ? status : undefined;
}

function isNotModified(e: unknown): boolean {
  return httpStatus(e) === 304 || errorName(e) === "NotModified";
}

function isNoSuchKey(e: unknown): boolean {
  const name = errorName(e);
  if (name === "NoSuchKey" || name === "NotFound") return true;
  return httpStatus(e) === 404 && name !== "NoSuchBucket";
}

function isTimeoutReason(reason: unknown): boolean {
  const r = (reason ?? {}) as { name?: unknown; code?: unknown };
  return r.name === "TimeoutError" || r.code === "TIMEOUT";
}

/** How many whole reads a body that no ETag vouches for gets before the read fails. */
const CONFIRM_ATTEMPTS = 3;

/** The pause before re-reading an unconfirmed body, times the attempt, ms. */
const CONFIRM_DELAY_MS = 10;

/** An ETag that may be an MD5 (unquoted, lower case): 32 hex digits. S3 gives a plain
 * single-part upload the MD5 of its bytes, unless it is encrypted with SSE-KMS/SSE-C. */
const MD5_HEX_RE = /^[0-9a-f]{32}$/;

let md5Missing = false;

let nodeCrypto: Promise<typeof import("node:crypto")> | undefined;

/**
 * The MD5 of `bytes` in hex; undefined where MD5 is not offered (Node in FIPS mode, or
 * no `node:crypto`: Cloudflare Workers without nodejs_compat). `node:crypto` loads on
 * first use, so importing this module needs no `node:` module.
 */
async function md5Hex(bytes: Uint8Array): Promise<string | undefined> {
  if (md5Missing) return undefined;
  try {
    const { createHash } = await (nodeCrypto ??= import("node:crypto"));
    return createHash("md5").update(bytes).digest("hex");
  } catch {
    md5Missing = true;
    return undefined;
  }
}

const decoder = new TextDecoder();

/** Waits `ms`, or less if `signal` aborts (the bounded call gives up by itself). */
function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}

/** Internal: reads kept coming back with a body their ETag does not vouch for. */
class TornRead extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TornRead";
  }
}

/** Why the bounded call was stopped, when it was. */
type Stop = "timeout" | "aborted" | undefined;

/** Where one read or write is: still waiting for the SDK to find credentials, or past
 * that (talking to S3). */
interface Progress {
  findingCredentials: boolean;
}

const ABORTED = Symbol("aborted");

/**
 * Keeps the state in one S3 object. Reads remember the object's ETag and body and send
 * `If-None-Match`, so an unchanged object answers `304` without a body; a missing object
 * reads as `null` (off). A body is remembered only when its ETag vouches for it (its
 * MD5, or the same pair twice for ETags that are not MD5s); a torn read from a server
 * that writes bytes and ETag separately is read again, and fails after three tries
 * with no two alike.
 * Writes put the text with `Content-Type: application/json` and `Cache-Control:
 * no-store`. Every call is bounded by `timeoutMs`, even when the client
 * ignores its abort signal. Errors are {@linkcode StoreError}s whose `code` is `TIMEOUT`
 * or the S3 error name (`AccessDenied`, `NoSuchBucket`, ...).
 *
 * @example
 * ```ts
 * import { createMaintenance } from "@x/maintenance";
 * import { S3Store } from "@x/maintenance/s3";
 *
 * // AWS S3, credentials and region from the environment:
 * const store = new S3Store({ bucket: "my-bucket", key: "prod/maintenance_mode_state.txt" });
 * // or an S3-compatible endpoint:
 * const minio = new S3Store({
 *   bucket: "maintenance",
 *   endpoint: "http://127.0.0.1:9000",
 *   credentials: { accessKeyId: "minioadmin", secretAccessKey: "minioadmin" },
 * });
 * const mm = createMaintenance({ store });
 * await mm.enable({ message: "Back at 14:00" });
 * ```
 */
export class S3Store implements StateStore {
  /** The bucket name. */
  readonly bucket: string;
  /** The object key. */
  readonly key: string;
  /** The bound on each read and write, in milliseconds. */
  readonly timeoutMs: number;
  /** `s3://bucket/key`, for messages. */
  readonly description: string;
  /** The S3 client in use (given, or made by the constructor). */
  readonly client: S3Client;
  /** How many GetObject calls this store has made (for tests and benchmarks; the SDK's own
   * retries of one call are not counted). */
  reads = 0;
  /** How many of those were answered `304 Not Modified` (the remembered body was used). */
  notModified = 0;
  /** How many PutObject requests this store has sent. */
  writes = 0;
  /** How many reads came back with a body their ETag does not vouch for (not its MD5), so
   * the object was read again to confirm it; see {@linkcode S3Store.read}. */
  unconfirmedReads = 0;
  #cached: { etag: string; body: string } | undefined;

  /** A store for `s3://bucket/key`; see {@linkcode S3StoreOptions}. */
  constructor(options: S3StoreOptions) {
    if (options === null || typeof options !== "object") {
      throw new TypeError(
        "S3Store needs options, such as new S3Store({ bucket: 'my-bucket' })",
      );
    }
    const { bucket, key = DEFAULT_S3_KEY, client, timeoutMs = 1000 } = options;
    const { endpoint, region, forcePathStyle, credentials } = options;
    if (typeof bucket !== "string" || bucket === "") {
      throw new TypeError(
        "S3Store needs a bucket name, such as new S3Store({ bucket: 'my-bucket' })",
      );
    }
    if (/^s3:\/\//i.test(bucket)) {
      throw new TypeError(
        `S3Store bucket "${bucket}" is a URL; pass the bucket name and key, ` +
          "such as new S3Store(parseS3Url(url))",
      );
    }
    checkBucket(bucket, "S3Store bucket");
    if (typeof key !== "string" || key === "") {
      throw new TypeError(
        `S3Store key must be a non-empty string, such as "${DEFAULT_S3_KEY}"`,
      );
    }
    if (key.startsWith("/")) {
      throw new TypeError(
        `S3Store key "${key}" starts with "/"; S3 keys have no leading slash, ` +
          `use "${key.replace(/^\/+/, "")}"`,
      );
    }
    if (
      typeof timeoutMs !== "number" || !Number.isFinite(timeoutMs) ||
      timeoutMs <= 0
    ) {
      throw new RangeError(
        `S3Store timeoutMs must be a positive number of milliseconds, such as 1000 ` +
          `(got ${String(timeoutMs)})`,
      );
    }
    if (endpoint !== undefined) {
      let parsed: URL | undefined;
      try {
        parsed = new URL(endpoint);
      } catch {
        parsed = undefined;
      }
      if (
        !parsed || (parsed.protocol !== "http:" && parsed.protocol !== "https:")
      ) {
        throw new TypeError(
          `S3Store endpoint "${String(endpoint)}" is not an http(s) URL; ` +
            "use one such as http://127.0.0.1:9000",
        );
      }
    }
    if (
      region !== undefined &&
      (typeof region !== "string" || region.trim() === "")
    ) {
      throw new TypeError(
        "S3Store region must be a region name, such as 'eu-west-1'",
      );
    }
    if (
      client !== undefined &&
      (endpoint !== undefined || region !== undefined ||
        forcePathStyle !== undefined ||
        credentials !== undefined)
    ) {
      throw new TypeError(
        "S3Store takes either client or endpoint/region/forcePathStyle/credentials, " +
          "not both; configure the client you pass instead",
      );
    }
    if (
      client !== undefined &&
      typeof (client as { send?: unknown }).send !== "function"
    ) {
      throw new TypeError(
        "S3Store client must be an S3Client from @aws-sdk/client-s3",
      );
    }
    this.bucket = bucket;
    this.key = key;
    this.timeoutMs = timeoutMs;
    this.description = `s3://${bucket}/${key}`;
    this.client = client ?? new S3Client({
      ...(endpoint !== undefined ? { endpoint } : {}),
      ...(region !== undefined
        ? { region }
        : endpoint !== undefined
        ? { region: "us-east-1" }
        : {}),
      forcePathStyle: forcePathStyle ?? endpoint !== undefined,
      ...(credentials !== undefined ? { credentials } : {}),
      // S3-compatible servers often reject the SDK's default request checksums.
      ...(endpoint !== undefined
        ? {
          requestChecksumCalculation: "WHEN_REQUIRED",
          responseChecksumValidation: "WHEN_REQUIRED",
        }
        : {}),
    });
  }

  /**
   * The object's text, or `null` when the object does not exist. Revalidates with the
   * last ETag, so an unchanged object costs a `304` and no body.
   */
  async read(signal?: AbortSignal): Promise<string | null> {
    const cached = this.#cached;
    const progress: Progress = { findingCredentials: false };
    try {
      return await this.#bounded("read", signal, async (abortSignal) => {
        await this.#credentials(progress);
        let ifNoneMatch = cached?.etag;
        let previous: { etag: string | undefined; body: string } | undefined;
        /** How many reads in a row gave this same pair. */
        let agreeing = 0;
        for (let attempt = 1;; attempt++) {
          this.reads++;
          let out;
          try {
            out = await this.client.send(
              new GetObjectCommand({
                Bucket: this.bucket,
                Key: this.key,
                ...(ifNoneMatch !== undefined
                  ? { IfNoneMatch: ifNoneMatch }
                  : {}),
              }),
              { abortSignal },
            );
          } catch (e) {
            if (cached && ifNoneMatch !== undefined && isNotModified(e)) {
              this.notModified++;
              return cached.body;
            }
            if (isNoSuchKey(e)) {
              if (!abortSignal.aborted) this.#cached = undefined;
              return null;
            }
            throw e;
          }
          // The bytes as sent: a body that is not UTF-8 must still match its MD5.
          const bytes = out.Body
            ? await out.Body.transformToByteArray()
            : new Uint8Array();
          const body = decoder.decode(bytes);
          const etag = typeof out.ETag === "string" ? out.ETag : undefined;
          // A read racing a write on a server that stores an object's bytes and its ETag
          // separately (s3rver) can pair one version's ETag with the other's bytes, even
          // twice in a row. Remembered, that pair would be replayed by every later 304,
          // and the new state never seen. So a body is remembered only when its ETag
          // vouches for it: the ETag is the body's MD5, or it need not be (multipart,
          // encrypted objects, no MD5 on this host) and two reads agree. A body whose
          // ETag should be its MD5 and is not (a torn read, or a store with ETags of its
          // own kind, such as GCS with customer keys) is used once three reads agree
          // (a torn read seldom lasts that long), but not remembered; nor is a body
          // without an ETag.
          const bare = etag?.replaceAll('"', "").toLowerCase() ?? "";
          const hex = MD5_HEX_RE.test(bare) ? await md5Hex(bytes) : undefined;
          if (hex !== undefined && hex === bare) {
            // A read abandoned at the timeout must not replace a newer one's validator.
            if (!abortSignal.aborted) this.#cached = { etag: etag!, body };
            return body;
          }
          // An empty ETag is what a server sends mid-write; a 32-hex one that is not the
          // body's MD5 may be a torn read too: both need a third read to agree.
          const blank = etag !== undefined && bare === "";
          const notMd5 = !blank && (hex === undefined ||
            out.ServerSideEncryption !== undefined ||
            out.SSECustomerAlgorithm !== undefined);
          agreeing = previous !== undefined && previous.etag === etag &&
              previous.body === body
            ? agreeing + 1
            : 1;
          if (agreeing >= (notMd5 ? 2 : 3)) {
            if (!abortSignal.aborted) {
              this.#cached = notMd5 && bare !== ""
                ? { etag: etag!, body }
                : undefined;
            }
            return body;
          }
          if (previous === undefined) this.unconfirmedReads++;
          if (attempt >= CONFIRM_ATTEMPTS) {
            throw new TornRead(
              `${attempt} reads in a row got a body that its ETag (last ${
                etag ?? "none"
              }) does not vouch for, and too few of them alike; the object is being ` +
                "rewritten, or the S3-compatible server does not store objects atomically",
            );
          }
          await delay(CONFIRM_DELAY_MS * attempt, abortSignal);
          previous = { etag, body };
          ifNoneMatch = undefined;
        }
      });
    } catch (e) {
      throw this.#explain("read", e, progress);
    }
  }

  /**
   * Replaces the object's text (`Content-Type: application/json`,
   * `Cache-Control: no-store`). S3 makes the new object visible to readers at once.
   */
  async write(text: string, signal?: AbortSignal): Promise<void> {
    if (typeof text !== "string") {
      throw new TypeError("S3Store.write needs the state as text (a string)");
    }
    const progress: Progress = { findingCredentials: false };
    try {
      await this.#bounded("write", signal, async (abortSignal) => {
        await this.#credentials(progress);
        this.writes++;
        const out = await this.client.send(
          new PutObjectCommand({
            Bucket: this.bucket,
            Key: this.key,
            Body: text,
            ContentType: "application/json",
            CacheControl: "no-store",
          }),
          { abortSignal },
        );
        if (!abortSignal.aborted) {
          this.#cached = typeof out.ETag === "string" && out.ETag !== ""
            ? { etag: out.ETag, body: text }
            : undefined;
        }
      });
    } catch (e) {
      throw this.#explain("write", e, progress);
    }
  }

  /**
   * Has the client find its credentials before the request (the SDK would do it first
   * anyway, and keeps them until they expire), so that a call that times out while the
   * SDK's chain is still looking (an instance metadata service that does not answer off
   * AWS, a slow SSO or credential_process) says so, instead of blaming the endpoint.
   */
  async #credentials(progress: Progress): Promise<void> {
    const provider = (this.client as { config?: { credentials?: unknown } })
      .config?.credentials;
    if (typeof provider !== "function") return; // not an S3Client (a test double)
    progress.findingCredentials = true;
    await (provider as () => Promise<unknown>)();
    progress.findingCredentials = false;
  }

  /** Runs `fn` with a signal that aborts after `timeoutMs` or when `signal` aborts, and
   * gives up at that moment even if `fn` does not honour the signal. */
  async #bounded<T>(
    op: "read" | "write",
    signal: AbortSignal | undefined,
    fn: (signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    const ms = this.timeoutMs;
    let stop: Stop;
    if (signal?.aborted) {
      throw new BoundedStop(
        isTimeoutReason(signal.reason) ? "timeout" : "aborted",
        signal.reason,
      );
    }
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    let onAbort: (() => void) | undefined;
    const guard = new Promise<typeof ABORTED>((resolve) => {
      timer = setTimeout(() => {
        stop ??= "timeout";
        controller.abort(new Error(`S3 ${op} timed out after ${ms} ms`));
        resolve(ABORTED);
      }, ms);
      if (signal) {
        onAbort = () => {
          stop ??= isTimeoutReason(signal.reason) ? "timeout" : "aborted";
          controller.abort(signal.reason);
          resolve(ABORTED);
        };
        signal.addEventListener("abort", onAbort, { once: true });
      }
    });
    const work = fn(controller.signal);
    // A late rejection of the abandoned call must not become an unhandled rejection.
    work.catch(() => {});
    try {
      const result = await Promise.race([work, guard]);
      if (result === ABORTED) {
        throw new BoundedStop(stop ?? "timeout", controller.signal.reason);
      }
      return result as T;
    } catch (e) {
      // The SDK's own AbortError after our abort: report why we aborted.
      if (stop !== undefined && !(e instanceof BoundedStop)) {
        throw new BoundedStop(stop, e);
      }
      throw e;
    } finally {
      clearTimeout(timer);
      if (signal && onAbort) signal.removeEventListener("abort", onAbort);
    }
  }

  #explain(
    op: "read" | "write",
    e: unknown,
    progress: Progress = { findingCredentials: false },
  ): StoreError {
    const what = `cannot ${op} maintenance state ${this.description}`;
    const arn = `arn:aws:s3:::${this.bucket}/${this.key}`;
    if (
      e instanceof BoundedStop && e.stop === "timeout" &&
      progress.findingCredentials
    ) {
      return new StoreError(
        `${what}: no AWS credentials within ${this.timeoutMs} ms: the AWS SDK was still ` +
          "looking for them (environment, profile, SSO, container or instance role; " +
          "off AWS, the instance metadata service may never answer), and nothing was " +
          "sent to S3" + (op === "write" ? ", so the state is unchanged" : "") +
          "; set AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or AWS_PROFILE, pass " +
          "credentials, or raise timeoutMs",
        "TIMEOUT",
        { cause: e.cause },
      );
    }
    if (e instanceof BoundedStop) {
      return e.stop === "timeout"
        ? new StoreError(
          `${what}: the S3 endpoint did not answer within ${this.timeoutMs} ms; check the ` +
            "endpoint and the network, or raise timeoutMs" +
            (op === "write"
              ? "; a write that timed out may still have landed: read the state to see"
              : ""),
          "TIMEOUT",
          { cause: e.cause },
        )
        : new StoreError(`${what}: the ${op} was cancelled`, "ABORTED", {
          cause: e.cause,
        });
    }
    const code = errorName(e);
    const status = httpStatus(e);
    const detail = String(((e ?? {}) as S3ErrorLike).message ?? e);
    let fix: string;
    switch (code) {
      case "AccessDenied":
      case "Forbidden":
      case "AllAccessDisabled":
        fix = `access denied; grant s3:GetObject and s3:PutObject on ${arn}` +
          (op === "read"
            ? ` (and s3:ListBucket on arn:aws:s3:::${this.bucket}, without which a missing ` +
              "object also answers AccessDenied instead of reading as off)"
            : "");
        break;
      case "NoSuchBucket":
        fix =
          `bucket ${this.bucket} does not exist; create the bucket or fix ` +
          "MAINTENANCE_S3_URL";
        break;
      case "InvalidAccessKeyId":
      case "SignatureDoesNotMatch":
      case "ExpiredToken":
      case "TokenRefreshRequired":
      case "InvalidToken":
        fix =
          `the credentials were refused (${code}); check AWS_ACCESS_KEY_ID / ` +
          "AWS_SECRET_ACCESS_KEY, AWS_PROFILE or the instance role";
        break;
      case "CredentialsProviderError":
        // The SDK's chain found none: nothing was refused, nothing was sent.
        fix = `no AWS credentials were found (${code}: ${detail}); set ` +
          "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or run with an " +
          "instance role";
        break;
      case "PermanentRedirect":
      case "AuthorizationHeaderMalformed":
      case "IllegalLocationConstraintException":
        fix =
          `bucket ${this.bucket} is in another region; set the store's region ` +
          "(or AWS_REGION) to the bucket's region";
        break;
      case "ECONNREFUSED":
      case "ENOTFOUND":
      case "EAI_AGAIN":
      case "ECONNRESET":
      case "EHOSTUNREACH":
      case "ETIMEDOUT":
        fix =
          `cannot connect to the S3 endpoint (${code}); check the endpoint URL and ` +
          "that the server is running";
        break;
      default:
        if (/region is missing/i.test(detail)) {
          fix = "no region configured; pass region or set AWS_REGION";
        } else if (/credential/i.test(detail)) {
          fix = `no usable credentials (${detail}); set AWS_ACCESS_KEY_ID / ` +
            "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or run with an instance role";
        } else if (status !== undefined && status >= 500) {
          fix =
            `S3 answered ${status} ${code}; the service is failing, try again later`;
        } else {
          fix = status !== undefined
            ? `S3 answered ${status} ${code}: ${detail}`
            : detail;
        }
    }
    return new StoreError(`${what}: ${fix}`, code, { cause: e });
  }
}

/** Internal: the bounded call was stopped by the timeout or the caller's signal. */
class BoundedStop extends Error {
  readonly stop: "timeout" | "aborted";
  constructor(stop: "timeout" | "aborted", cause: unknown) {
    super(stop, { cause });
    this.stop = stop;
  }
}
