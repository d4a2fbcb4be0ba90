/** Milliseconds in each unit a duration may be written in. */
export const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
export type DurationUnit = keyof typeof UNIT_MS;

/** A span as operators write it: a whole number with s, m, h or d (`30m`, `12h`, `7d`), in ms. */
export function parseDuration(text: string): number {
  const match = /^(\d+)([smhd])$/.exec(text.trim());
  if (!match) throw new RangeError(`"${text}" is not a duration: a number with s, m, h or d, e.g. 30m, 12h, 7d`);
  return Number(match[1]) * UNIT_MS[match[2] as DurationUnit];
}
