// Sizes in bytes, written as a number of bytes or with a binary unit: 512K, 256M (or 256MB, 256MiB), 2G.
// K, M, G are powers of 1024, as in Squid's cache_mem; check-config writes the largest exact unit back.
import { z } from 'zod';
import { scalarType, type OptionType, type Parsed } from './option-type.ts';

const UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

export function parseByteSize(text: string, min: number, max: number): Parsed<number> {
  const m = /^\s*(\d+)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(text);
  const n = m ? Number(m[1]) * UNITS[m[2]!.toLowerCase()]! : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    return { ok: false, problem: `must be a size from ${formatByteSize(min)} to ${formatByteSize(max)} (bytes, or with K, M, G), got "${text}"` };
  }
  return { ok: true, value: n };
}

export function formatByteSize(bytes: number): string {
  for (const unit of ['T', 'G', 'M', 'K'] as const) {
    const size = UNITS[unit.toLowerCase()]!;
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return String(bytes);
}

export function byteSizeType(min: number, max: number): OptionType<number> {
  return scalarType({ out: z.number().int(), parse: (text) => parseByteSize(text, min, max), show: formatByteSize });
}
