/**
 * Exemption rules compiled once: request paths and client IP addresses (v4, v6, CIDR,
 * IPv4-mapped v6, RegExp).
 *
 * @module
 */
import {
  convertIPv4ToBinary,
  convertIPv6BinaryToString,
  convertIPv6ToBinary,
} from "hono/utils/ipaddr";
import { getPath } from "hono/utils/url";

/**
 * A path rule: a string matches that path and everything below it (`"/status"` matches
 * `/status` and `/status/db`, not `/statusx`); a RegExp is tested against the path.
 */
export type PathRule = string | RegExp;

/**
 * An IP rule: an address (`"10.0.0.1"`, `"::1"`), a CIDR range (`"10.0.0.0/8"`,
 * `"2001:db8::/32"`), or a RegExp tested against the address text.
 */
export type IpRule = string | RegExp;

/**
 * Whether a path is in the one spelling that routing and exemption agree on: it starts
 * with `/`, has no empty, `.` or `..` segment, no backslash and no encoded slash,
 * backslash or dot. Exemptions only apply to such paths, so `/public/../admin`,
 * `/public//x` or `/public/%2e%2e/admin` can never borrow an exempt prefix.
 */
export function isCanonicalPath(path: string): boolean {
  return /^(?!.*(\/\/|\\|%2f|%5c|%2e|\/\.\.?(\/|$)))\//is.test(path);
}

/**
 * The rules of option `option` compiled into one test of the value `prepare` makes of
 * its argument (`undefined`: never exempt). A RegExp rule tests `text(value)`; any other
 * rule becomes a test through `compile`, which throws for a bad rule.
 */
function compile<T>(
  rules: readonly (string | RegExp)[] | undefined,
  option: string,
  example: string,
  compileRule: (rule: unknown) => (value: T) => boolean,
  text: (value: T) => string,
  prepare: (raw: string | undefined) => T | undefined,
): (raw: string | undefined) => boolean {
  if (rules !== undefined && !Array.isArray(rules)) {
    throw new TypeError(`${option} must be an array ${example}`);
  }
  const tests = (rules ?? []).map((rule) => {
    if (!(rule instanceof RegExp)) return compileRule(rule);
    // Without g and y: lastIndex would make the same value match and then not match.
    const r = new RegExp(rule.source, rule.flags.replace(/[gy]/g, ""));
    return (value: T) => r.test(text(value));
  });
  return (raw) => {
    const value = prepare(raw);
    return value !== undefined && tests.some((t) => t(value));
  };
}

/**
 * Compiles path rules into one test. Throws `TypeError` on a rule that is neither a
 * path starting with `/` nor a RegExp.
 */
export function compilePathRules(
  rules: readonly PathRule[] | undefined,
  option = "ignorePaths",
): (path: string) => boolean {
  return compile<string>(
    rules,
    option,
    'of paths or RegExps, such as ["/healthz"]',
    (rule) => {
      if (
        typeof rule !== "string" || !isCanonicalPath(rule) || /[?#]/.test(rule)
      ) {
        throw new TypeError(
          `${option}: ${
            JSON.stringify(String(rule))
          } is not a path that starts with "/" (no "//", ".", "..", "?" or "#"; e.g. "/healthz"), nor a RegExp`,
        );
      }
      // Spelled as routing sees a request path (`c.req.path`): "/caf%C3%A9" and
      // "/café" are the same rule. Without its trailing slash: "/" is "".
      const base = getPath(new Request(new URL(rule, "http://l")))
        .replace(/\/$/, "");
      const below = base + "/";
      return (path) => path === base || path.startsWith(below);
    },
    (path) => path,
    (path) => path !== undefined && isCanonicalPath(path) ? path : undefined,
  );
}

/** An address: its normalized text and its 128 bits (IPv4 as IPv4-mapped IPv6). */
export interface ParsedIp {
  /** Normalized text: dotted v4 (also for a v4-mapped v6), or compressed v6. */
  text: string;
  /** The address as 128 bits; an IPv4 address as its IPv4-mapped IPv6 form. */
  n: bigint;
  /** An IPv4 address (or an IPv4-mapped IPv6 one). */
  v4: boolean;
}

/**
 * Parses an address; an IPv4-mapped IPv6 address (`::ffff:10.0.0.1`) is treated as its
 * IPv4 address. Returns `undefined` for anything that is not an address.
 */
export function parseIp(addr: string): ParsedIp | undefined {
  // Without brackets and a zone (fe80::1%eth0).
  const a = addr.trim().replace(/^\[(.*)\]$/, "$1").split("%")[0];
  try {
    const n = a.includes(":")
      ? convertIPv6ToBinary(a)
      : 0xffffn << 32n | convertIPv4ToBinary(a);
    const text = convertIPv6BinaryToString(n);
    // IPv4-mapped: Hono writes it ::ffff:a.b.c.d.
    const v4 = n >> 32n === 0xffffn;
    return { text: v4 ? text.slice(7) : text, n, v4 };
  } catch {
    return undefined;
  }
}

/**
 * Compiles IP rules into one test over the client address. Throws `TypeError` on an
 * address or range that does not parse, `RangeError` on a prefix length out of range.
 * An IPv4 rule, or an IPv4-mapped one of 96 bits or more, matches IPv4 clients only;
 * any other IPv6 rule, IPv6 clients only (`::/0` is every IPv6 client, no IPv4 one).
 */
export function compileIpRules(
  rules: readonly IpRule[] | undefined,
  option = "ignoreIps",
): (ip: string | undefined) => boolean {
  return compile<ParsedIp>(
    rules,
    option,
    'such as ["127.0.0.1", "10.0.0.0/8"]',
    (rule) => {
      const [addr, prefix, extra] = String(rule).split("/");
      const ip = typeof rule === "string" ? parseIp(addr) : undefined;
      if (!ip || extra !== undefined) {
        throw new TypeError(
          `${option}: ${
            JSON.stringify(rule)
          } is not an IP address, a CIDR range or a RegExp; ` +
            `write e.g. "10.0.0.1", "10.0.0.0/8", "::1" or "2001:db8::/32"`,
        );
      }
      // An IPv4 rule counts its prefix within the last 32 of the 128 bits; an address
      // alone is its whole length.
      const isV4 = !addr.includes(":");
      const max = isV4 ? 32 : 128;
      if (
        prefix !== undefined && !(/^\d{1,3}$/.test(prefix) && +prefix <= max)
      ) {
        throw new RangeError(
          `${option}: the prefix length in ${
            JSON.stringify(rule)
          } must be 0 to ${max}`,
        );
      }
      const bits = BigInt(+(prefix ?? max) + 128 - max);
      const mask = ((1n << bits) - 1n) << (128n - bits);
      // ::ffff:10.0.0.0/104 is the IPv4 range 10.0.0.0/8.
      const v4 = ip.v4 && bits >= 96n;
      const net = ip.n & mask;
      return (c) => c.v4 === v4 && (c.n & mask) === net;
    },
    (ip) => ip.text,
    (raw) => raw ? parseIp(raw) : undefined,
  );
}
