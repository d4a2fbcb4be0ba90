import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';

/** The outside services whose health /readyz reports. */
export type ServiceName = 'amocrm' | 'partner';

/** What one answer (or the lack of one) says about a service. */
export type HealthSignal =
  /** It answered and accepted our credentials. */
  | { kind: 'ok' }
  /** It answered, but the answer says nothing about our credentials (429, an OAuth endpoint). */
  | { kind: 'reachable' }
  /** It refused our credentials; `fix` says what a person must do. */
  | { kind: 'unauthorized'; fix: string }
  /** No answer, or a 5xx. */
  | { kind: 'unreachable'; reason: string };

export type HealthState =
  | { kind: 'unknown' }
  | { kind: 'ok' }
  | { kind: 'unauthorized'; fix: string }
  /** `since`: the first failure of the current run of failures (ms since the epoch). */
  | { kind: 'unreachable'; since: number; reason: string };

/** The state after `signal` arrived at `now`. */
export function nextHealth(state: HealthState, signal: HealthSignal, now: number): HealthState {
  switch (signal.kind) {
    case 'ok':
      return { kind: 'ok' };
    case 'reachable':
      // The outage is over; whether we are authorized is for the next real answer to say.
      return state.kind === 'unreachable' ? { kind: 'ok' } : state;
    case 'unauthorized':
      return { kind: 'unauthorized', fix: signal.fix };
    case 'unreachable':
      return { kind: 'unreachable', since: state.kind === 'unreachable' ? state.since : now, reason: signal.reason };
  }
}

/** The state as /readyz shows it: `ok`, `unauthorized: <fix>`, `unreachable since <ISO>: <reason>`. */
export function describeHealth(state: HealthState): string {
  switch (state.kind) {
    case 'unknown':
      return 'not checked yet';
    case 'ok':
      return 'ok';
    case 'unauthorized':
      return `unauthorized: ${state.fix}`;
    case 'unreachable':
      return `unreachable since ${new Date(state.since).toISOString()}: ${state.reason}`;
  }
}

/**
 * The health of one outside service, fed by the outcome of every call its client makes
 * (and read by /readyz, which calls nobody). Changes are logged once each, not per call:
 * a refusal is one `<service>.unauthorized` error naming the fix, logged again only after
 * the service was ok in between (or the fix changed); an outage is one
 * `<service>.unreachable` warning; the way back is `<service>.recovered`.
 */
export class ServiceHealth {
  private current: HealthState = { kind: 'unknown' };
  /** The fix last logged; forgotten once the service is ok, so a refusal is news once per episode. */
  private reportedFix: string | undefined;
  /** When the last call ended (ms since the epoch); undefined before any. */
  lastCallAt: number | undefined;

  constructor(
    readonly service: ServiceName,
    private readonly deps: { logger: Logger; metrics?: Metrics; now?: () => number },
  ) {
    deps.metrics?.dependencyUp.set({ service }, 0);
  }

  get state(): HealthState {
    return this.current;
  }

  describe(): string {
    return describeHealth(this.current);
  }

  record(signal: HealthSignal): void {
    const now = (this.deps.now ?? Date.now)();
    const previous = this.current;
    const next = nextHealth(previous, signal, now);
    this.current = next;
    this.lastCallAt = now;
    this.deps.metrics?.dependencyUp.set({ service: this.service }, next.kind === 'ok' ? 1 : 0);

    const { logger } = this.deps;
    if (next.kind === 'unauthorized' && next.fix !== this.reportedFix) {
      this.reportedFix = next.fix;
      logger.error(`${this.service}.unauthorized`, { fix: next.fix });
    } else if (next.kind === 'unreachable' && previous.kind !== 'unreachable') {
      logger.warn(`${this.service}.unreachable`, { reason: next.reason });
    } else if (next.kind === 'ok' && previous.kind !== 'ok') {
      this.reportedFix = undefined;
      if (previous.kind !== 'unknown') logger.info(`${this.service}.recovered`, { was: previous.kind });
    }
  }
}
