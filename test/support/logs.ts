import { Writable } from 'node:stream';
import winston from 'winston';
import { createLogger, type Logger } from '../../src/logger.js';

/** A real logger (redaction and all) whose JSON events are kept for the test to read. */
export function capturingLogger(level = 'debug'): { logger: Logger; events: Array<Record<string, unknown>> } {
  const events: Array<Record<string, unknown>> = [];
  const logger = createLogger(level);
  logger.clear();
  logger.add(
    new winston.transports.Stream({
      stream: new Writable({
        write(chunk, _encoding, done) {
          for (const line of String(chunk).split('\n')) if (line.trim()) events.push(JSON.parse(line) as Record<string, unknown>);
          done();
        },
      }),
    }),
  );
  return { logger, events };
}
