import t from 'tap';
import { LogRing, RecordTooLargeError } from '@proxyd/sync/log-ring';
import { runWorkers, StartGate } from './workers/run.ts';

const PRODUCER = new URL('./workers/ring-producer.worker.ts', import.meta.url);
const CONSUMER = new URL('./workers/ring-consumer.worker.ts', import.meta.url);
const PRODUCERS = 4;

interface ConsumerReport {
  total: number;
  received: number[];
  lastSeq: number[];
  defects: string[];
  dropped: number;
}

async function run(ring: LogRing, perProducer: number, retry: boolean, pacing: { napEvery?: number; sleep?: 'timed' | 'untimed'; read?: 'bytes' | 'text' } = {}) {
  const gate = new StartGate();
  const sent = PRODUCERS * perProducer;
  const consumer = runWorkers<ConsumerReport>(CONSUMER, 1, () => ({ ringBuffer: ring.buffer, producers: PRODUCERS, sent, retried: retry, sleep: pacing.sleep, read: pacing.read }));
  const producers = runWorkers<{ refused: number; accepted: number }>(PRODUCER, PRODUCERS, (producer) => ({
    ringBuffer: ring.buffer,
    gateBuffer: gate.buffer,
    producer,
    count: perProducer,
    retry,
    napEvery: pacing.napEvery,
  }));
  await gate.openWhenReady(PRODUCERS);
  const [produced, [report]] = await Promise.all([producers, consumer]);
  return { produced, report: report!, sent };
}

t.test('4 producers × 50,000 records: each arrives exactly once, intact, in its producer\'s order', async (t) => {
  const ring = LogRing.create(64 * 1024); // small enough to wrap thousands of times
  const { produced, report } = await run(ring, 50_000, true);
  t.same(report.defects, [], 'no torn, duplicated or reordered record');
  t.same(report.received, Array(PRODUCERS).fill(50_000), 'every record of every producer arrived');
  t.same(report.lastSeq, Array(PRODUCERS).fill(49_999));
  const refused = produced.reduce((n, p) => n + p.refused, 0);
  t.equal(ring.dropped, refused, `the dropped counter counts each refusal of a full ring (${refused}, retried)`);
  t.equal(ring.written, 200_000);
  t.equal(ring.usedBytes, 0, 'the ring is empty at the end');
});

t.test('drainText decodes in place: 4 producers × 50,000 records, each read exactly once and intact', async (t) => {
  // The consumer decodes each record straight out of the shared ring and only then hands its space back
  // (readSeq). Were the space handed back first, producers waiting on a full ring would write over
  // records not yet decoded, and torn records would show here.
  const ring = LogRing.create(64 * 1024);
  const { report } = await run(ring, 50_000, true, { read: 'text' });
  t.same(report.defects, [], 'no torn, duplicated or reordered record');
  t.same(report.received, Array(PRODUCERS).fill(50_000), 'every record of every producer arrived');
  t.equal(ring.usedBytes, 0, 'the ring is empty at the end');
});

t.test('no lost wake-up: a consumer sleeping with no timeout sees every record while producers pause and resume', async (t) => {
  // Producers notify only when the consumer has said it is asleep (the `asleep` word). If that handshake
  // could miss, the consumer would sleep through a record with nothing to wake it: this run would stall
  // for 30 s and the counts below would come up short.
  const ring = LogRing.create(64 * 1024);
  const started = performance.now();
  const { report } = await run(ring, 20_000, true, { napEvery: 3, sleep: 'untimed' });
  const ms = performance.now() - started;
  t.same(report.defects, []);
  t.same(report.received, Array(PRODUCERS).fill(20_000), 'every record arrived');
  t.ok(ms < 25_000, `finished without a stall (${Math.round(ms)} ms)`);
});

t.test('a ring too small for the load: received + dropped == sent, exactly', async (t) => {
  const ring = LogRing.create(1024);
  const { produced, report, sent } = await run(ring, 20_000, false);
  t.same(report.defects, [], 'what arrived is intact and in order');
  t.ok(report.dropped > 0, `the ring overflowed (${report.dropped} dropped)`);
  t.equal(report.total + report.dropped, sent, `${report.total} received + ${report.dropped} dropped = ${sent} sent`);
  t.equal(produced.reduce((n, p) => n + p.accepted, 0), report.total, 'every accepted record was received');
});

t.test('a record larger than the ring is refused with a clear error', async (t) => {
  const ring = LogRing.create(256);
  t.throws(() => ring.write(new Uint8Array(ring.capacity)), RecordTooLargeError);
  t.throws(() => ring.write(new Uint8Array(1000)), /a record of 1000 bytes can never fit in a ring of 256 bytes/);
  t.equal(ring.dropped, 0, 'an impossible record is an error, not a drop');
  t.ok(ring.write(new Uint8Array(ring.maxRecordBytes)), 'the largest allowed record fits in an empty ring');
  const got: number[] = [];
  ring.drain((r) => got.push(r.byteLength));
  t.same(got, [ring.maxRecordBytes]);
  t.throws(() => LogRing.create(0), /capacity/);
});

t.test('records round-trip through wrap-around in one thread, and waitForRecords wakes on a write', async (t) => {
  const ring = LogRing.create(64);
  const out: string[] = [];
  const dec = new TextDecoder();
  for (let i = 0; i < 100; i++) {
    t.ok(ring.writeString(`r${i}-${'x'.repeat(i % 20)}`) || false);
    ring.drain((r) => out.push(dec.decode(r)));
  }
  t.equal(out.length, 100);
  t.equal(out[99], `r99-${'x'.repeat(19)}`);
  const woke = ring.waitForRecords(5_000);
  setTimeout(() => ring.writeString('late'), 20);
  const started = performance.now();
  await woke;
  t.ok(performance.now() - started < 4_000, 'woken by the write, not the timeout');
  t.equal(ring.drain(() => {}), 1);
});

t.test('drainText: multi-byte UTF-8 records wrapping the end at every offset come back as written', async (t) => {
  const ring = LogRing.create(256); // three records of up to 56 bytes fit
  const written: string[] = [];
  const read: string[] = [];
  for (let i = 0; i < 300; i++) {
    const text = `${i}:${'é€😀x'.repeat(i % 5)}${'y'.repeat(i % 7)}`; // 1-, 2-, 3- and 4-byte characters
    t.ok(ring.writeString(text), `record ${i} fits`);
    written.push(text);
    if (i % 3 === 2) ring.drainText((r) => read.push(r)); // two or three records a drain: every offset
  }
  ring.drainText((r) => read.push(r));
  t.same(read, written);
  t.equal(ring.usedBytes, 0);
});
