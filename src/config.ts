import { z } from 'zod';
import { type DurationUnit, parseDuration } from './lib/duration.js';

/**
 * The operator contract's environment (docs/contracts.md), parsed into typed objects. The
 * variables come in groups, one per thing the process talks to, so each entry point
 * validates only what it uses: `npm start` all of them (`configSchema`), `amobridge dead
 * list` the database's. A missing or malformed variable stops the process with its name.
 */

const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === '' ? undefined : v));


/** `<number><s|m|h|d>`, e.g. `30d`, read as seconds. */
const duration = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((v, ctx) => {
      const ms = /^\d+[smhd]$/.test(v.trim()) ? parseDuration(v) : 0;
      if (ms > 0) return ms / 1000;
      ctx.addIssue({ code: 'custom', message: `must be a positive number with s, m, h or d, e.g. 30d (got "${v}")` });
      return z.NEVER;
    });

/** `<orders>/<window>`, e.g. `5/10m`: at most 5 orders per user in any 10 minutes. */
const orderLimit = z
  .string()
  .regex(/^[1-9][0-9]{0,5}\/[1-9][0-9]{0,5}[smhd]$/, 'must be <orders>/<window>, e.g. 5/10m (window in s, m, h or d)')
  .transform((v) => {
    const [max, window] = v.split('/') as [string, string];
    const unit = window.at(-1) as DurationUnit;
    return { max: Number(max), windowMs: parseDuration(window), window: { count: Number(window.slice(0, -1)), unit } };
  });

const port = (fallback: number) => z.coerce.number().int().min(0).max(65535).default(fallback);

/** The database, and how much is logged: every command needs these. */
export const storageEnv = z.object({
  DATABASE_URL: z
    .string()
    .default('sqlite:./data/amobridge.db')
    .refine((v) => v.startsWith('sqlite:') || /^postgres(ql)?:\/\//.test(v), {
      message: 'must be sqlite:<path> or postgres://…',
    }),
  LOG_LEVEL: z.enum(['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly']).default('info'),
});

export const mappingsEnv = z.object({
  MAPPINGS_PATH: z.string().default('mappings/default.yaml'),
});

/** The amoCRM account and how to authenticate to it (see `withAmoAuth`). */
export const amoEnv = z.object({
  AMO_SUBDOMAIN: z.string().regex(/^[a-z0-9-]+$/i, 'must be the account subdomain, e.g. company2'),
  AMO_BASE_URL: optionalString.pipe(z.url().optional()),
  AMO_CLIENT_ID: optionalString,
  AMO_CLIENT_SECRET: optionalString,
  AMO_REDIRECT_URI: optionalString.pipe(z.url().optional()),
  AMO_LONG_LIVED_TOKEN: optionalString,
  AMO_RATE_LIMIT_RPS: z.coerce.number().positive().max(50).default(7),
});

export const amoWebhookEnv = z.object({
  AMO_WEBHOOK_SECRET: z.string().min(16, 'must be at least 16 characters'),
});

export const partnerEnv = z.object({
  PARTNER_API_URL: z.url(),
  PARTNER_API_TOKEN: z.string().min(1),
  PARTNER_WEBHOOK_SECRET: z.string().regex(/^whsec_[A-Za-z0-9+/=]+$/, 'must look like whsec_<base64>'),
});

export const webviewEnv = z.object({
  WEBVIEW_JWT_SECRET: z.string().min(32, 'must be at least 32 characters'),
  WEBVIEW_JWT_ISSUER: z.string().min(1),
  WEBVIEW_JWT_AUDIENCE: z.string().min(1),
  SESSION_SECRET: z.string().min(32, 'must be at least 32 characters'),
  WEBVIEW_LOCALE: z.enum(['ru', 'en']).default('ru'),
  /** The admin page's language (/admin/ui); unset, it follows WEBVIEW_LOCALE. */
  ADMIN_LOCALE: z.enum(['ru', 'en']).optional(),
  WEBVIEW_TOKEN_MAX_AGE: z.coerce.number().int().min(1).max(86_400).default(300),
  WEBVIEW_ORDER_LIMIT: orderLimit.prefault('5/10m'),
});

/** The long-running process: its port, its worker's pace and how it stops. */
export const serviceEnv = z.object({
  PORT: port(3000),
  SWEEP_INTERVAL: z.coerce.number().int().min(0).default(300),
  PARTNER_SWEEP_INTERVAL: z.coerce.number().int().min(0).default(300),
  /** How long raw webhooks, finished jobs and final orders' personal data are kept, in seconds. */
  RETENTION: duration('30d'),
  /** Seconds between runs of the retention job (0 turns it off, as for the sweeps). */
  RETENTION_INTERVAL: z.coerce.number().int().min(0).default(3600),
  JOB_LEASE_SECONDS: z.coerce.number().min(1).max(3600).default(30),
  AMO_SEARCH_SETTLE_SECONDS: z.coerce.number().min(0).max(600).default(20),
  /** Seconds a SIGTERM or SIGINT may take: running jobs finish or are handed back within it. */
  SHUTDOWN_TIMEOUT: z.coerce.number().positive().max(3600).default(25),
});

type AmoAuthFields = Pick<
  z.infer<typeof amoEnv>,
  'AMO_CLIENT_ID' | 'AMO_CLIENT_SECRET' | 'AMO_REDIRECT_URI' | 'AMO_LONG_LIVED_TOKEN'
>;

/** amoCRM needs either the three OAuth variables or a long-lived token. */
export function withAmoAuth<S extends z.ZodType<AmoAuthFields>>(schema: S): S {
  return schema.superRefine((c, ctx) => {
    const oauth = [c.AMO_CLIENT_ID, c.AMO_CLIENT_SECRET, c.AMO_REDIRECT_URI];
    if (!c.AMO_LONG_LIVED_TOKEN && oauth.some((v) => !v)) {
      ctx.addIssue({
        code: 'custom',
        path: ['AMO_CLIENT_ID'],
        message: 'set AMO_CLIENT_ID, AMO_CLIENT_SECRET and AMO_REDIRECT_URI (OAuth) or AMO_LONG_LIVED_TOKEN',
      });
    }
  });
}

/** Everything `npm start` uses. */
export const configSchema = withAmoAuth(
  storageEnv
    .extend(mappingsEnv.shape)
    .extend(amoEnv.shape)
    .extend(amoWebhookEnv.shape)
    .extend(partnerEnv.shape)
    .extend(webviewEnv.shape)
    .extend(serviceEnv.shape),
);

export type Config = z.infer<typeof configSchema>;
export type AmoConfig = z.infer<typeof amoEnv>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/**
 * Parses the environment with one of the schemas above. An empty variable counts as unset,
 * so `PORT=` takes the default; a required one is reported as empty. All problems go into
 * one line, each named by its variable.
 */
export function parseEnv<S extends z.ZodType>(schema: S, env: NodeJS.ProcessEnv = process.env): z.output<S> {
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== ''));
  const parsed = schema.safeParse(present);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => {
    const name = String(issue.path[0] ?? '(environment)');
    if (issue.code === 'invalid_type' && present[name] === undefined) return `${name} is ${env[name] === '' ? 'empty' : 'not set'}`;
    return `${name}: ${issue.message}`;
  });
  throw new ConfigError(`invalid configuration: ${[...new Set(problems)].join('; ')}`);
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  return parseEnv(configSchema, env);
}

/** The base URL of the amoCRM account: the override, or the real account host. */
export function amoBaseUrl(config: Pick<Config, 'AMO_BASE_URL' | 'AMO_SUBDOMAIN'>): string {
  return (config.AMO_BASE_URL ?? `https://${config.AMO_SUBDOMAIN}.amocrm.ru`).replace(/\/$/, '');
}
