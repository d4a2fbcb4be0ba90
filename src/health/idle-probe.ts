import type { Logger } from '../logger.js';
import type { ServiceHealth } from './service-health.js';

/**
 * How long to wait before probing a service last called at `lastCallAt`: nothing while
 * calls keep coming, 0 when it was idle for `intervalMs` (or was never called).
 */
export function probeDelay(lastCallAt: number | undefined, now: number, intervalMs: number): number {
  if (lastCallAt === undefined) return 0;
  return Math.max(0, lastCallAt + intervalMs - now);
}

export interface IdleProbe {
  stop(): void;
}

/**
 * Keeps a service's health current while the bridge has nothing to ask of it: once it
 * has been idle for `intervalMs`, one cheap read (`probe`, a call through the service's
 * own client, so its outcome lands in `health` and, for amoCRM, takes a rate-limit slot
 * like any other). Real traffic postpones the probe, so a busy bridge never probes.
 */
export function startIdleProbe(options: {
  health: ServiceHealth;
  probe: () => Promise<unknown>;
  intervalMs: number;
  logger: Logger;
}): IdleProbe {
  const { health, probe, intervalMs, logger } = options;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const schedule = (ms: number) => {
    if (stopped) return;
    timer = setTimeout(tick, ms);
    timer.unref();
  };
  const tick = () => {
    const wait = probeDelay(health.lastCallAt, Date.now(), intervalMs);
    if (wait > 0) return schedule(wait);
    // The client has recorded the outcome in `health` already; the error itself is old news.
    probe().then(
      () => schedule(intervalMs),
      (error: unknown) => {
        logger.debug(`${health.service}.probe_failed`, { error: String(error).slice(0, 300) });
        schedule(intervalMs);
      },
    );
  };

  schedule(0);
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
