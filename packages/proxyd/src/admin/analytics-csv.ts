// The analytics as CSV, one table per file (a spreadsheet opens each as it is): the series (one row
// per hour or day), the top domains, the top clients, the blocked destinations.
import type { AnalyticsReport } from '../messages/logger-messages.ts';

export const CSV_TABLES = ['series', 'domains', 'clients', 'blocked'] as const;
export type CsvTable = (typeof CSV_TABLES)[number];

/** A CSV field: quoted when it holds a comma, a quote or a line break (RFC 4180). */
function cell(value: string | number): string {
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function csv(header: string[], rows: (string | number)[][]): string {
  return [header, ...rows].map((row) => row.map(cell).join(',')).join('\r\n') + '\r\n';
}

export function analyticsCsv(report: AnalyticsReport, table: CsvTable): string {
  const s = report.series;
  switch (table) {
    case 'series':
      return csv(
        ['time', 'requests', 'bytes_up', 'bytes_down', 'allowed', 'blocked', 'refused', 'limited', 'failed'],
        s.time.map((t, i) => [new Date(t).toISOString(), s.requests[i]!, s.bytesUp[i]!, s.bytesDown[i]!, s.allowed[i]!, s.blocked[i]!, s.refused[i]!, s.limited[i]!, s.failed[i]!]),
      );
    case 'domains':
    case 'clients':
      return csv(
        [table === 'domains' ? 'domain' : 'client', 'requests', 'bytes_up', 'bytes_down'],
        (table === 'domains' ? report.topDomains : report.topClients).map((k) => [k.name, k.requests, k.bytesUp, k.bytesDown]),
      );
    case 'blocked':
      return csv(['domain', 'rule', 'requests'], report.blocked.map((b) => [b.domain, b.rule, b.requests]));
  }
}
