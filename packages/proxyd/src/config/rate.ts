// Rates such as "50/s", "3000/m", "100000/h", or "off": a number of events per second (fractional: 3000/m
// is 50/s, 90/m is 1.5/s), or undefined for off.
import { z } from 'zod';
import { scalarType, type OptionType, type Parsed } from './option-type.ts';

const PER: Record<string, number> = { s: 1, m: 60, h: 3600 };

export function parseRate(text: string): Parsed<number | undefined> {
  if (text.trim().toLowerCase() === 'off') return { ok: true, value: undefined };
  const match = /^\s*(\d+(?:\.\d+)?)\s*\/\s*(s|m|h)\s*$/.exec(text);
  if (!match) return { ok: false, value: text, problem: 'is not a rate (use e.g. 50/s, 3000/m, or off)' };
  const perSecond = Number(match[1]) / PER[match[2]!]!;
  if (!(perSecond > 0) || perSecond > 1_000_000) return { ok: false, value: text, problem: 'must be more than 0 and at most 1000000/s' };
  return { ok: true, value: perSecond };
}

/** 50 → "50/s", 1.5 → "90/m", 1/36 → "100/h": the smallest unit that makes it a whole number. */
export function formatRate(perSecond: number | undefined): string {
  if (perSecond === undefined) return 'off';
  for (const [unit, seconds] of Object.entries(PER)) {
    const n = perSecond * seconds;
    if (Math.abs(n - Math.round(n)) < 1e-9) return `${Math.round(n)}/${unit}`;
  }
  return `${perSecond}/s`;
}

export function rateType(): OptionType<number | undefined> {
  return scalarType({ out: z.number().optional(), parse: parseRate, show: formatRate });
}
