import { isRefusal, isRetryable } from '../lib/http-error.js';
import { redactText } from '../lib/redact.js';

/** What a job's failure is made of, as the queue keeps and logs it. */
export interface Failure {
  message: string;
  /** Where it was thrown: the stack frames without the message line, then any causes. */
  stack?: string;
  retryable: boolean;
  /** Credentials were refused: the job waits for a person to fix them, spending no attempt. */
  refused?: boolean;
  /** The wait a server asked for (Retry-After), if it said. */
  retryAfterMs?: number;
}

/** last_error's bound: a stack is kept, not a novel. */
export const LAST_ERROR_LIMIT = 4000;
const MESSAGE_LIMIT = 1000;
const CAUSE_DEPTH = 3;

export function describeFailure(error: unknown): Failure {
  const retryAfterMs =
    typeof error === 'object' && error !== null && 'retryAfterMs' in error && typeof error.retryAfterMs === 'number'
      ? error.retryAfterMs
      : undefined;
  // Peer answers are scrubbed where they are caught (HttpError); this catches the rest,
  // before anything reaches last_error or a log line.
  const frames = whereThrown(error, 0);
  const stack = frames === undefined ? undefined : redactText(frames);
  return {
    message: redactText(error instanceof Error ? error.message : String(error)),
    ...(stack ? { stack } : {}),
    retryable: isRetryable(error),
    refused: isRefusal(error),
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
  };
}

/**
 * The text stored in last_error: the message on the first line (what a list shows), then
 * the frames, cut to `limit` characters.
 *
 * @example lastErrorText({ message: 'socket hang up', stack: '    at f (a.ts:1:1)' }) // 'socket hang up\n    at f (a.ts:1:1)'
 */
export function lastErrorText(failure: Pick<Failure, 'message' | 'stack'>, limit = LAST_ERROR_LIMIT): string {
  const message = cut(failure.message, MESSAGE_LIMIT);
  return cut(failure.stack ? `${message}\n${failure.stack}` : message, limit);
}

function cut(text: string, limit: number): string {
  return text.length > limit ? `${text.slice(0, limit - 1)}…` : text;
}

/** A stack's header repeats the message (perhaps over several lines): only frames are kept. */
function whereThrown(error: unknown, depth: number): string | undefined {
  if (!(error instanceof Error)) return undefined;
  const lines = (error.stack ?? '').split('\n');
  const first = lines.findIndex((line) => /^\s+at /.test(line));
  const parts = first < 0 ? [] : [lines.slice(first).join('\n')];
  if (error.cause !== undefined && depth < CAUSE_DEPTH) {
    const cause = error.cause;
    parts.push(`caused by: ${cause instanceof Error ? cause.message : String(cause)}`);
    const frames = whereThrown(cause, depth + 1);
    if (frames) parts.push(frames);
  }
  return parts.length > 0 ? parts.join('\n') : undefined;
}
