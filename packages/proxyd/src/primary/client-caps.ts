// Open connections per client (--max-conns-per-client, as Squid's maxconn), counted by the primary: it is
// the only thread that opens a client's connection (accept) and the only one that learns for certain
// that it is over (the task settled, or the socket closed before it was handed over), so the count is
// an ordinary Map in this thread's memory — no other thread reads or writes it, so no lock and no
// Atomics. A key whose last connection closes leaves the map: it holds only clients with something open.
// A connection is counted once and uncounted once, whichever of its endings comes first (its `counted`
// flag): refused while queued, closed before hand-over, or its task settled.
export class ClientCaps {
  readonly #open = new Map<string, number>();

  count(key: string): number {
    return this.#open.get(key) ?? 0;
  }

  open(conn: { key: string; counted: boolean }): void {
    if (conn.counted) return;
    conn.counted = true;
    this.#open.set(conn.key, this.count(conn.key) + 1);
  }

  close(conn: { key: string; counted: boolean }): void {
    if (!conn.counted) return;
    conn.counted = false;
    const left = this.count(conn.key) - 1;
    if (left > 0) this.#open.set(conn.key, left);
    else this.#open.delete(conn.key);
  }
}
