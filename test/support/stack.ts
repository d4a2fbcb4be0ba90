import { createTestLogger } from '../../src/logger.js';
import { SEARCH_INDEX_DELAY_MS } from '../../src/sandbox/amo/index.js';
import { type Stack, type StackOptions, startStack } from '../../src/sandbox/stack.js';
import { type DatabaseKind, freshDatabaseUrl } from './databases.js';

/**
 * A whole stack on a fresh database of the given kind, tuned for fast tests. A create of
 * unknown outcome waits out the simulator's search-index lag, and half a second more,
 * before one empty search counts (as AMO_SEARCH_SETTLE_SECONDS does against amoCRM): any
 * shorter and the bridge makes duplicates.
 */
export async function testStack(
  kind: DatabaseKind,
  title: string,
  options: Partial<Omit<StackOptions, 'databaseUrl'>> = {},
): Promise<Stack> {
  const { url, schema } = await freshDatabaseUrl(kind, title);
  return startStack({
    databaseUrl: url,
    ...options,
    logger: options.logger ?? createTestLogger(),
    tuning: {
      dbSchema: schema,
      settleMs: (options.amo?.searchIndexDelayMs ?? SEARCH_INDEX_DELAY_MS) + 500,
      reconcileGatherMs: 100,
      pollMs: 20,
      backoff: { baseMs: 50, maxMs: 500 },
      resolveBackoff: { baseMs: 50, maxMs: 500 },
      amoMinRetryDelayMs: 20,
      amoTimeoutMs: 2000,
      partnerTimeoutMs: 2000,
      ...options.tuning,
    },
  });
}

/** Polls until `check` returns a value other than undefined/false, or fails with `what`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
