/**
 * The bypass secret: made, checked and hashed for the state. Web Crypto only, no
 * Hono: the CLI (`maintenance on --with-secret`) loads this and must run where Hono
 * is not installed (an ops machine with only the npm bin).
 */

const encoder = new TextEncoder();

/** Bytes as lower-case hex. */
const hex = (bytes: ArrayBuffer | Uint8Array) =>
  Array.from(
    new Uint8Array(bytes),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");

/** SHA-256, hex, of the salt's bytes then the secret's. */
export async function digest(
  salt: Uint8Array,
  secret: string,
): Promise<string> {
  return hex(
    await crypto.subtle.digest(
      "SHA-256",
      new Uint8Array([...salt, ...encoder.encode(secret)]),
    ),
  );
}

/** A random bypass secret: 24 random bytes, base64url without padding (32 characters). */
export function generateSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(
    /\//g,
    "_",
  );
}

/**
 * Hashes a secret for the state's `bypass` field: `salt:hash` in hex, a fresh random
 * 16-byte salt and SHA-256 of salt and secret. Rejects with a `TypeError` or
 * `RangeError` saying what to change unless the secret is 16 to 128 letters, digits,
 * `-` or `_` (it becomes the path `/<secret>`).
 */
export async function hashSecret(secret: string): Promise<string> {
  if (typeof secret !== "string" || !/^[\w-]*$/.test(secret)) {
    throw new TypeError(
      'secret may only contain letters, digits, "-" and "_" (a string: it becomes the path /<secret>)',
    );
  }
  if (secret.length < 16 || secret.length > 128) {
    throw new RangeError(
      `secret must be 16 to 128 characters long (got ${secret.length}); ` +
        "use a random one (crypto.randomUUID(), or --with-secret on the CLI)",
    );
  }
  const salt = crypto.getRandomValues(new Uint8Array(16));
  return `${hex(salt)}:${await digest(salt, secret)}`;
}
