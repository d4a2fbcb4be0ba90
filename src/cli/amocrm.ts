import { amoClientFromConfig } from '../amo/from-config.js';
import type { AmoClient } from '../amo/client.js';
import type { AmoConfig } from '../config.js';
import type { Db } from '../db/connect.js';
import { parseDuration } from '../lib/duration.js';
import { createLogger } from '../logger.js';
import { fetchAccountCatalog } from '../mappings/account-catalog.js';
import { describeMappings } from '../mappings/describe.js';
import { loadMappingsFile } from '../mappings/load.js';
import { resolveMappings } from '../mappings/resolve.js';
import { createMetrics } from '../metrics.js';
import { withDatabase } from './database.js';
import { mappingsDiff } from './mappings-diff.js';
import { relinkOrderDeal } from '../sync/relink.js';
import { UsageError } from './usage-error.js';

/** The commands that talk to the amoCRM account (its tokens live in the database). */

type AmoCommandConfig = AmoConfig & { DATABASE_URL: string; LOG_LEVEL: string };

/** Both are needed: status webhooks are known to go missing while update ones arrive. */
const WEBHOOK_EVENTS = ['status_lead', 'update_lead'];

function withAmo(
  config: AmoCommandConfig,
  run: (amo: AmoClient, db: Db) => Promise<number>,
  options: { migrate?: boolean } = {},
): Promise<number> {
  return withDatabase(config, (db) => run(amoClientFromConfig(config, { db, logger: createLogger(config.LOG_LEVEL), metrics: createMetrics() }), db), options);
}

/** `amobridge mappings check`: MAPPINGS_PATH resolved against the account, as a table. */
export function mappingsCheck(config: AmoCommandConfig & { MAPPINGS_PATH: string }): Promise<number> {
  const file = loadMappingsFile(config.MAPPINGS_PATH);
  return withAmo(config, async (amo) => {
    const mappings = resolveMappings(file, await fetchAccountCatalog(amo));
    process.stdout.write(`${config.MAPPINGS_PATH} resolves against ${config.AMO_SUBDOMAIN}:\n\n${describeMappings(mappings)}`);
    return 0;
  });
}

/** `amobridge webhooks register <url>`: subscribes <url>/webhooks/amocrm/<secret> to deal changes. */
export function registerWebhooks(config: AmoCommandConfig & { AMO_WEBHOOK_SECRET: string }, base: string | undefined): Promise<number> {
  if (!base || !/^https?:\/\//.test(base)) throw new UsageError("webhooks register needs the bridge's public base URL");
  const root = base.replace(/\/$/, '');
  return withAmo(config, async (amo) => {
    await amo.registerWebhook(`${root}/webhooks/amocrm/${config.AMO_WEBHOOK_SECRET}`, WEBHOOK_EVENTS);
    process.stdout.write(`subscribed ${root}/webhooks/amocrm/… to ${WEBHOOK_EVENTS.join(', ')}\n`);
    return 0;
  });
}

/** `amobridge oauth <code>`: exchanges an authorization code and stores the tokens. */
export function exchangeOAuthCode(config: AmoCommandConfig, code: string | undefined): Promise<number> {
  if (!code) throw new UsageError('oauth needs the authorization code');
  if (config.AMO_LONG_LIVED_TOKEN) throw new UsageError('AMO_LONG_LIVED_TOKEN is set; OAuth is not used');
  return withAmo(config, async (amo) => {
    await amo.exchangeAuthorizationCode(code);
    const account = await amo.getAccount();
    process.stdout.write(`tokens stored; connected to account ${account.id} (${account.subdomain})\n`);
    return 0;
  });
}

/**
 * `amobridge mappings diff <file> [--since 7d]`: what the edited table would do differently
 * to the orders of the deals changed in the span. Reads only: not even a migration.
 */
export function diffMappingsFile(config: AmoCommandConfig & { MAPPINGS_PATH: string }, file: string | undefined, since = '7d'): Promise<number> {
  if (!file) throw new UsageError('mappings diff needs the edited mappings file');
  let spanMs: number;
  try {
    spanMs = parseDuration(since);
  } catch (error) {
    throw new UsageError(`--since: ${(error as Error).message}`);
  }
  return withAmo(
    config,
    async (amo, db) => {
      process.stdout.write(await mappingsDiff({ db, amo }, { current: config.MAPPINGS_PATH, edited: file }, Date.now() - spanMs));
      return 0;
    },
    { migrate: false },
  );
}

/**
 * `amobridge orders relink <order-id> <deal-id>`: after amoCRM ids were reused, links the
 * order to the deal that carries its id (src/sync/relink.ts); then replay its dead jobs.
 */
export function relinkOrder(config: AmoCommandConfig & { MAPPINGS_PATH: string }, orderId: string | undefined, dealArg: string | undefined): Promise<number> {
  const dealId = Number(dealArg);
  if (!orderId || !Number.isSafeInteger(dealId) || dealId <= 0) throw new UsageError('orders relink needs an order id and a deal id');
  const file = loadMappingsFile(config.MAPPINGS_PATH);
  return withAmo(config, async (amo, db) => {
    const mappings = resolveMappings(file, await fetchAccountCatalog(amo));
    const outcome = await relinkOrderDeal({ db, amo, mappings }, orderId, dealId);
    if (outcome.type === 'refused') {
      process.stderr.write(`amobridge: ${outcome.reason}\n`);
      return 1;
    }
    process.stdout.write(`order ${orderId} linked to deal ${dealId} (was ${outcome.previous ?? 'none'}); now replay its dead jobs (dead list)\n`);
    return 0;
  });
}
