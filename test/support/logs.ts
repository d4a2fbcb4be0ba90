import { Writable } from 'node:stream';
import winston from 'winston';
import { createLogger, type Logger } from '../../src/logger.js';

/** A real logger (the production format, redaction included) whose lines land in an array. */
export function capturingLogger(level = 'info'): { logger: Logger; lines: string[]; last(): Record<string, unknown> } {
  const lines: string[] = [];
  const logger = createLogger(level);
  logger.clear();
  logger.add(
    new winston.transports.Stream({
      stream: new Writable({
        write(chunk, _enc, done) {
          lines.push(String(chunk));
          done();
        },
      }),
    }),
  );
  return { logger, lines, last: () => JSON.parse(lines.at(-1)!) as Record<string, unknown> };
}
