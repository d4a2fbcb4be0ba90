import { type Bridge, createBridge } from './bridge.js';
import { loadConfig } from './config.js';
import { createLogger, type Logger } from './logger.js';
import { MappingsError } from './mappings/load.js';
import { describeStartupError } from './startup-error.js';

/**
 * `npm start` (`node dist/main.js`): migrations, the HTTP edge and the worker in one
 * process, configured from the environment (and .env when present). `--no-worker` serves
 * HTTP only; several instances on one PostgreSQL share the queue, the rate limiter and
 * the token. SIGTERM or SIGINT stop it within SHUTDOWN_TIMEOUT seconds, exit code 0.
 */

/** Of SHUTDOWN_TIMEOUT, what is kept back for handing leases back and closing the database. */
const CLOSE_RESERVE_MS = 2000;

let bridge: Bridge | undefined;
let logger: Logger | undefined;
let shutdownTimeoutMs = 25_000;
let stopping = false;

/** Stops the bridge, once, whatever asks first: a signal, or mappings that do not resolve. */
function shutdown(reason: string, exitCode = 0): void {
  if (stopping) return;
  stopping = true;
  logger?.info('bridge.stopping', { reason, timeoutSeconds: shutdownTimeoutMs / 1000 });
  // A signal during start-up: nothing to drain yet, and main() may be mid-way.
  if (!bridge) process.exit(exitCode);
  const hardStop = setTimeout(() => {
    logger?.error('bridge.stop_timed_out', { timeoutSeconds: shutdownTimeoutMs / 1000 });
    process.exit(1);
  }, shutdownTimeoutMs);
  hardStop.unref();
  const graceMs = Math.max(0, shutdownTimeoutMs - Math.min(CLOSE_RESERVE_MS, shutdownTimeoutMs / 5));
  bridge.stop({ graceMs }).then(
    () => {
      logger?.info('bridge.stopped', { reason });
      process.exit(exitCode);
    },
    (error: unknown) => {
      logger?.error('bridge.stop_failed', { error: String(error) });
      process.exit(1);
    },
  );
}

async function main(): Promise<void> {
  // npm runs `exec node dist/main.js`, so these reach this process whether the signal was
  // sent to npm (which forwards it) or to node itself.
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  try {
    process.loadEnvFile?.('.env');
  } catch {
    // No .env: the environment alone configures the process.
  }
  const config = loadConfig();
  shutdownTimeoutMs = config.SHUTDOWN_TIMEOUT * 1000;
  logger = createLogger(config.LOG_LEVEL);
  const log = logger;
  bridge = await createBridge(config, log, { worker: !process.argv.includes('--no-worker') });
  const url = await bridge.listen(config.PORT, '0.0.0.0');
  log.info('bridge.listening', { url, database: bridge.db.dialect });
  bridge.ready.catch((error: unknown) => {
    if (stopping) return;
    // The file is valid but names what the account does not have: a start-up error too.
    log.error('bridge.mappings_invalid', { error: error instanceof MappingsError ? error.message : String(error) });
    const failure = describeStartupError(error);
    process.stderr.write(`amobridge: ${failure.line}\n`);
    shutdown('mappings_invalid', failure.exitCode);
  });
}

main().catch((error: unknown) => {
  const failure = describeStartupError(error);
  process.stderr.write(`amobridge: ${failure.line}\n`);
  process.exit(failure.exitCode);
});
