// Counts and sizes: a whole number within a range, written as decimal digits (a config file's JSON number
// arrives as its decimal text). Not Number()'s other spellings: "0x50", "0b11", "8.08e3" are refused.
import { z } from 'zod';
import { scalarType, type OptionType, type Parsed } from './option-type.ts';

export function parseWholeNumber(text: string, min: number, max: number): Parsed<number> {
  const n = /^\s*\d+\s*$/.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) return { ok: false, problem: `must be a whole number from ${min} to ${max}, got "${text}"` };
  return { ok: true, value: n };
}

export function wholeNumberType(min: number, max: number): OptionType<number> {
  // Shown as a JSON number: check-config prints `"port": 8080`, as a config file would say it.
  return scalarType({ out: z.number().int(), parse: (text) => parseWholeNumber(text, min, max), show: (n) => n });
}
