// The single consumer: drain until every record sent is accounted for, checking every record. Reports per-producer counts and any defect found.
import { parentPort, workerData } from 'node:worker_threads';
import { LogRing } from '@proxyd/sync/log-ring';
import { parseRecord, parseText } from './ring-records.ts';

const { ringBuffer, producers, sent, retried, sleep = 'timed', read = 'bytes' } = workerData as {
  /** Read each record as a copy (drain) or as text decoded in place in the ring (drainText). */
  read?: 'bytes' | 'text';
  /** How the consumer waits when the ring is empty: 100 ms at most, or with no timeout at all (a lost
   * wake-up would then hang it until the deadline below, and the test reports the missing records). */
  sleep?: 'timed' | 'untimed';
  ringBuffer: SharedArrayBuffer;
  producers: number;
  sent: number;
  retried: boolean; // producers retry refused records, so every record must arrive
};
const ring = new LogRing(ringBuffer);
const lastSeq = new Array<number>(producers).fill(-1);
const received = new Array<number>(producers).fill(0);
let defects: string[] = [];
let total = 0;
const deadline = Date.now() + (sleep === 'untimed' ? 30_000 : 60_000);

function check(bytes: Uint8Array): void {
  checkParsed(parseRecord(bytes));
}

function checkParsed({ producer, seq, intact }: { producer: number; seq: number; intact: boolean }): void {
  total++;
  if (!(producer >= 0 && producer < producers)) return void defects.push(`bad producer in record ${total}`);
  if (!intact) defects.push(`torn record ${producer}:${seq}`);
  if (seq <= lastSeq[producer]!) defects.push(`out of order or duplicate ${producer}:${seq} after ${lastSeq[producer]}`);
  lastSeq[producer] = seq;
  received[producer]!++;
  if (defects.length > 20) defects = defects.slice(0, 20);
}

// Untimed waits: one timer for the whole run, so that a lost wake-up ends the run instead of hanging it.
let stuckTimer: NodeJS.Timeout | undefined;
const stuck = new Promise<void>((resolve) => (stuckTimer = setTimeout(resolve, 30_000)));
// Everything sent is either received or (when producers do not retry) counted as dropped.
const done = () => (retried ? total >= sent : total + ring.dropped >= sent);
const drain = read === 'text' ? () => ring.drainText((text) => checkParsed(parseText(text))) : () => ring.drain(check);
while (!done() && Date.now() < deadline) {
  drain();
  if (done()) break;
  if (sleep === 'timed') await ring.waitForRecords(100);
  else await Promise.race([ring.waitForRecords(), stuck]);
}
clearTimeout(stuckTimer);
drain();
parentPort!.postMessage({ total, received, lastSeq, defects, dropped: ring.dropped });
