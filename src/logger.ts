import winston from 'winston';

/**
 * Structured JSON logs: one line per event, named like `order.intake.contact_created`,
 * with ids as fields. Secrets and phone numbers never reach a log line: the redact
 * format runs on every entry, whatever the caller passed.
 */

const SECRET_KEYS = /token|secret|authorization|password|cookie|code_verifier|^code$/i;
const PHONE_KEYS = /phone/i;

export function maskPhone(phone: string): string {
  const digits = phone.replace(/\D/g, '');
  if (digits.length <= 4) return '***';
  return `***${digits.slice(-4)}`;
}

function redactValue(key: string, value: unknown, depth: number): unknown {
  if (SECRET_KEYS.test(key) && value !== undefined && value !== null) return '[redacted]';
  if (PHONE_KEYS.test(key) && typeof value === 'string') return maskPhone(value);
  if (depth > 4 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => redactValue('', v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = redactValue(k, v, depth + 1);
  return out;
}

const redact = winston.format((info) => {
  for (const key of Object.keys(info)) {
    if (key === 'level' || key === 'message') continue;
    (info as Record<string, unknown>)[key] = redactValue(key, info[key], 0);
  }
  return info;
});

export type Logger = winston.Logger;

export function createLogger(level = process.env.LOG_LEVEL ?? 'info', silent = false): Logger {
  return winston.createLogger({
    level,
    silent,
    format: winston.format.combine(redact(), winston.format.timestamp(), winston.format.json()),
    transports: [new winston.transports.Console()],
  });
}

/** Tests log nothing unless LOG_LEVEL asks for it. */
export function createTestLogger(): Logger {
  return createLogger(process.env.LOG_LEVEL ?? 'error', !process.env.LOG_LEVEL);
}
