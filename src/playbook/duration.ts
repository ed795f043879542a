import { z } from 'zod';

/**
 * Playbook durations: a positive whole number and one unit, `30s`, `15m`, `4h`, `1d`. One unit
 * only, so a reviewer never has to add up `1h90m` in their head; `90m` says the same thing.
 */
const UNITS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const PATTERN = /^([1-9][0-9]{0,5})([smhd])$/;

const EXPECTED = 'expected a duration such as 30s, 15m, 4h or 1d (a positive whole number and one unit: s, m, h, d)';

/** A duration field; `required` is the message when it is missing. */
export function duration(required = 'required') {
  return z
    .string({ error: (iss) => (iss.input === undefined ? required : EXPECTED) })
    .regex(PATTERN, { error: EXPECTED })
    .describe('a duration: a positive whole number and one unit, s (seconds), m (minutes), h (hours) or d (days); e.g. 30s, 15m, 4h, 1d');
}
export const Duration = duration();

/** Milliseconds of a duration text; throws on anything `Duration` refuses. */
export function durationMs(text: string): number {
  const m = PATTERN.exec(text);
  if (!m) throw new Error(`not a duration: ${JSON.stringify(text)}`);
  return Number(m[1]) * UNITS[m[2] as keyof typeof UNITS];
}

/** The shortest exact text of a millisecond count (`3600000` → `1h`), for messages. */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [['d', UNITS.d], ['h', UNITS.h], ['m', UNITS.m]] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}
