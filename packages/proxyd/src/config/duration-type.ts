// The duration option type (duration.ts parses and formats; this file brings zod, which only the
// primary's option table needs).
import { z } from 'zod';
import { scalarType, type OptionType } from './option-type.ts';
import { formatDuration, parseDuration } from './duration.ts';

/** A duration option, in milliseconds; `allowZero` where 0 means "off" or "at once". */
export function durationType({ allowZero = false } = {}): OptionType<number> {
  return scalarType({ out: z.number().int(), parse: (text) => parseDuration(text, { allowZero }), show: formatDuration });
}
