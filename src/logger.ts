import winston from 'winston';
import { redact as redactDeep, redactText } from './lib/redact.js';

/**
 * Structured JSON logs: one line per event, named like `order.intake.contact_created`,
 * with ids as fields. Secrets, phone numbers, e-mails and names never reach a log line:
 * the redact format (src/lib/redact.ts) runs on every entry, on every field and on the
 * message itself, whatever the caller passed.
 */

export { maskPhone } from './lib/redact.js';

const redact = winston.format((info) => {
  const fields = info as Record<string, unknown>;
  for (const key of Object.keys(fields)) {
    if (key === 'level') continue;
    fields[key] = key === 'message' && typeof fields[key] === 'string' ? redactText(fields[key]) : redactDeep(fields[key], key);
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
