/**
 * Whether this process is a test run (the seed's MAINTENANCE_MODE_IGNORE_TESTS).
 *
 * @module
 */

/**
 * True under `bun test` and Jest/Vitest (`NODE_ENV=test`), `node --test`
 * (`NODE_TEST_CONTEXT`), and `deno test` (the main module is a `*_test.ts` /
 * `*.test.ts` file, Deno's naming convention). The environment is read through
 * `process.env` (Node, Bun, Deno 2).
 */
export function isTestRun(): boolean {
  const g = globalThis as {
    process?: { env?: Record<string, string | undefined> };
    Deno?: { mainModule?: string };
  };
  try {
    const env = g.process?.env;
    if (env?.NODE_ENV === "test" || env?.NODE_TEST_CONTEXT !== undefined) {
      return true;
    }
  } catch {
    // no permission to read the environment: not decidable from it
  }
  return /[._]test\.[cm]?[jt]sx?$/.test(String(g.Deno?.mainModule));
}
