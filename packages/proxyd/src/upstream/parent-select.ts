/**
 * Which parent, in which order: for one destination, the parents to try, best first. The first one is
 * "selected"; the rest are the failover order when a connect to it fails. Three ways (--parent-select):
 *
 * - round-robin (weighted): a fixed schedule of length Σweights in which parent p appears weight(p)
 *   times, spread out by nginx's "smooth weighted round-robin" (weights 3:1 give a b a a, not a a a b).
 *   Each pick takes the next number of one shared ticket (ParentTable.ticket, an Atomics.add), so every
 *   thread walks the same schedule together: over any Σweights consecutive picks, the split is exact.
 * - least-conn: fewest active connections per unit of weight, the gauge every thread keeps in the
 *   shared table; ties go round-robin (by the ticket), so an idle set of parents still shares the load.
 * - host-hash: rendezvous (highest-random-weight) hashing, as CARP does: each parent scores each host
 *   with a hash of (parent name, host), weighted as -weight / ln(score); the host goes to the highest.
 *   Removing a parent moves only the hosts it had (everyone else's best is unchanged), and the
 *   failover order of a host is its next-best parents, the same in every thread and every restart.
 */
import { createHash } from 'node:crypto';
import type { ParentSpec } from './parent-spec.ts';
import type { ParentTable } from './parent-table.ts';

export type SelectWay = 'round-robin' | 'least-conn' | 'host-hash';

/** nginx's smooth weighted round-robin, run once for a whole cycle: the schedule of parent indices. */
export function smoothSchedule(weights: readonly number[]): number[] {
  const total = weights.reduce((a, b) => a + b, 0);
  const current = weights.map(() => 0);
  const out: number[] = [];
  for (let n = 0; n < total; n++) {
    let best = 0;
    for (let i = 0; i < weights.length; i++) {
      current[i]! += weights[i]!;
      if (current[i]! > current[best]!) best = i;
    }
    current[best]! -= total;
    out.push(best);
  }
  return out;
}

/** A host's score for a parent in (0, 1), from SHA-1 (stable across threads, restarts and platforms). */
function hashScore(name: string, host: string): number {
  const h = createHash('sha1').update(name).update('\0').update(host).digest();
  return (h.readUInt32BE(0) + 1) / 4294967297; // never 0 or 1: ln() stays finite and negative
}

/** Candidates (indices into `parents`) for `host`, best first. */
export function orderParents(o: { way: SelectWay; parents: readonly ParentSpec[]; candidates: readonly number[]; table: ParentTable; schedule: readonly number[]; host: string }): number[] {
  const { parents, candidates, table } = o;
  if (candidates.length <= 1) return [...candidates];
  if (o.way === 'host-hash') {
    const score = (i: number): number => -parents[i]!.weight / Math.log(hashScore(parents[i]!.name, o.host.toLowerCase()));
    return candidates.map((i) => ({ i, s: score(i) })).sort((a, b) => b.s - a.s).map((x) => x.i);
  }
  const ticket = table.ticket();
  // The schedule, read from this pick's position: each candidate's first appearance gives the order.
  const rotated: number[] = [];
  for (let k = 0; k < o.schedule.length && rotated.length < candidates.length; k++) {
    const i = o.schedule[(ticket + k) % o.schedule.length]!;
    if (candidates.includes(i) && !rotated.includes(i)) rotated.push(i);
  }
  if (o.way === 'round-robin') return rotated;
  const load = (i: number): number => table.active(i) / parents[i]!.weight;
  return rotated.sort((a, b) => load(a) - load(b)); // stable: equal loads keep the round-robin order
}
