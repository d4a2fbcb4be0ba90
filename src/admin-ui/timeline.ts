import type { TimelineEntry } from '../admin/order-timeline.js';
import type { AdminMessages } from './messages/index.js';

/** A timeline entry as the order page shows it: its event and source in words, its detail as lines. */
export interface TimelineLine {
  at: string;
  event: string;
  /** The entry's own name (order.paused), kept for a person who knows the API and for tests. */
  code: string;
  source: string;
  detail: string[];
}

const value = (v: unknown): string => (v === null || v === undefined ? '—' : typeof v === 'string' ? v : typeof v === 'object' ? JSON.stringify(v) : String(v));

/** `changes: { field: { before, after } }` as "field: before → after", anything else as "key: value". Pure. */
export function timelineLine(entry: TimelineEntry, t: AdminMessages): TimelineLine {
  const detail: string[] = [];
  for (const [key, v] of Object.entries(entry.detail)) {
    if (key === 'changes' && typeof v === 'object' && v !== null && !Array.isArray(v)) {
      for (const [field, change] of Object.entries(v as Record<string, unknown>)) {
        const c = typeof change === 'object' && change !== null ? (change as { before?: unknown; after?: unknown }) : {};
        detail.push(`${field}: ${value(c.before)} → ${value(c.after)}`);
      }
    } else detail.push(`${key}: ${value(v)}`);
  }
  return {
    at: entry.at,
    event: t.timeline.events[entry.event] ?? entry.event,
    code: entry.event,
    source: t.timeline.sources[entry.source],
    detail,
  };
}
