/**
 * Whether this code runs on Cloudflare Workers, where there is no file system to share
 * and a request's timers are dropped when it ends.
 *
 * @module
 */

/**
 * Whether this runs on Cloudflare Workers (workerd), by `navigator.userAgent`.
 */
export function onCloudflareWorkers(): boolean {
  const nav = (globalThis as { navigator?: { userAgent?: unknown } }).navigator;
  return nav?.userAgent === "Cloudflare-Workers";
}
