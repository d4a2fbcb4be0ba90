import { createTestLogger } from '../../src/logger.js';
import { type Stack, type StackOptions, startStack } from '../../src/sandbox/stack.js';
import { type DatabaseKind, freshDatabaseUrl } from './databases.js';

/** A whole stack on a fresh database of the given kind, tuned for fast tests (and silent, unless given a logger). */
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
      settleMs: 300,
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

/** Every job finished and no webhook delivery under way; then a moment more, for anything a loop would start. */
export async function settled(stack: Stack) {
  const open = async () => {
    await stack.amo.webhooksIdle();
    const rows = await stack.bridge.db.kysely.selectFrom('jobs').select('id').where('status', 'not in', ['done', 'dead']).where('kind', '<>', 'deals.sweep').execute();
    return rows.length === 0;
  };
  await waitFor('the queue to drain', open);
  await new Promise((r) => setTimeout(r, 400));
  await waitFor('the queue to drain again', open);
}
