/**
 * HAProxy's agent check, served by the primary (--agent-check HOST:PORT). HAProxy connects to it every
 * `agent-inter` (`server … agent-check agent-port PORT`), reads one line, and applies it to this server:
 *
 *   up 37%   serving; the weight is the share of the semaphore's permits that are free now, so HAProxy
 *            sends new clients to each proxyd in proportion to its real, live capacity. Never below 1%:
 *            a full proxyd still gets its turn (its own queue holds the client) rather than none.
 *   drain    SIGTERM has started the grace period: no new clients, the open ones finish.
 *   down     not ready: the serving threads are still starting.
 *
 * Reading the semaphore is two Atomics loads; nothing here touches a client's connection.
 */
import net from 'node:net';
import type { HostPort } from '../config/host-port.ts';

export type AgentPhase = 'starting' | 'serving' | 'draining';

/** The agent's answer, without the line end. */
export function agentReply(phase: AgentPhase, free: number, permits: number): string {
  if (phase === 'starting') return 'down';
  if (phase === 'draining') return 'drain';
  const percent = Math.max(1, Math.round((100 * Math.max(0, free)) / permits));
  return `up ${percent}%`;
}

export interface AgentCheck {
  readonly address: net.AddressInfo;
  close(): Promise<void>;
}

/** Listen on `where`; each connection gets `reply()` and a line end, then is closed. */
export function startAgentCheck(where: HostPort, reply: () => string): Promise<AgentCheck> {
  const server = net.createServer((socket) => {
    socket.on('error', () => {}); // a checker that resets is no concern of ours
    socket.end(`${reply()}\n`);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(where.port, where.host, () => {
      server.off('error', reject);
      resolve({
        address: server.address() as net.AddressInfo,
        close: () => new Promise<void>((done) => server.close(() => done())),
      });
    });
  });
}
