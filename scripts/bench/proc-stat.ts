// Reading Linux's /proc/<pid>/stat (or /proc/<pid>/task/<tid>/stat) for the benchmark scripts.
import { readFileSync } from 'node:fs';

/**
 * The fields of a stat file from field 3 (state) on, or undefined when the process or thread is gone.
 * The command name (field 2) may hold spaces and parentheses, so the split starts after its last ')'.
 */
export function statFields(path: string): string[] | undefined {
  try {
    const stat = readFileSync(path, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** utime + stime (fields 14 and 15) in clock ticks (USER_HZ, 100 a second); 0 when gone. */
export function cpuTicks(path: string): number {
  const fields = statFields(path);
  return fields ? Number(fields[11]) + Number(fields[12]) : 0;
}
