// How long connections waited for a permit: bucket counts, kept by the primary (the only thread that
// waits at the semaphore) and read by /metrics. Plain numbers: one thread writes, the same thread reads.
export const WAIT_BUCKETS_SECONDS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60];

export class WaitHistogram {
  /** Upper bounds of the buckets, in seconds (cumulative counts, as Prometheus expects). */
  readonly bucketsSeconds: readonly number[] = WAIT_BUCKETS_SECONDS;
  readonly counts = new Array<number>(WAIT_BUCKETS_SECONDS.length).fill(0);
  count = 0;
  sumSeconds = 0;

  observe(seconds: number): void {
    this.count++;
    this.sumSeconds += seconds;
    for (let i = 0; i < WAIT_BUCKETS_SECONDS.length; i++) if (seconds <= WAIT_BUCKETS_SECONDS[i]!) this.counts[i]!++;
  }
}
