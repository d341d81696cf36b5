// Plain JavaScript on purpose: this must run, and explain itself, on any Node.js (even 20), before
// anything TypeScript is loaded. Node.js runs proxyd's .ts sources directly from 24.20 on.

/** Node.js lines on which an accepted net.Socket can be transferred to a worker thread. */
export const REQUIRED = 'Node.js >= 24.20 (24.x LTS) or >= 26.5';

/** True when `version` ("24.21.0") can transfer sockets to worker threads. */
export function socketTransferSupported(version = process.versions.node) {
  const [major, minor] = version.split('.').map(Number);
  if (major === 24) return minor >= 20;
  if (major === 26) return minor >= 5;
  return major >= 27;
}

/** Print one line and exit 1 when this Node.js is too old. */
export function requireSupportedNode(what = 'proxyd') {
  if (socketTransferSupported()) return;
  process.stderr.write(
    `${what} needs ${REQUIRED}: only there can the primary thread hand an accepted socket to a worker thread ` +
      `(this is Node.js ${process.versions.node} at ${process.execPath}; run "pnpm install" to get the pinned ` +
      `runtime, then use "npx proxyd").\n`,
  );
  process.exit(1);
}
