import { createBridge } from './bridge.js';
import { ConfigError, loadConfig } from './config.js';
import { createLogger } from './logger.js';
import { MappingsError } from './mappings/load.js';

/**
 * `npm start`: migrations, the HTTP edge and the worker in one process, configured from
 * the environment (and .env when present). `--no-worker` serves HTTP only; several
 * instances on one PostgreSQL share the queue, the rate limiter and the token.
 */
async function main(): Promise<void> {
  try {
    process.loadEnvFile?.('.env');
  } catch {
    // No .env: the environment alone configures the process.
  }
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`amobridge: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  const logger = createLogger(config.LOG_LEVEL);
  const bridge = await createBridge(config, logger, { worker: !process.argv.includes('--no-worker') });
  const url = await bridge.listen(config.PORT, '0.0.0.0');
  logger.info('bridge.listening', { url, database: bridge.db.dialect });
  bridge.ready.catch((error: unknown) => {
    logger.error('bridge.mappings_invalid', { error: error instanceof MappingsError ? error.message : String(error) });
    process.exitCode = 3;
    void bridge.stop();
  });

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info('bridge.stopping', { signal });
    bridge.stop().then(
      () => process.exit(process.exitCode ?? 0),
      (error: unknown) => {
        logger.error('bridge.stop_failed', { error: String(error) });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

await main();
