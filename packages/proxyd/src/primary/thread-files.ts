// The entry modules of the threads the primary starts. They are loaded by file name, never imported (the
// primary does not import worker or logger code), so their extension is not rewritten by the compiler:
// it is this module's own — .ts where Node.js runs the sources (the workspace), .js in the published
// package (dist/, compiled by `pnpm release:pack`).
const EXTENSION = import.meta.url.endsWith('.ts') ? '.ts' : '.js';

/** The Piscina task: serves one connection (worker/connection-task.ts). */
export const TASK_FILE = new URL(`../worker/connection-task${EXTENSION}`, import.meta.url);

/** The logger thread (logger/logger-thread.ts). */
export const LOGGER_FILE = new URL(`../logger/logger-thread${EXTENSION}`, import.meta.url);
