import { parseArgs } from 'node:util';
import { createApiKey, revokeApiKey, SCOPES, scopeSchema } from '../admin/api-keys.js';
import { amoClientFromConfig } from '../amo/from-config.js';
import { ConfigError, loadConfig } from '../config.js';
import { connect } from '../db/connect.js';
import { migrate } from '../db/migrate.js';
import { createLogger } from '../logger.js';
import { fetchAccountCatalog } from '../mappings/account-catalog.js';
import { describeMappings } from '../mappings/describe.js';
import { loadMappingsFile, MappingsError } from '../mappings/load.js';
import { resolveMappings } from '../mappings/resolve.js';
import { createMetrics } from '../metrics.js';
import { listDeadJobs, replayDeadJob } from '../queue/dead-letter.js';
import { relinkOrderDeal } from '../sync/relink.js';

/** `amobridge <command>`: operator tasks against the configured account and database. */

const USAGE = `usage: amobridge <command>
  mappings check          resolve MAPPINGS_PATH against the account and print the table
  webhooks register <url> subscribe <url>/webhooks/amocrm/<secret> to deal changes
  oauth <code>            exchange an amoCRM authorization code and store the tokens
  dead list               list dead-lettered jobs with their last error
  dead replay <job-id>    send a dead job back to the queue
  orders relink <order-id> <deal-id>   link an order to its own deal (it must carry the order's detmirOrderId)
  apikey create <name> <scope>...   an admin API key (scopes: ${SCOPES.join(', ')}); shown once
  apikey revoke <id>      revoke an admin API key
`;

/** Both are needed: status webhooks are known to go missing while update ones arrive. */
const WEBHOOK_EVENTS = ['status_lead', 'update_lead'];

async function main(argv: string[]): Promise<number> {
  const { positionals } = parseArgs({ args: argv, allowPositionals: true, strict: false });
  const [command, sub, arg] = positionals;
  if (!command || command === 'help') {
    process.stdout.write(USAGE);
    return command ? 0 : 2;
  }
  try {
    process.loadEnvFile?.('.env');
  } catch {
    // The environment alone configures the command.
  }
  const config = loadConfig();
  const logger = createLogger(config.LOG_LEVEL);
  const db = connect(config.DATABASE_URL);
  try {
    await migrate(db);
    const amo = amoClientFromConfig(config, { db, logger, metrics: createMetrics() });
    if (command === 'mappings' && sub === 'check') {
      const mappings = resolveMappings(loadMappingsFile(config.MAPPINGS_PATH), await fetchAccountCatalog(amo));
      process.stdout.write(`${config.MAPPINGS_PATH} resolves against ${config.AMO_SUBDOMAIN}:\n\n${describeMappings(mappings)}`);
      return 0;
    }
    if (command === 'webhooks' && sub === 'register') {
      if (!arg || !/^https?:\/\//.test(arg)) throw new UsageError('webhooks register needs the bridge\'s public base URL');
      const destination = `${arg.replace(/\/$/, '')}/webhooks/amocrm/${config.AMO_WEBHOOK_SECRET}`;
      await amo.registerWebhook(destination, WEBHOOK_EVENTS);
      process.stdout.write(`subscribed ${arg.replace(/\/$/, '')}/webhooks/amocrm/… to ${WEBHOOK_EVENTS.join(', ')}\n`);
      return 0;
    }
    if (command === 'oauth') {
      if (!sub) throw new UsageError('oauth needs the authorization code');
      if (config.AMO_LONG_LIVED_TOKEN) throw new UsageError('AMO_LONG_LIVED_TOKEN is set; OAuth is not used');
      await amo.exchangeAuthorizationCode(sub);
      const account = await amo.getAccount();
      process.stdout.write(`tokens stored; connected to account ${account.id} (${account.subdomain})\n`);
      return 0;
    }
    if (command === 'dead' && sub === 'list') {
      const jobs = await listDeadJobs(db.kysely);
      if (jobs.length === 0) process.stdout.write('no dead jobs\n');
      for (const job of jobs) {
        process.stdout.write(`${job.id}\t${job.kind}\t${job.job_key}\tattempts ${job.attempts}\t${job.last_error ?? ''}\n`);
      }
      return 0;
    }
    if (command === 'dead' && sub === 'replay') {
      const id = Number(arg);
      if (!Number.isInteger(id)) throw new UsageError('dead replay needs a job id');
      const ok = await replayDeadJob(db.kysely, id);
      process.stdout.write(ok ? `job ${id} queued again\n` : `job ${id} is not dead\n`);
      return ok ? 0 : 1;
    }
    if (command === 'orders' && sub === 'relink') {
      const dealId = Number(positionals[3]);
      if (!arg || !Number.isSafeInteger(dealId) || dealId <= 0) throw new UsageError('orders relink needs an order id and a deal id');
      const mappings = resolveMappings(loadMappingsFile(config.MAPPINGS_PATH), await fetchAccountCatalog(amo));
      const outcome = await relinkOrderDeal({ db, amo, mappings }, arg, dealId);
      if (outcome.type === 'refused') {
        process.stderr.write(`amobridge: ${outcome.reason}\n`);
        return 1;
      }
      process.stdout.write(`order ${arg} linked to deal ${dealId} (was ${outcome.previous ?? 'none'}); now replay its dead jobs (dead list)\n`);
      return 0;
    }
    if (command === 'apikey' && sub === 'create') {
      const scopes = positionals.slice(3).map((s) => scopeSchema.safeParse(s));
      if (!arg || scopes.length === 0 || scopes.some((s) => !s.success)) {
        throw new UsageError(`apikey create needs a name and scopes from: ${SCOPES.join(', ')}`);
      }
      const created = await createApiKey(db.kysely, arg, scopes.map((s) => s.data!));
      process.stdout.write(`${created.key}\n(id ${created.id}; the key is not shown again)\n`);
      return 0;
    }
    if (command === 'apikey' && sub === 'revoke') {
      if (!arg) throw new UsageError('apikey revoke needs the key id');
      const ok = await revokeApiKey(db.kysely, arg);
      process.stdout.write(ok ? `key ${arg} revoked\n` : `no active key ${arg}\n`);
      return ok ? 0 : 1;
    }
    throw new UsageError(`unknown command: ${positionals.join(' ')}`);
  } finally {
    await db.close();
  }
}

class UsageError extends Error {}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof UsageError) process.stderr.write(`amobridge: ${error.message}\n${USAGE}`);
    else if (error instanceof ConfigError || error instanceof MappingsError) process.stderr.write(`amobridge: ${error.message}\n`);
    else process.stderr.write(`amobridge: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(2);
  },
);
