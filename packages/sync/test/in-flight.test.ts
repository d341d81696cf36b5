import t from 'tap';
import { InFlightTable } from '@proxyd/sync/in-flight';
import { runWorkers, StartGate } from './workers/run.ts';

const WORKER = new URL('./workers/in-flight.worker.ts', import.meta.url);
const THREADS = 4;
const CLIENTS = 25; // per thread: 100 clients of one cold key

interface RaceOptions {
  guarded: boolean;
  leaderDies?: boolean;
  patienceMs?: number;
  spreadMs?: number;
  lookMs?: number;
  fetchMs?: number;
  lookAgain?: boolean;
  /** Rounds of a cold key each in one start of the threads, every `roundMs` (fetches: the first round's). */
  rounds?: number;
  roundMs?: number;
}

async function race(o: RaceOptions): Promise<{ fetches: number; answered: number; table: InFlightTable; perRound: number[] }> {
  const rounds = o.rounds ?? 1;
  const table = InFlightTable.create(64);
  const shared = new Int32Array(new SharedArrayBuffer(12 * rounds));
  const gate = new StartGate();
  const done = runWorkers<{ answered: number }>(WORKER, THREADS, () => ({
    tableBuffer: table.buffer,
    sharedBuffer: shared.buffer,
    gateBuffer: gate.buffer,
    clients: CLIENTS,
    guarded: o.guarded,
    fetchMs: o.fetchMs ?? 50,
    leaderDies: o.leaderDies ?? false,
    patienceMs: o.patienceMs ?? 5_000,
    spreadMs: o.spreadMs ?? 0,
    lookMs: o.lookMs ?? 0,
    lookAgain: o.lookAgain ?? true,
    rounds,
    roundMs: o.roundMs ?? 0,
  }));
  await gate.openWhenReady(THREADS);
  const results = await done;
  const perRound = Array.from({ length: rounds }, (_, r) => shared[r * 3 + 1]!);
  return { fetches: shared[1]!, answered: results.reduce((n, r) => n + r.answered, 0), table, perRound };
}

t.test('without the table, clients that miss together all fetch (the test can see the race)', async (t) => {
  const { fetches, answered } = await race({ guarded: false });
  t.equal(answered, THREADS * CLIENTS, 'every client got the value');
  t.ok(fetches > 1, `${fetches} origin fetches for one key`);
});

t.test(`with the table, ${THREADS} threads × ${CLIENTS} clients of one cold key make exactly 1 fetch (8 rounds)`, async (t) => {
  for (let round = 0; round < 8; round++) {
    const { fetches, answered, table } = await race({ guarded: true });
    t.equal(fetches, 1, `round ${round}: one origin fetch`);
    t.equal(answered, THREADS * CLIENTS, `round ${round}: every client got the value`);
    const s = table.snapshot();
    t.same({ inFlight: s.inFlight, waiting: s.waiting }, { inFlight: 0, waiting: 0 }, `round ${round}: nothing left in flight or waiting`);
    t.ok(s.followers >= 1, `round ${round}: ${s.followers} clients followed the leader`);
  }
});

t.test('a leader that dies mid-fetch is replaced by exactly one follower after its silence', async (t) => {
  const { fetches, answered, table } = await race({ guarded: true, leaderDies: true, patienceMs: 200 });
  t.equal(fetches, 2, 'the dead leader’s fetch and one taker’s');
  t.equal(answered, THREADS * CLIENTS - 1, 'everyone but the dead leader got the value');
  t.equal(table.snapshot().takeovers, 1, 'one takeover');
  t.equal(table.snapshot().waiting, 0, 'nobody left waiting');
});

t.test('a leader that gives up hands the fetch to one follower at once; slots are freed and reused', async (t) => {
  const table = InFlightTable.create(2);
  const a = table.join(1, 2);
  t.equal(a.role, 'leader');
  const b = table.join(1, 2);
  const c = table.join(1, 2);
  t.equal(b.role, 'follower');
  t.equal(c.role, 'follower');
  t.equal(table.join(3, 4).role, 'leader', 'another key takes the other slot');
  t.equal(table.join(5, 6).role, 'full', 'a third key finds the table full');
  t.same(table.snapshot().waiting, 2);
  if (a.role !== 'leader' || b.role !== 'follower' || c.role !== 'follower') return;
  const fb = table.follow(b, { patienceMs: 5_000 });
  const fc = table.follow(c, { patienceMs: 5_000 });
  t.ok(table.finish(a, false), 'the leader abandons');
  const first = await Promise.race([fb, fc]);
  t.equal(first.role, 'leader', 'one follower takes over at once');
  t.notOk(table.finish(a, true), 'the old leader can no longer finish');
  t.equal(table.snapshot().waiting, 1, 'the other follower waits for the new leader');
  if (first.role !== 'leader') return;
  t.equal(table.join(1, 2).role, 'follower', 'a newcomer follows the new leader');
  t.ok(table.finish(first, true), 'the new leader finishes');
  const roles = (await Promise.all([fb, fc])).map((f) => f.role).sort();
  t.same(roles, ['done', 'leader'], 'the other follower reads the result');
});

t.test('look, join, look again: a leader that finished between a look and a join is not fetched for twice', async (t) => {
  // Step by step, in one thread: the interleaving the top of in-flight.ts describes.
  const table = InFlightTable.create(4);
  let stored = 0; // the cache
  let fetches = 0;
  const a = table.join(7, 7); // A missed and leads
  t.equal(a.role, 'leader');
  const bLooked = stored; // B looks: a miss (A has not finished)
  fetches++; // A's fetch
  stored = 42; // A publishes …
  if (a.role === 'leader') t.ok(table.finish(a, true)); // … finishes, and leaves: the slot is free again
  const b = table.join(7, 7); // B joins after its miss
  t.equal(bLooked, 0, 'B looked before A published');
  t.equal(b.role, 'leader', 'B finds no slot: it is made leader although the result is there');
  // Without a second look B would fetch now (the race). With it:
  if (b.role === 'leader') {
    if (stored !== 0) t.ok(table.finish(b, true), 'B looks again, finds the result, finishes at once');
    else fetches++;
  }
  t.equal(fetches, 1, 'one origin fetch');
  t.same(table.snapshot(), { inFlight: 0, waiting: 0, followers: 0, takeovers: 0 }, 'the slot is free');
});

// Across threads: 12 rounds of a cold key each, 150 ms apart; in each, clients arrive over 60 ms, a
// look takes up to 3 ms before the join and a fetch 5 ms, so joins land after leaders have left.
const SPREAD = { guarded: true, spreadMs: 60, lookMs: 3, fetchMs: 5, rounds: 12, roundMs: 150 } as const;

t.test('across threads, without the second look, late joiners fetch again (the test can see the race)', async (t) => {
  const { perRound, answered } = await race({ ...SPREAD, lookAgain: false });
  t.equal(answered, SPREAD.rounds * THREADS * CLIENTS, 'every client got the value');
  const total = perRound.reduce((a, b) => a + b, 0);
  t.ok(total > SPREAD.rounds, `${total} origin fetches for ${SPREAD.rounds} keys (per round: ${perRound.join(' ')})`);
});

t.test('across threads, with the second look, exactly 1 fetch per key however the joins land', async (t) => {
  const { perRound, answered, table } = await race({ ...SPREAD, lookAgain: true });
  t.equal(answered, SPREAD.rounds * THREADS * CLIENTS, 'every client got the value');
  t.same(perRound, perRound.map(() => 1), `one origin fetch per key (per round: ${perRound.join(' ')})`);
  t.same({ inFlight: table.snapshot().inFlight, waiting: table.snapshot().waiting }, { inFlight: 0, waiting: 0 }, 'nothing left in flight or waiting');
});
