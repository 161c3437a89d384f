/**
 * The client's address: from the runtime's connection info, and from
 * `X-Forwarded-For` only when the app says it sits behind that many proxies.
 *
 * @module
 */
import { parseIp } from "./_rules.ts";

/** Connection info as Deno.serve, Bun.serve and @hono/node-server pass it. */
interface ConnEnv {
  remoteAddr?: { hostname?: string };
  requestIP?: (req: Request) => { address?: string } | null;
  incoming?: { socket?: { remoteAddress?: string } };
}

/**
 * The peer address of the connection, as the runtime reports it, without trusting any
 * header: `Deno.serve` (second argument `info.remoteAddr`), `Bun.serve` (server
 * `requestIP`), and `@hono/node-server` (`incoming.socket`).
 *
 * @example
 * ```ts
 * import { connectionIp } from "@x/maintenance";
 * Deno.serve((req, info) => new Response(connectionIp(req, info) ?? "unknown"));
 * ```
 */
export function connectionIp(req: Request, env: unknown): string | undefined {
  if (env === null || typeof env !== "object") return undefined;
  const e = env as ConnEnv;
  const deno = e.remoteAddr?.hostname;
  if (typeof deno === "string") return deno;
  if (typeof e.requestIP === "function") {
    try {
      const addr = e.requestIP(req)?.address;
      if (typeof addr === "string") return addr;
    } catch {
      // not a Bun server after all
    }
  }
  const node = e.incoming?.socket?.remoteAddress;
  return typeof node === "string" ? node : undefined;
}

/**
 * The client address given how many proxies you trust in front of the app.
 * With `trustedProxies` 0 (the default) `X-Forwarded-For` is ignored: anybody can send it.
 * With N, the address N hops from the right of `X-Forwarded-For` is taken (each trusted
 * proxy appends the address it saw). When the header is missing or has fewer than N
 * entries (a request that did not come through all the proxies), or that hop is empty
 * or not an IP address, there is no client address: `undefined`, so no `ignoreIps` rule
 * matches. The peer is then one of your proxies, never the client, so it is not used.
 *
 * @example
 * ```ts
 * import { clientIp } from "@x/maintenance";
 * const req = new Request("http://x/", { headers: { "x-forwarded-for": "1.2.3.4, 10.0.0.2" } });
 * clientIp(req, "10.0.0.3", 1); // "10.0.0.2"
 * clientIp(req, "10.0.0.3", 0); // "10.0.0.3"
 * clientIp(req, "10.0.0.3", 3); // undefined: too few hops
 * ```
 */
export function clientIp(
  req: Request,
  peer: string | undefined,
  trustedProxies: number,
): string | undefined {
  if (trustedProxies <= 0) return peer;
  const header = req.headers.get("x-forwarded-for");
  if (header === null) return undefined;
  const hops = header.split(",");
  const i = hops.length - trustedProxies;
  if (i < 0) return undefined;
  // Some proxies (Azure's, among others) add the client's port: "1.2.3.4:5678",
  // "[2001:db8::1]:443". The port is not part of the address a rule names.
  const hop = hops[i].trim();
  const ported = /^\[([^\]]+)\](?::\d{1,5})?$/.exec(hop) ??
    /^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$/.exec(hop);
  const ip = ported === null ? hop : ported[1];
  return parseIp(ip) === undefined ? undefined : ip;
}
