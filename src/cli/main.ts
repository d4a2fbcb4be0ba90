import { parseArgs } from 'node:util';
import type { z } from 'zod';
import { SCOPES } from '../admin/api-keys.js';
import { amoEnv, amoWebhookEnv, mappingsEnv, parseEnv, storageEnv, withAmoAuth } from '../config.js';
import { UsageError } from './usage-error.js';

/**
 * `amobridge <command>`: operator tasks against the configured account and database. Each
 * command validates only the variables it uses and loads only the modules it needs (they
 * are imported when it runs), so `amobridge dead list` needs DATABASE_URL alone and
 * answers in about the time node takes to start.
 */

const USAGE = `usage: amobridge <command>
  mappings check          resolve MAPPINGS_PATH against the account and print the table
  mappings diff <file> [--since 7d]   the orders of deals changed in the span (30m, 12h, 7d)
                          that <file> would treat differently from MAPPINGS_PATH; writes nothing
  webhooks register <url> subscribe <url>/webhooks/amocrm/<secret> to deal changes
  oauth <code>            exchange an amoCRM authorization code and store the tokens
  dead list               list dead-lettered jobs with their last error
  dead show <job-id>      a dead job with its whole last error (the stack)
  dead replay <job-id>    send a dead job back to the queue
  orders relink <order-id> <deal-id>   link an order to its own deal (it must carry the order's detmirOrderId)
  apikey create <name> <scope>...   an admin API key (scopes: ${SCOPES.join(', ')}); shown once
  apikey list             admin API keys: name, id, scopes, created, revoked (never a secret)
  apikey revoke <name>    revoke an admin API key by its name (or its id)
`;

/** Options after the command's words: only `mappings diff` has one (`--since`). */
interface Options {
  since?: string;
}

type Command = (env: NodeJS.ProcessEnv, args: string[], options: Options) => Promise<number>;

/** A command: the environment it needs, then what it does with it. */
function command<S extends z.ZodType>(schema: S, run: (config: z.output<S>, args: string[], options: Options) => Promise<number>): Command {
  return (env, args, options) => run(parseEnv(schema, env), args, options);
}

const amoCommandEnv = storageEnv.extend(amoEnv.shape);

const COMMANDS: Record<string, Command> = {
  'dead list': command(storageEnv, async (config) => (await import('./dead.js')).listDead(config)),
  'dead show': command(storageEnv, async (config, [id]) => (await import('./dead.js')).showDead(config, id)),
  'dead replay': command(storageEnv, async (config, [id]) => (await import('./dead.js')).replayDead(config, id)),
  'apikey create': command(storageEnv, async (config, args) => (await import('./api-keys.js')).createKey(config, args)),
  'apikey list': command(storageEnv, async (config) => (await import('./api-keys.js')).listKeys(config)),
  'apikey revoke': command(storageEnv, async (config, [name]) => (await import('./api-keys.js')).revokeKey(config, name)),
  'mappings check': command(withAmoAuth(amoCommandEnv.extend(mappingsEnv.shape)), async (config) =>
    (await import('./amocrm.js')).mappingsCheck(config),
  ),
  'mappings diff': command(withAmoAuth(amoCommandEnv.extend(mappingsEnv.shape)), async (config, [file], { since }) =>
    (await import('./amocrm.js')).diffMappingsFile(config, file, since),
  ),
  'orders relink': command(withAmoAuth(amoCommandEnv.extend(mappingsEnv.shape)), async (config, [orderId, dealId]) =>
    (await import('./amocrm.js')).relinkOrder(config, orderId, dealId),
  ),
  'webhooks register': command(withAmoAuth(amoCommandEnv.extend(amoWebhookEnv.shape)), async (config, [url]) =>
    (await import('./amocrm.js')).registerWebhooks(config, url),
  ),
  oauth: command(withAmoAuth(amoCommandEnv), async (config, [code]) => (await import('./amocrm.js')).exchangeOAuthCode(config, code)),
};

function lookUp(words: string): Command | undefined {
  return Object.hasOwn(COMMANDS, words) ? COMMANDS[words] : undefined;
}

async function main(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({ args: argv, allowPositionals: true, strict: false, options: { since: { type: 'string' } } });
  const [name, sub] = positionals;
  if (!name || name === 'help') {
    process.stdout.write(USAGE);
    return name ? 0 : 2;
  }
  // `dead list` is two words, `oauth <code>` one word and an argument.
  const twoWords = lookUp(`${name} ${sub}`);
  const run = twoWords ?? lookUp(name);
  if (!run) throw new UsageError(`unknown command: ${positionals.join(' ')}`);
  try {
    process.loadEnvFile?.('.env');
  } catch {
    // The environment alone configures the command.
  }
  return run(process.env, positionals.slice(twoWords ? 2 : 1), { since: typeof values.since === 'string' ? values.since : undefined });
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  async (error: unknown) => {
    if (error instanceof UsageError) {
      process.stderr.write(`amobridge: ${error.message}\n${USAGE}`);
    } else {
      // Loaded only on failure: it knows every module's errors.
      const { describeSetupError } = await import('../startup-error.js');
      const line = describeSetupError(error)?.line ?? (error instanceof Error ? error.message : String(error));
      process.stderr.write(`amobridge: ${line}\n`);
    }
    process.exit(2);
  },
);
