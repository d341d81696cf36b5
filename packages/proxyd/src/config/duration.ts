// Durations on the command line and in config: "500ms", "30s", "2m", "1h", or a bare number of seconds.
const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parse a duration into milliseconds; throws a one-line error naming the bad value. */
export function parseDuration(text: string | number, name = 'duration'): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(String(text));
  if (!match) throw new Error(`${name}: "${text}" is not a duration (use e.g. 500ms, 30s, 2m, 1h)`);
  const ms = Number(match[1]) * UNITS[match[2] ?? 's']!;
  if (!Number.isFinite(ms) || ms > 2 ** 31 - 1) throw new Error(`${name}: "${text}" is too long (at most 24 days)`);
  return Math.round(ms);
}

/** "1500" → "1.5s", for messages and --help. */
export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0 && ms > 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0 && ms > 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
