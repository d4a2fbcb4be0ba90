/**
 * Exponential backoff with jitter, as a pure function so the schedule is tested without
 * clocks: attempt 1 waits about `baseMs`, each later attempt doubles, capped at `maxMs`.
 * "Equal jitter" keeps at least half the delay so retries never bunch at zero.
 */
export interface BackoffPolicy {
  baseMs: number;
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 2_000, maxMs: 15 * 60_000 };

export function backoffDelay(attempt: number, policy: BackoffPolicy, random = Math.random): number {
  const exp = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exp / 2 + (random() * exp) / 2);
}

/** The next run time after a failure: the backoff, or later if the server asked for it. */
export function nextRunAt(
  now: number,
  attempt: number,
  policy: BackoffPolicy,
  retryAfterMs?: number,
  random = Math.random,
): number {
  return now + Math.max(backoffDelay(attempt, policy, random), retryAfterMs ?? 0);
}
