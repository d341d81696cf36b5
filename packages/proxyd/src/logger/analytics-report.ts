// The answer to /api/analytics for one range, read from the store: the series per hour or per UTC day,
// the totals by decision, status, method and cache result, the top domains and clients with their
// bytes, and the blocked destinations with their rules.
import { ANALYTICS_RANGES, type AnalyticsRange, type AnalyticsReport, type KeyTally } from '../messages/logger-messages.ts';
import { HOUR_MS, type AnalyticsStore } from './analytics-store.ts';
import { DECISIONS, type Decision } from './request-facts.ts';
import { OTHER, type Tally } from './top-counter.ts';

const DAY_MS = 24 * HOUR_MS;
/** Rows in a top table of the report (before "(other)"). */
export const REPORT_TOP = 20;

export function analyticsReport(store: AnalyticsStore, range: AnalyticsRange, { now = Date.now(), keysInMemory = 0 } = {}): AnalyticsReport {
  const { hours, step } = ANALYTICS_RANGES[range];
  const stepMs = step === 'hour' ? HOUR_MS : DAY_MS;
  const to = Math.floor(now / stepMs) * stepMs + stepMs;
  const points = (hours * HOUR_MS) / stepMs;
  const from = to - points * stepMs;
  const series = seriesOf(store, from, stepMs, points);
  const total = store.sums(from, 'total')[0];
  return {
    range,
    step,
    from,
    to,
    totals: { name: 'total', requests: total?.requests ?? 0, bytesUp: total?.bytesUp ?? 0, bytesDown: total?.bytesDown ?? 0 },
    decisions: requestsByKey(store, from, 'decision'),
    status: requestsByKey(store, from, 'status'),
    methods: requestsByKey(store, from, 'method'),
    cache: requestsByKey(store, from, 'cache'),
    series,
    topDomains: topOf(store, from, 'host'),
    topClients: topOf(store, from, 'client'),
    blocked: store
      .sums(from, 'blocked')
      .filter((r) => r.key !== OTHER)
      .slice(0, REPORT_TOP)
      .map((r) => {
        const [domain = '', rule = ''] = r.key.split('\t');
        return { domain, rule, requests: r.requests };
      }),
    store: { ...store.size(), keysInMemory },
  };
}

function seriesOf(store: AnalyticsStore, from: number, stepMs: number, points: number): AnalyticsReport['series'] {
  const zeros = () => new Array<number>(points).fill(0);
  const series = { time: Array.from({ length: points }, (_, i) => from + i * stepMs), requests: zeros(), bytesUp: zeros(), bytesDown: zeros(), allowed: zeros(), blocked: zeros(), refused: zeros(), limited: zeros(), failed: zeros() };
  for (const row of store.rows(from, ['total', 'decision'])) {
    const i = Math.floor((row.hour - from) / stepMs);
    if (i < 0 || i >= points) continue;
    if (row.dimension === 'total') {
      series.requests[i]! += row.requests;
      series.bytesUp[i]! += row.bytesUp;
      series.bytesDown[i]! += row.bytesDown;
    } else if ((DECISIONS as readonly string[]).includes(row.key)) {
      series[row.key as Decision][i]! += row.requests;
    }
  }
  return series;
}

function requestsByKey(store: AnalyticsStore, from: number, dimension: string): Record<string, number> {
  return Object.fromEntries(store.sums(from, dimension).map((r) => [r.key, r.requests]));
}

/** The top keys of a dimension over the range, then "(other)": what the hours' "(other)" rows hold and the keys below the top. */
function topOf(store: AnalyticsStore, from: number, dimension: string): KeyTally[] {
  const rows = store.sums(from, dimension);
  const top = rows.filter((r) => r.key !== OTHER).slice(0, REPORT_TOP);
  const other: Tally = { requests: 0, bytesUp: 0, bytesDown: 0 };
  for (const r of rows) {
    if (top.includes(r)) continue;
    other.requests += r.requests;
    other.bytesUp += r.bytesUp;
    other.bytesDown += r.bytesDown;
  }
  const out: KeyTally[] = top.map((r) => ({ name: r.key, requests: r.requests, bytesUp: r.bytesUp, bytesDown: r.bytesDown }));
  if (other.requests > 0) out.push({ name: OTHER, ...other });
  return out;
}
