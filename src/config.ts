import { z } from 'zod';

/**
 * The operator contract's environment (DESIGN.md): parsed once at start into one typed
 * object. A missing or malformed variable stops the process with a message naming it.
 */

const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === '' ? undefined : v));

const WINDOW_UNITS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** `<orders>/<window>`, e.g. `5/10m`: at most 5 orders per user in any 10 minutes. */
const orderLimit = z
  .string()
  .regex(/^[1-9][0-9]{0,5}\/[1-9][0-9]{0,5}[smhd]$/, 'must be <orders>/<window>, e.g. 5/10m (window in s, m, h or d)')
  .transform((v) => {
    const [max, window] = v.split('/') as [string, string];
    const unit = window.at(-1) as keyof typeof WINDOW_UNITS;
    const count = Number(window.slice(0, -1));
    return { max: Number(max), windowMs: count * WINDOW_UNITS[unit], window: { count, unit } };
  });

const port = (fallback: number) => z.coerce.number().int().min(0).max(65535).default(fallback);

export const configSchema = z
  .object({
    PORT: port(3000),
    DATABASE_URL: z
      .string()
      .default('sqlite:./data/amobridge.db')
      .refine((v) => v.startsWith('sqlite:') || /^postgres(ql)?:\/\//.test(v), {
        message: 'must be sqlite:<path> or postgres://…',
      }),
    MAPPINGS_PATH: z.string().default('mappings/default.yaml'),
    AMO_SUBDOMAIN: z.string().regex(/^[a-z0-9-]+$/i, 'must be the account subdomain, e.g. company2'),
    AMO_BASE_URL: optionalString.pipe(z.url().optional()),
    AMO_CLIENT_ID: optionalString,
    AMO_CLIENT_SECRET: optionalString,
    AMO_REDIRECT_URI: optionalString.pipe(z.url().optional()),
    AMO_LONG_LIVED_TOKEN: optionalString,
    AMO_WEBHOOK_SECRET: z.string().min(16, 'must be at least 16 characters'),
    AMO_RATE_LIMIT_RPS: z.coerce.number().positive().max(50).default(7),
    SWEEP_INTERVAL: z.coerce.number().int().min(0).default(300),
    JOB_LEASE_SECONDS: z.coerce.number().min(1).max(3600).default(30),
    AMO_SEARCH_SETTLE_SECONDS: z.coerce.number().min(0).max(600).default(20),
    PARTNER_API_URL: z.url(),
    PARTNER_API_TOKEN: z.string().min(1),
    PARTNER_WEBHOOK_SECRET: z.string().regex(/^whsec_[A-Za-z0-9+/=]+$/, 'must look like whsec_<base64>'),
    WEBVIEW_JWT_SECRET: z.string().min(32, 'must be at least 32 characters'),
    WEBVIEW_JWT_ISSUER: z.string().min(1),
    WEBVIEW_JWT_AUDIENCE: z.string().min(1),
    SESSION_SECRET: z.string().min(32, 'must be at least 32 characters'),
    WEBVIEW_LOCALE: z.enum(['ru', 'en']).default('ru'),
    WEBVIEW_TOKEN_MAX_AGE: z.coerce.number().int().min(1).max(86_400).default(300),
    WEBVIEW_ORDER_LIMIT: orderLimit.prefault('5/10m'),
    LOG_LEVEL: z.enum(['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly']).default('info'),
  })
  .superRefine((c, ctx) => {
    const oauth = [c.AMO_CLIENT_ID, c.AMO_CLIENT_SECRET, c.AMO_REDIRECT_URI];
    if (!c.AMO_LONG_LIVED_TOKEN && oauth.some((v) => !v)) {
      ctx.addIssue({
        code: 'custom',
        path: ['AMO_CLIENT_ID'],
        message:
          'set AMO_CLIENT_ID, AMO_CLIENT_SECRET and AMO_REDIRECT_URI (OAuth) or AMO_LONG_LIVED_TOKEN',
      });
    }
  });

export type Config = z.infer<typeof configSchema>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = configSchema.safeParse(env);
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.map((issue) => {
    const name = issue.path.join('.') || '(environment)';
    return `  ${name}: ${issue.message}`;
  });
  throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
}

/** The base URL of the amoCRM account: the override, or the real account host. */
export function amoBaseUrl(config: Pick<Config, 'AMO_BASE_URL' | 'AMO_SUBDOMAIN'>): string {
  return (config.AMO_BASE_URL ?? `https://${config.AMO_SUBDOMAIN}.amocrm.ru`).replace(/\/$/, '');
}
