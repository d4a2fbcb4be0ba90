import { Writable } from 'node:stream';
import winston from 'winston';
import { createLogger, type Logger } from '../../src/logger.js';

export interface CapturedLogs {
  /** A real bridge logger (redaction and JSON format included) writing only here. */
  logger: Logger;
  /** Every line written, in order, as the JSON text it was. */
  lines: string[];
  /** The parsed events, e.g. `{ level: 'error', message: 'amocrm.unauthorized', … }`. */
  events(): Array<Record<string, unknown>>;
  /** The last event written. */
  last(): Record<string, unknown>;
}

/** A logger whose lines tests can read back instead of the console. */
export function captureLogs(level = 'info'): CapturedLogs {
  const lines: string[] = [];
  const logger = createLogger(level);
  logger.clear();
  logger.add(
    new winston.transports.Stream({
      stream: new Writable({
        write(chunk, _encoding, done) {
          lines.push(String(chunk));
          done();
        },
      }),
    }),
  );
  return {
    logger,
    lines,
    events: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>),
    last: () => JSON.parse(lines.at(-1)!) as Record<string, unknown>,
  };
}
