// How long analytics are kept: whole hours, written "90d" or "48h" (a unit is required: a bare number
// would read as seconds elsewhere, and as days here).
import { z } from 'zod';
import { scalarType, type OptionType, type Parsed } from './option-type.ts';

/** At most ten years. */
const MAX_HOURS = 10 * 366 * 24;

export function parseRetention(text: string): Parsed<number> {
  const match = /^\s*(\d+)\s*(d|h)\s*$/.exec(text);
  if (!match) return { ok: false, value: text, problem: 'is not a retention (use whole days or hours, e.g. 90d, 48h)' };
  const hours = Number(match[1]) * (match[2] === 'd' ? 24 : 1);
  if (hours < 1) return { ok: false, problem: `must be at least 1h, got "${text}"` };
  if (hours > MAX_HOURS) return { ok: false, value: text, problem: 'is too long (at most 3660d)' };
  return { ok: true, value: hours };
}

/** 2160 → "90d", 36 → "36h". */
export function formatRetention(hours: number): string {
  return hours % 24 === 0 ? `${hours / 24}d` : `${hours}h`;
}

export function retentionType(): OptionType<number> {
  return scalarType({ out: z.number().int(), parse: parseRetention, show: formatRetention });
}
