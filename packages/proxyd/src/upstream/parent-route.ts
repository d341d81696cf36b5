/**
 * The route of one request: direct, or through which parents (best first). Checked after the policy
 * gate (blocklist, client ACL, ports, literal addresses): a request that reaches this point is allowed.
 *
 *   --direct-for DOMAIN       the domain and its subdomains never use a parent
 *   --parent-for DOMAIN=NAME  they use only the parent NAME (the most specific domain wins)
 *   otherwise                 every parent, in the order --parent-select gives
 *
 * A parent that is down is skipped (ParentTable.admit: except for its one trial per retry period). With
 * none left the request goes direct, unless --never-direct: then it fails with 502 PARENT_DOWN.
 */
import type { ProxyOptions } from '../config/options.ts';
import { orderParents, smoothSchedule } from './parent-select.ts';
import type { ParentTable } from './parent-table.ts';

export type Route = { kind: 'direct' } | { kind: 'parents'; order: number[] } | { kind: 'none' };

const DIRECT: Route = { kind: 'direct' };

function covers(domain: string, host: string): boolean {
  return host === domain || (host.endsWith(domain) && host.charCodeAt(host.length - domain.length - 1) === 46 /* . */);
}

/** The routing rules of the options in force, ready to answer per request. */
export class ParentRouter {
  private readonly options: ProxyOptions;
  private readonly table: ParentTable;
  private readonly schedule: number[];
  private readonly parentFor: { domain: string; index: number }[];

  constructor(options: ProxyOptions, table: ParentTable) {
    this.options = options;
    this.table = table;
    this.schedule = smoothSchedule(options.parents.map((p) => p.weight));
    this.parentFor = options.parentFor
      .map((rule) => {
        const [domain = '', name] = rule.split('=');
        return { domain, index: options.parents.findIndex((p) => p.name === name) };
      })
      .filter((r) => r.index >= 0)
      .sort((a, b) => b.domain.length - a.domain.length);
  }

  get enabled(): boolean {
    return this.options.parents.length > 0;
  }

  /** Would this host go through a parent (the rules only: no pick, no health)? */
  usesParents(host: string): boolean {
    const name = host.toLowerCase();
    return this.options.parents.length > 0 && !this.options.directFor.some((d) => covers(d, name));
  }

  /**
   * `canRetry`: the request may move to the next parent if this one fails (CONNECT before the tunnel,
   * an idempotent request without a body). Only such a request takes a down parent's trial: it goes
   * there first, and on failure falls back to the parents that are up, so the trial costs nobody an error.
   */
  route(host: string, canRetry: boolean): Route {
    const { parents, directFor } = this.options;
    if (parents.length === 0) return DIRECT;
    const name = host.toLowerCase();
    if (directFor.some((d) => covers(d, name))) return DIRECT;
    const pinned = this.parentFor.find((r) => covers(r.domain, name));
    const candidates = pinned ? [pinned.index] : parents.map((_, i) => i);
    const ordered = orderParents({ way: this.options.parentSelect, parents, candidates, table: this.table, schedule: this.schedule, host: name });
    const order = ordered.filter((i) => this.table.isUp(i));
    const now = Date.now();
    const trial = canRetry ? ordered.find((i) => !this.table.isUp(i) && this.table.admit(i, now, this.options.parentRetryMs)) : undefined;
    if (trial !== undefined) order.unshift(trial);
    if (order.length > 0) {
      this.table.selected(order[0]!);
      return { kind: 'parents', order };
    }
    return this.options.neverDirect ? { kind: 'none' } : DIRECT;
  }
}
