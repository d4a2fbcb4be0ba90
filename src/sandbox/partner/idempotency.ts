/**
 * Idempotency-Key bookkeeping as payment-style APIs do it: a key remembers the request it
 * was first used with (a fingerprint of path and body) and the answer it got. The same
 * key with the same request is a replay; with a different request it is a client bug
 * (422). Only successful answers are remembered, so a request refused for a reason that
 * can go away (404, 409 after the order moved on) is evaluated afresh when retried.
 */
export type IdempotencyLookup<T> =
  | { kind: 'new' }
  | { kind: 'replay'; value: T }
  | { kind: 'mismatch' };

export class IdempotencyStore<T> {
  private readonly entries = new Map<string, { fingerprint: string; value: T }>();

  lookup(scope: string, key: string, fingerprint: string): IdempotencyLookup<T> {
    const entry = this.entries.get(`${scope}\n${key}`);
    if (!entry) return { kind: 'new' };
    return entry.fingerprint === fingerprint ? { kind: 'replay', value: entry.value } : { kind: 'mismatch' };
  }

  save(scope: string, key: string, fingerprint: string, value: T): void {
    this.entries.set(`${scope}\n${key}`, { fingerprint, value });
  }
}

/** JSON with object keys sorted, so `{a,b}` and `{b,a}` are the same request. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      const record = v as Record<string, unknown>;
      return Object.fromEntries(Object.keys(record).sort().map((k) => [k, record[k]]));
    }
    return v;
  }) ?? 'undefined';
}
