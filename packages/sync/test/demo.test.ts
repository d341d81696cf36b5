// The semaphore demo (scripts/demo-semaphore.ts) prints steps in the order they happened: run it and
// replay its lines. Printed in message-arrival order, an acquire could show before the release that
// freed its permit — three holders of two permits. Here no line may show more holders than permits,
// every thread's rounds are all there, and each hand-off is followed by the acquire it made possible.
import t from 'tap';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

const DEMO = fileURLToPath(new URL('../../../scripts/demo-semaphore.ts', import.meta.url));

t.test('demo lines are in causal order and add up', async (t) => {
  const threads = 6;
  const permits = 2;
  const rounds = 4;
  // 100 ms holds: threads start some tens of ms apart on a loaded machine (each loads its module), and
  // with short holds the first could finish its rounds before the last arrives — no one would wait.
  const { stdout } = await promisify(execFile)(process.execPath, [DEMO, '--threads', String(threads), '--permits', String(permits), '--rounds', String(rounds), '--hold-ms', '100'], { timeout: 60_000 });
  const steps = stdout
    .split('\n')
    .map((line) => /^\s*([\d.]+)s\s+T(\d+)\s+(waits|acquires|releases)(?: \((hand-off|handed)\))?\s+(\d+)\s+(\d+)\s/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ thread: Number(m[2]), action: m[3]!, handOff: m[4], held: Number(m[5]), waiting: Number(m[6]) }));
  t.equal(steps.filter((s) => s.action === 'acquires').length, threads * rounds, 'every acquire printed');
  t.equal(steps.filter((s) => s.action === 'releases').length, threads * rounds, 'every release printed');
  t.ok(steps.every((s) => s.held <= permits && s.held >= 0), 'never more holders than permits, never fewer than none');

  // Replay: who holds a permit. A thread acquires only what is free or handed to it, releases only its own.
  const holders = new Set<number>();
  for (const s of steps) {
    if (s.action === 'acquires') {
      t.notOk(holders.has(s.thread), `T${s.thread} does not acquire twice`);
      holders.add(s.thread);
      t.ok(holders.size <= permits, `at most ${permits} holders after T${s.thread} acquires`);
    } else if (s.action === 'releases') {
      t.ok(holders.has(s.thread), `T${s.thread} releases a permit it holds`);
      holders.delete(s.thread);
    }
  }
  // Every permit handed over was handed by a release marked so. (The demo labels a release a hand-off
  // when its replay has a thread waiting; rarely that thread has numbered its "waits" but not yet joined
  // the queue, and the permit comes free instead — so a hand-off label may go unreceived, never the reverse.)
  const handOffs = steps.filter((s) => s.handOff === 'hand-off').length;
  const received = steps.filter((s) => s.handOff === 'handed').length;
  t.ok(received <= handOffs && received > 0, `${received} permits received by hand-off, ${handOffs} releases marked hand-off`);
  t.match(stdout, /permits free: 2\/2, admitted 24 times/);
  t.match(stdout, /packages\/sync\/README\.md/);
});
