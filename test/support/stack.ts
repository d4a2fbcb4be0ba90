import { type BridgeTuning, createBridge } from '../../src/bridge.js';
import type { Config } from '../../src/config.js';
import { createTestLogger, type Logger } from '../../src/logger.js';
import { SEARCH_INDEX_DELAY_MS } from '../../src/sandbox/amo/index.js';
import { type Stack, type StackOptions, startStack } from '../../src/sandbox/stack.js';
import { type DatabaseKind, freshDatabaseUrl } from './databases.js';

/**
 * A whole stack on a fresh database of the given kind, tuned for fast tests. A create of
 * unknown outcome waits out the simulator's search-index lag, and half a second more,
 * before one empty search counts (as AMO_SEARCH_SETTLE_SECONDS does against amoCRM): any
 * shorter and the bridge makes duplicates.
 * `databaseUrl` opens the same database from another process (the CLI); silent unless
 * given a logger.
 */
export async function testStack(
  kind: DatabaseKind,
  title: string,
  options: Partial<Omit<StackOptions, 'databaseUrl'>> = {},
): Promise<Stack & { databaseUrl: string }> {
  const { url, schema } = await freshDatabaseUrl(kind, title);
  const databaseUrl = schema ? withSchema(url, schema) : url;
  const stack = await startStack({
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
  return Object.assign(stack, { databaseUrl });
}

function withSchema(url: string, schema: string): string {
  const parsed = new URL(url);
  parsed.searchParams.set('schema', schema);
  return parsed.toString();
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

/** Every job done but the periodic sweep: the bridge has done all it will for what it was told. */
export async function drained(stack: Stack): Promise<void> {
  await waitFor('the queue to drain', async () => {
    const open = await stack.bridge.db.kysely
      .selectFrom('jobs')
      .select('id')
      .where('status', '<>', 'done')
      .where('kind', '<>', 'deals.sweep')
      .execute();
    return open.length === 0;
  });
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

/**
 * The stack's bridge stopped and started again on the same database, as after a deploy,
 * with `change` applied to its configuration; the simulators keep running (`whileDown`
 * acts on them between the stop and the start). Resolves once
 * the new bridge is ready; `stop()` then stops it and the simulators.
 */
export async function restartBridge<S extends Stack>(
  stack: S,
  change: Partial<Config> = {},
  options: { logger?: Logger; tuning?: BridgeTuning; whileDown?: () => Promise<void> } = {},
): Promise<S> {
  const { config } = stack.bridge;
  const schema = stack.bridge.db.schema;
  await stack.bridge.stop();
  await options.whileDown?.();
  const bridge = await createBridge({ ...config, ...change }, options.logger ?? createTestLogger(), {
    dbSchema: schema,
    pollMs: 20,
    settleMs: 300,
    backoff: { baseMs: 50, maxMs: 500 },
    ...options.tuning,
  });
  const { amo, partner } = stack;
  const restarted: S = {
    ...stack,
    bridge,
    async stop() {
      await bridge.stop();
      await Promise.all([amo.close(), partner.close()]);
    },
  };
  await bridge.ready;
  return restarted;
}
