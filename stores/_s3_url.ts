/**
 * `s3://bucket/key` URLs, for the CLI's `--s3` and `MAINTENANCE_S3_URL` and for
 * `S3Store`'s messages. Loads no AWS SDK.
 *
 * @module
 */

/** The default object key, as django-maintenance-mode names its state file. */
export const DEFAULT_S3_KEY = "maintenance_mode_state.txt";

/** Bucket names S3 accepts, legacy ones (upper case, underscores) included. */
export const BUCKET_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{1,253}[A-Za-z0-9]$/;

const URL_HELP =
  "expected s3://bucket/key, such as s3://my-bucket/maintenance_mode_state.txt " +
  "(the key defaults to maintenance_mode_state.txt; a key ending in / is a folder for it)";

/**
 * Splits an `s3://bucket/key` URL. Without a key (`s3://bucket` or `s3://bucket/`) the key
 * is `maintenance_mode_state.txt`; a key ending in `/` is a folder that gets that name
 * appended. The key is taken literally (no percent-decoding), as the AWS CLI does.
 * Throws a `TypeError` showing a valid URL when `url` is not of that form.
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
