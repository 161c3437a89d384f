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
  distinctRemoteAddr,
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
 * with `/`, has no empty, `.` or `..` segment, no backslash and no encoded slash or dot.
 * Exemptions only apply to such paths, so `/public/../admin`, `/public//x` or
 * `/public/%2e%2e/admin` can never borrow an exempt prefix.
 */
export function isCanonicalPath(path: string): boolean {
  if (path.charCodeAt(0) !== 47 /* / */) return false;
  if (path.includes("//") || path.includes("\\")) return false;
  if (path.includes("%")) {
    const lower = path.toLowerCase();
    if (
      lower.includes("%2f") || lower.includes("%5c") || lower.includes("%2e")
    ) return false;
  }
  if (path.includes("/.")) {
    for (const seg of path.split("/")) {
      if (seg === "." || seg === "..") return false;
    }
  }
  return true;
}

function checkRegExp(rule: RegExp): RegExp {
  if (rule.global || rule.sticky) {
    // lastIndex would make the same path match and then not match.
    return new RegExp(rule.source, rule.flags.replace(/[gy]/g, ""));
  }
  return rule;
}

/**
 * Compiles path rules into one test. Throws `TypeError` on a rule that is neither a
 * path starting with `/` nor a RegExp.
 */
export function compilePathRules(
  rules: readonly PathRule[] | undefined,
  option = "ignorePaths",
): (path: string) => boolean {
  if (rules === undefined) return () => false;
  if (!Array.isArray(rules)) {
    throw new TypeError(
      `${option} must be an array of paths or RegExps, such as ["/healthz"]`,
    );
  }
  if (rules.length === 0) return () => false;
  const exact = new Set<string>();
  const prefixes: string[] = [];
  const regexps: RegExp[] = [];
  for (const rule of rules) {
    if (rule instanceof RegExp) {
      regexps.push(checkRegExp(rule));
    } else if (
      typeof rule === "string" && rule.startsWith("/") &&
      isCanonicalPath(rule) && !/[?#]/.test(rule)
    ) {
      // Spelled as routing sees a request path (`c.req.path`): "/caf%C3%A9" and
      // "/café" are the same rule.
      const routed = rule.includes("%") || /[^\x21-\x7e]/.test(rule)
        ? getPath(new Request(new URL(rule, "http://localhost").href))
        : rule;
      const base = routed.length > 1 && routed.endsWith("/")
        ? routed.slice(0, -1)
        : routed;
      exact.add(base);
      if (base === "/") prefixes.push("/");
      else {
        exact.add(base + "/");
        prefixes.push(base + "/");
      }
    } else {
      throw new TypeError(
        `${option}: ${
          JSON.stringify(String(rule))
        } is not a path that starts with "/" (no "//", ".", "..", "?" or "#"; e.g. "/healthz"), nor a RegExp`,
      );
    }
  }
  return function isExemptPath(path: string): boolean {
    if (!isCanonicalPath(path)) return false;
    if (exact.has(path)) return true;
    for (const p of prefixes) if (path.startsWith(p)) return true;
    for (const r of regexps) if (r.test(path)) return true;
    return false;
  };
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

/** The IPv4-mapped IPv6 prefix, `::ffff:0:0/96`. */
const MAPPED = 0xffffn << 32n;

/**
 * Parses an address; an IPv4-mapped IPv6 address (`::ffff:10.0.0.1`) is treated as its
 * IPv4 address. Returns `undefined` for anything that is not an address.
 */
export function parseIp(addr: string): ParsedIp | undefined {
  let a = addr.trim();
  if (a.startsWith("[") && a.endsWith("]")) a = a.slice(1, -1);
  const zone = a.indexOf("%");
  if (zone > 0) a = a.slice(0, zone);
  try {
    const type = distinctRemoteAddr(a);
    const n = type === "IPv4"
      ? MAPPED | convertIPv4ToBinary(a)
      : type === "IPv6"
      ? convertIPv6ToBinary(a)
      : undefined;
    if (n === undefined) return undefined;
    if (n >> 32n !== 0xffffn) {
      return { text: convertIPv6BinaryToString(n), n, v4: false };
    }
    const text = [24n, 16n, 8n, 0n].map((s) => String((n >> s) & 0xffn))
      .join(".");
    return { text, n, v4: true };
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
  if (rules === undefined) return () => false;
  if (!Array.isArray(rules)) {
    throw new TypeError(
      `${option} must be an array, such as ["127.0.0.1", "10.0.0.0/8"]`,
    );
  }
  if (rules.length === 0) return () => false;
  const exact = new Set<string>();
  const ranges: { v4: boolean; net: bigint; mask: bigint }[] = [];
  const regexps: RegExp[] = [];
  for (const rule of rules) {
    if (rule instanceof RegExp) {
      regexps.push(checkRegExp(rule));
      continue;
    }
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
    if (prefix === undefined) {
      exact.add(ip.text);
      continue;
    }
    // An IPv4 rule counts its prefix within the last 32 of the 128 bits.
    const isV4 = !addr.includes(":");
    const max = isV4 ? 32 : 128;
    if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > max) {
      throw new RangeError(
        `${option}: the prefix length in ${
          JSON.stringify(rule)
        } must be 0 to ${max}`,
      );
    }
    const bits = BigInt(Number(prefix) + (isV4 ? 96 : 0));
    const mask = ((1n << bits) - 1n) << (128n - bits);
    // ::ffff:10.0.0.0/104 is the IPv4 range 10.0.0.0/8.
    ranges.push({ v4: ip.v4 && bits >= 96n, net: ip.n & mask, mask });
  }
  return function isExemptIp(raw: string | undefined): boolean {
    const ip = raw ? parseIp(raw) : undefined;
    if (!ip) return false;
    if (exact.has(ip.text)) return true;
    for (const r of ranges) {
      if (r.v4 === ip.v4 && (ip.n & r.mask) === r.net) return true;
    }
    for (const r of regexps) if (r.test(ip.text)) return true;
    return false;
  };
}
