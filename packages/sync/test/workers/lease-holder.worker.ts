// The holder of one lease, as a proxyd worker is: it either gives its permit back and exits, or dies
// (throws) before it can.
import { parentPort, workerData } from 'node:worker_threads';
import { Semaphore } from '@proxyd/sync/semaphore';
import { PermitLeases } from '@proxyd/sync/permit-leases';

const { semBuffer, leasesBuffer, lease, dies } = workerData as {
  semBuffer: SharedArrayBuffer;
  leasesBuffer: SharedArrayBuffer;
  lease: number;
  dies: boolean;
};
if (dies) throw new Error('the worker died holding its permit');
parentPort!.postMessage({ released: new PermitLeases(leasesBuffer).release(lease, new Semaphore(semBuffer)) });
