/**
 * The maintenance state in one S3 object, so that many servers share one switch: AWS S3
 * or an S3-compatible server (MinIO, Cloudflare R2, ...). This is the only module that
 * loads `@aws-sdk/client-s3` (an optional peer dependency: install it to use this).
 *
 * Each read is one `GetObject` (a missing object reads as off; one larger than 64 KiB is
 * an error, and no more of it is read), each write one `PutObject`; both are bounded by
 * `timeoutMs`. Failures are `StoreError`s naming `s3://bucket/key` and what to change.
 *
 * @example
 * ```ts
 * import { createMaintenance } from "@x/maintenance";
 * import { S3Store } from "@x/maintenance/s3";
 *
 * const mm = createMaintenance({
 *   store: new S3Store({ bucket: "my-bucket", key: "prod/maintenance_mode_state.txt" }),
 *   cache: { ttlMs: 2000 }, // each instance reads S3 at most once per 2 s
 * });
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
import { checkOptions } from "../src/_options.ts";
import { BUCKET_RE, DEFAULT_S3_KEY, parseS3Url } from "./_s3_url.ts";
import { StoreError } from "./_store_error.ts";
import type { StateStore } from "./_types.ts";

/**
 * Options for {@linkcode S3Store}: the object, and either an S3 client of your own or
 * how to make one.
 *
 * @example
 * ```ts
 * import { S3Store, type S3StoreOptions } from "@x/maintenance/s3";
 * const options: S3StoreOptions = {
 *   bucket: "maintenance",
 *   endpoint: "http://127.0.0.1:9000", // MinIO
 *   credentials: { accessKeyId: "minioadmin", secretAccessKey: "minioadmin" },
 *   timeoutMs: 500,
 * };
 * const store = new S3Store(options);
 * ```
 */
export interface S3StoreOptions {
  /** The bucket name, such as `my-bucket` (not an `s3://` URL). */
  bucket: string;
  /** The object key; default `maintenance_mode_state.txt`. */
  key?: string;
  /** How long one read or write may take, in milliseconds; default 1000. */
  timeoutMs?: number;
  /**
   * An S3 client of your own. Without it the store makes one from `endpoint`, `region`,
   * `forcePathStyle` and `credentials`, and the AWS SDK's usual environment and profile.
   */
  client?: S3Client;
  /** An S3-compatible endpoint, such as `http://127.0.0.1:9000` (MinIO). */
  endpoint?: string;
  /** The bucket's region; default from the environment, or `us-east-1` with an endpoint. */
  region?: string;
  /** Address the bucket in the path, not the host name; default true with an endpoint. */
  forcePathStyle?: boolean;
  /** Static credentials; default the AWS SDK's chain (environment, profile, role). */
  credentials?: {
    accessKeyId: string;
    secretAccessKey: string;
    sessionToken?: string;
  };
}

const KNOWN = [
  "bucket",
  "key",
  "timeoutMs",
  "client",
  "endpoint",
  "region",
  "forcePathStyle",
  "credentials",
];

/** The error's S3 code (`NoSuchKey`, `AccessDenied`, ...), or its network code. */
function errorName(e: unknown): string {
  const err = (e ?? {}) as { name?: unknown; code?: unknown };
  if (typeof err.code === "string" && err.code !== "") return err.code;
  return typeof err.name === "string" && err.name !== "" ? err.name : "Error";
}

/** The largest object read, in bytes (`parseState` accepts at most 64 KiB). */
const MAX_BYTES = 65_536;

/** A body read or refused at the cap: a stream (Bun, Deno, Node; fetch) or a Blob. */
type Body = {
  getReader?(): ReadableStreamDefaultReader<Uint8Array>;
  [Symbol.asyncIterator]?(): AsyncIterator<Uint8Array>;
  destroy?(): void;
  cancel?(): Promise<void>;
  arrayBuffer?(): Promise<ArrayBuffer>;
  size?: number;
};

function tooLarge(size?: number): Error {
  return Object.assign(new Error(), { code: "EFBIG", size });
}

/**
 * The body's text, reading at most 64 KiB + 1 bytes: an object larger than that (by its
 * `Content-Length`, or as it streams in) is an `EFBIG` error, its stream cancelled, so a
 * huge object costs one small buffer, not its size in memory at every retry.
 */
async function readCapped(
  body: unknown,
  contentLength: number | undefined,
): Promise<string> {
  const b = (body ?? undefined) as Body | undefined;
  const stop = () => {
    b?.destroy?.();
    b?.cancel?.()?.catch(() => {});
  };
  if (typeof contentLength === "number" && contentLength > MAX_BYTES) {
    stop();
    throw tooLarge(contentLength);
  }
  const chunks: Uint8Array[] = [];
  let length = 0;
  if (b === undefined) return "";
  if (typeof b.getReader === "function") {
    const reader = b.getReader();
    while (length <= MAX_BYTES) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      length += value.byteLength;
    }
    if (length > MAX_BYTES) reader.cancel().catch(() => {});
  } else if (typeof b[Symbol.asyncIterator] === "function") {
    // Leaving the loop early destroys a Node stream (the socket is not read on).
    for await (const chunk of b as AsyncIterable<Uint8Array>) {
      chunks.push(chunk);
      length += chunk.byteLength;
      if (length > MAX_BYTES) break;
    }
    if (length > MAX_BYTES) stop();
  } else if (typeof b.arrayBuffer === "function") {
    if ((b.size ?? 0) > MAX_BYTES) throw tooLarge(b.size);
    chunks.push(new Uint8Array(await b.arrayBuffer()));
    length = chunks[0].byteLength;
  }
  if (length > MAX_BYTES) throw tooLarge();
  const bytes = new Uint8Array(length);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  return new TextDecoder().decode(bytes);
}

function isTimeoutReason(reason: unknown): boolean {
  const r = (reason ?? {}) as { name?: unknown; code?: unknown };
  return r.name === "TimeoutError" || r.code === "TIMEOUT";
}

/**
 * Keeps the state in one S3 object. A read is one `GetObject`, a missing object reading
 * as `null` (off), one larger than 64 KiB an `EFBIG` error (by its `Content-Length`, or
 * as it streams in: no more of it is read); a write is one `PutObject`
 * (`Content-Type: application/json`, `Cache-Control: no-store`), which S3 makes visible
 * to every reader at once. Each call
 * is bounded by `timeoutMs`, even while the AWS SDK is still looking for credentials.
 * Errors are {@linkcode StoreError}s whose `code` is `TIMEOUT`, `ABORTED`, `EFBIG`,
 * `EMPTY` or the S3 error name (`AccessDenied`, `NoSuchBucket`, ...).
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
  /** `s3://bucket/key`, for messages. */
  readonly description: string;
  /** The S3 client in use (given, or made by the constructor: `destroy()` it when done). */
  readonly client: S3Client;
  /** The bound on each read and write, in milliseconds. */
  readonly timeoutMs: number;
  #bucket: string;
  #key: string;

  /** A store for `s3://bucket/key`; see {@linkcode S3StoreOptions}. */
  constructor(options: S3StoreOptions) {
    checkOptions(options, "S3Store", KNOWN);
    const { bucket, key = DEFAULT_S3_KEY, client, timeoutMs = 1000 } = options;
    const { endpoint, region, forcePathStyle, credentials } = options;
    if (typeof bucket !== "string" || bucket === "") {
      throw new TypeError(
        "S3Store needs a bucket name, such as new S3Store({ bucket: 'my-bucket' })",
      );
    }
    if (/^s3:\/\//i.test(bucket)) {
      const parts = parseS3Url(bucket);
      throw new TypeError(
        `S3Store bucket "${bucket}" is a URL; pass the bucket name and key: ` +
          `{ bucket: "${parts.bucket}", key: "${parts.key}" }`,
      );
    }
    // Said now, not at the first request (AWS S3: 400 InvalidBucketName).
    if (!BUCKET_RE.test(bucket)) {
      throw new TypeError(
        `S3Store bucket "${bucket}" is not a valid S3 bucket name; use 3-63 letters, ` +
          "digits, dots or hyphens, such as my-bucket",
      );
    }
    if (typeof key !== "string" || key === "") {
      throw new TypeError(
        `S3Store key must be a non-empty string, such as "${DEFAULT_S3_KEY}"`,
      );
    }
    // AWS S3 keeps "/k" as another object than the CLI's s3://bucket/k; s3rver fails.
    if (key.startsWith("/")) {
      throw new TypeError(
        `S3Store key "${key}" starts with "/"; S3 keys have no leading slash, ` +
          `use "${key.replace(/^\/+/, "")}"`,
      );
    }
    // 0 or NaN would fail every call at once; Infinity would let a hung endpoint hang.
    if (
      typeof timeoutMs !== "number" || !Number.isFinite(timeoutMs) ||
      timeoutMs <= 0
    ) {
      throw new RangeError(
        "S3Store timeoutMs must be a positive number of milliseconds, such as 1000 " +
          `(got ${String(timeoutMs)})`,
      );
    }
    // The SDK takes "127.0.0.1:9000" as a URL whose scheme is "127.0.0.1:".
    if (endpoint !== undefined && !/^https?:\/\/[^/]/i.test(String(endpoint))) {
      throw new TypeError(
        `S3Store endpoint "${String(endpoint)}" is not an http(s) URL; ` +
          "use one such as http://127.0.0.1:9000",
      );
    }
    // With a client of one's own these would be ignored without a word.
    const made = endpoint ?? region ?? forcePathStyle ?? credentials;
    if (client !== undefined && made !== undefined) {
      throw new TypeError(
        "S3Store takes either client or endpoint/region/forcePathStyle/credentials, " +
          "not both; configure the client you pass instead",
      );
    }
    this.#bucket = bucket;
    this.#key = key;
    this.timeoutMs = timeoutMs;
    this.description = `s3://${bucket}/${key}`;
    this.client = client ?? new S3Client({
      endpoint,
      // The SDK signs nothing without a region; MinIO and s3rver take any.
      region: region ?? (endpoint !== undefined ? "us-east-1" : undefined),
      // MinIO or s3rver on localhost: bucket.localhost does not resolve.
      forcePathStyle: forcePathStyle ?? endpoint !== undefined,
      credentials,
      // R2 (501 NotImplemented) and Backblaze B2 reject the CRC32 checksums the SDK
      // sends by default since 3.729; AWS S3 needs none.
      ...(endpoint !== undefined
        ? {
          requestChecksumCalculation: "WHEN_REQUIRED",
          responseChecksumValidation: "WHEN_REQUIRED",
        }
        : {}),
    });
  }

  /** The object's text, or `null` when the object does not exist. */
  read(signal?: AbortSignal): Promise<string | null> {
    return this.#call("read", signal, async (abortSignal) => {
      try {
        const out = await this.client.send(
          new GetObjectCommand({ Bucket: this.#bucket, Key: this.#key }),
          { abortSignal },
        );
        const text = await readCapped(out.Body, out.ContentLength);
        // s3rver (not atomic) answers a read racing a write with an empty body, which
        // would read as off; a state is never empty.
        if (text.trim() === "") {
          throw Object.assign(new Error(), { code: "EMPTY" });
        }
        return text;
      } catch (e) {
        // AWS S3, MinIO, R2 and s3rver say NoSuchKey for a missing object: off.
        if (errorName(e) === "NoSuchKey") return null;
        throw e;
      }
    });
  }

  /** Replaces the object's text; S3 makes the new object visible to readers at once. */
  write(text: string, signal?: AbortSignal): Promise<void> {
    return this.#call("write", signal, async (abortSignal) => {
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.#bucket,
          Key: this.#key,
          Body: text,
          ContentType: "application/json",
          // A CDN or proxy in front of the bucket (CloudFront, an R2 domain) must not
          // serve an old state.
          CacheControl: "no-store",
        }),
        { abortSignal },
      );
    });
  }

  /**
   * Runs `fn` with a signal that aborts after `timeoutMs` or when `signal` aborts, and
   * gives up at that moment even where the SDK does not heed the signal: it does not
   * while it looks for credentials (off AWS, the instance metadata service may never
   * answer). Those are found first, so such a timeout says so instead of blaming the
   * endpoint.
   */
  async #call<T>(
    op: "read" | "write",
    signal: AbortSignal | undefined,
    fn: (signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    const controller = new AbortController();
    let stop: "timeout" | "aborted" | undefined;
    let findingCredentials = false;
    const given = new Promise<never>((_, reject) =>
      controller.signal.addEventListener(
        "abort",
        () => reject(controller.signal.reason),
        { once: true },
      )
    );
    given.catch(() => {});
    function abort(why: "timeout" | "aborted", reason: unknown): void {
      stop ??= why;
      controller.abort(reason);
    }
    const onAbort = () =>
      abort(
        isTimeoutReason(signal?.reason) ? "timeout" : "aborted",
        signal?.reason,
      );
    const timer = setTimeout(
      () =>
        abort(
          "timeout",
          new Error(`S3 ${op} timed out after ${this.timeoutMs} ms`),
        ),
      this.timeoutMs,
    );
    if (signal?.aborted) onAbort();
    else signal?.addEventListener("abort", onAbort, { once: true });
    const work = (async () => {
      controller.signal.throwIfAborted();
      const provider = (this.client as { config?: { credentials?: unknown } })
        .config?.credentials;
      if (typeof provider === "function") {
        findingCredentials = true;
        await provider();
        findingCredentials = false;
      }
      return await fn(controller.signal);
    })();
    work.catch(() => {}); // a late failure of an abandoned call
    try {
      return await Promise.race([work, given]);
    } catch (e) {
      throw this.#explain(op, e, stop, findingCredentials);
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    }
  }

  #explain(
    op: "read" | "write",
    e: unknown,
    stop: "timeout" | "aborted" | undefined,
    findingCredentials: boolean,
  ): StoreError {
    const what = `cannot ${op} maintenance state ${this.description}`;
    if (stop === "aborted") {
      return new StoreError(`${what}: the ${op} was cancelled`, "ABORTED", {
        cause: e,
      });
    }
    if (stop === "timeout") {
      return new StoreError(
        `${what}: ` +
          (findingCredentials
            ? `no AWS credentials within ${this.timeoutMs} ms: the AWS SDK was still ` +
              "looking for them (environment, profile, SSO, container or instance role; " +
              "off AWS, the instance metadata service may never answer), and nothing " +
              "was sent to S3" +
              (op === "write" ? ", so the state is unchanged" : "") +
              "; set AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or AWS_PROFILE, pass " +
              "credentials, or raise timeoutMs"
            : `the S3 endpoint did not answer within ${this.timeoutMs} ms; check the ` +
              "endpoint and the network, or raise timeoutMs" +
              (op === "write"
                ? "; a write that timed out may still have landed: read the state to see"
                : "")),
        "TIMEOUT",
        { cause: e },
      );
    }
    const code = errorName(e);
    const status = (e as { $metadata?: { httpStatusCode?: unknown } })
      ?.$metadata?.httpStatusCode;
    const detail = String((e as { message?: unknown })?.message ?? e);
    const arn = `arn:aws:s3:::${this.#bucket}`;
    let fix: string;
    if (code === "EFBIG") {
      const size = (e as { size?: unknown }).size;
      fix =
        `the object is larger than 64 KiB${
          typeof size === "number" ? ` (${size} bytes)` : ""
        }, too large for a state, and was not read past that; point the store at the ` +
        "right object (bucket and key), or rewrite it with `maintenance on` / " +
        "`maintenance off`";
    } else if (code === "EMPTY") {
      fix =
        "the object is empty, which is not a state (a read racing a write on a " +
        "server that does not replace objects atomically, or a write by another tool); " +
        "write it with `maintenance on` / `maintenance off`";
    } else if (
      /^(InvalidAccessKeyId|SignatureDoesNotMatch|ExpiredToken|InvalidToken|TokenRefreshRequired)$/
        .test(code)
    ) {
      fix =
        `the credentials were refused (${code}); check AWS_ACCESS_KEY_ID / ` +
        "AWS_SECRET_ACCESS_KEY, AWS_PROFILE or the instance role";
    } else if (code === "AccessDenied" || status === 403) {
      fix =
        `access denied; grant s3:GetObject and s3:PutObject on ${arn}/${this.#key}` +
        (op === "read"
          ? ` (and s3:ListBucket on ${arn}, without which AWS S3 answers AccessDenied ` +
            "for a missing object instead of reading it as off)"
          : "");
    } else if (code === "NoSuchBucket") {
      fix = `bucket ${this.#bucket} does not exist; create the bucket or fix ` +
        "MAINTENANCE_S3_URL";
    } else if (
      code === "CredentialsProviderError" ||
      (status === undefined && /credential/i.test(detail))
    ) {
      // The SDK found none (or none it could use): nothing was refused, nothing sent.
      fix = `no AWS credentials were found (${code}: ${detail}); set ` +
        "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or run with an " +
        "instance role";
    } else if (
      /^(PermanentRedirect|AuthorizationHeaderMalformed)$/.test(code)
    ) {
      fix =
        `bucket ${this.#bucket} is in another region; set the store's region ` +
        "(or AWS_REGION) to the bucket's region";
    } else if (
      /^(ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ECONNRESET|EHOSTUNREACH|ETIMEDOUT)$/
        .test(code)
    ) {
      fix =
        `cannot connect to the S3 endpoint (${code}); check the endpoint URL ` +
        "and that the server is running";
    } else if (/region is missing/i.test(detail)) {
      fix = "no region configured; pass region or set AWS_REGION";
    } else if (typeof status === "number" && status >= 500) {
      fix =
        `S3 answered ${status} ${code}; the service is failing, try again later`;
    } else {
      fix = typeof status === "number"
        ? `S3 answered ${status} ${code}: ${detail}`
        : detail;
    }
    return new StoreError(`${what}: ${fix}`, code, { cause: e });
  }
}
