// Per-parent metrics (issue 19), read from the shared parent table at scrape time: labelled by the
// parent's name — never its URL, which may carry credentials.
import client from 'prom-client';
import type { ProxyView } from './proxy-view.ts';
import type { ParentReading } from '../upstream/parent-table.ts';

export function registerParentMetrics(registry: client.Registry, proxy: ProxyView): void {
  const names = proxy.options.parents.map((p) => p.name);
  const table = proxy.shared.parents;
  const each = (kind: 'Counter' | 'Gauge', name: string, help: string, read: (r: ParentReading) => number) =>
    new client[kind]({
      name,
      help,
      labelNames: ['parent'],
      registers: [registry],
      collect() {
        this.reset();
        names.forEach((parent, i) => (kind === 'Counter' ? (this as client.Counter).inc({ parent }, read(table.read(i))) : (this as client.Gauge).set({ parent }, read(table.read(i)))));
      },
    });
  each('Gauge', 'proxyd_parent_up', 'Parent proxy state: 1 up, 0 marked down (shared by every thread)', (r) => (r.up ? 1 : 0));
  each('Gauge', 'proxyd_parent_active_connections', 'Connections to the parent in use now, every thread counted', (r) => r.active);
  each('Counter', 'proxyd_parent_requests_total', 'Requests and tunnels sent through the parent (retries count again)', (r) => r.requests);
  each('Counter', 'proxyd_parent_failures_total', 'Failed connects and timeouts to the parent', (r) => r.failures);
  each('Counter', 'proxyd_parent_selected_total', 'Times the selection (--parent-select) picked the parent first', (r) => r.selected);
  each('Counter', 'proxyd_parent_marked_down_total', 'Times the parent was marked down', (r) => r.downs);
}
