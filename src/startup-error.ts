import { ConfigError } from './config.js';
import { DatabaseOpenError } from './db/open.js';
import { MappingsError } from './mappings/load.js';

export interface StartupFailure {
  /** One line: what stopped the process, then what to do about it. */
  line: string;
  exitCode: number;
}

/**
 * What an operator reads when the bridge or a command cannot start: the cause and the fix
 * on one line, never a stack trace (these are mistakes of set-up, not of the code).
 */
export function describeStartupError(error: unknown): StartupFailure {
  const message = error instanceof Error ? error.message : String(error);
  return describeSetupError(error) ?? { line: `could not start: ${oneLine(message)}`, exitCode: 1 };
}

/** The cause and fix of a set-up mistake (environment, mappings file, database, port); undefined for anything else. */
export function describeSetupError(error: unknown): StartupFailure | undefined {
  if (error instanceof ConfigError) {
    return { line: `${error.message}; fix it in the environment or in .env (.env.example describes every variable)`, exitCode: 2 };
  }
  if (error instanceof MappingsError) {
    return {
      line: `${oneLine(error.message)}; fix the file, or point MAPPINGS_PATH at the right one (\`amobridge mappings check\` checks it against the account)`,
      exitCode: 3,
    };
  }
  if (error instanceof DatabaseOpenError) {
    const fix = error.kind === 'sqlite'
      ? 'check DATABASE_URL: the file must be in a folder that exists or can be created, and is writable'
      : 'check DATABASE_URL, and that PostgreSQL runs and accepts connections from this host';
    return { line: `${oneLine(error.message)}; ${fix}`, exitCode: 1 };
  }
  const listen = error as { syscall?: unknown; code?: unknown; port?: unknown } | null;
  if (typeof listen === 'object' && listen?.syscall === 'listen') {
    const cause = listen.code === 'EADDRINUSE' ? `port ${String(listen.port)} is already in use` : `cannot listen on port ${String(listen.port)} (${String(listen.code)})`;
    return { line: `${cause}; set PORT to a free port (above 1023 unless the process may bind low ones), or stop the process that holds it`, exitCode: 1 };
  }
  return undefined;
}

/** A multi-line message (a list of problems under a heading) on one line. */
function oneLine(message: string): string {
  const [head = '', ...rest] = message.split('\n').map((l) => l.trim()).filter(Boolean);
  return rest.length === 0 ? head : `${head} ${rest.join('; ')}`;
}
