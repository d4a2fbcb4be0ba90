import { scrubBody } from './redact.js';

/**
 * An HTTP answer other than 2xx from a service we call (amoCRM or Company 1),
 * classified once: 408, 409, 429, 5xx and transport failures are worth retrying;
 * any other 4xx is permanent and goes to the dead letter with its reason.
 */
export class HttpError extends Error {
  /**
   * The raw answer, for callers that parse it (a 409's currentStatus). Not enumerable, so
   * no serializer picks it up: it may echo a customer. What reaches logs and
   * jobs.last_error is `excerpt`, in the message.
   */
  declare readonly body: string;
  /** The first 300 characters of the answer with personal data and secrets removed (src/lib/redact.ts). */
  readonly excerpt: string;

  constructor(
    readonly service: 'amocrm' | 'partner',
    readonly method: string,
    readonly path: string,
    readonly status: number,
    body: string,
    /** Milliseconds the server asked us to wait (Retry-After), if it said. */
    readonly retryAfterMs?: number,
  ) {
    const excerpt = scrubBody(body, 300);
    super(`${service} ${method} ${path} answered ${status}${excerpt ? `: ${excerpt}` : ''}`);
    Object.defineProperty(this, 'body', { value: body, enumerable: false });
    this.excerpt = excerpt;
    this.name = 'HttpError';
  }

  get retryable(): boolean {
    return isRetryableStatus(this.status);
  }
}

/** The request never got an answer: timeout, refused connection, reset. */
export class TransportError extends Error {
  readonly retryable = true;
  constructor(
    readonly service: 'amocrm' | 'partner',
    readonly method: string,
    readonly path: string,
    readonly reason: string,
  ) {
    super(`${service} ${method} ${path} failed: ${reason}`);
    this.name = 'TransportError';
  }
}

export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 409 || status === 429 || status >= 500;
}

/** Parses Retry-After (seconds or an HTTP date) into milliseconds from now. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * A service refused our credentials (a 401, or a token amoCRM will no longer refresh):
 * no attempt succeeds until a person fixes them, and then every one does. Work waits for
 * that instead of spending its attempts (src/queue/finish.ts).
 */
export function isRefusal(error: unknown): boolean {
  if (error instanceof HttpError) return error.status === 401;
  return error instanceof CredentialsRefusedError;
}

/** Whether an error is worth another attempt; unknown errors are treated as transient. */
export function isRetryable(error: unknown): boolean {
  if (error instanceof HttpError || error instanceof TransportError) return error.retryable;
  if (error instanceof PermanentError) return false;
  return true;
}

/** A failure that no retry can fix; the message says what a person must do. */
export class PermanentError extends Error {
  override name = 'PermanentError';
}

/** Credentials refused before any request could be made (no stored token, a refused refresh). */
export class CredentialsRefusedError extends PermanentError {
  override name = 'CredentialsRefusedError';
}
