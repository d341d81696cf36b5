#!/usr/bin/env node
// The proxyd program: check the runtime first (one clear line on an old Node.js), then load the CLI —
// the TypeScript sources in the workspace (Node.js >= 24.20 runs them directly), the compiled dist/ in
// the published package (which ships no src/). The `proxyd` command is bin/proxyd, a shell launcher
// that picks a Node.js able to run this file and execs it.
import { existsSync } from 'node:fs';
import module from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import v8 from 'node:v8';
import { requireSupportedNode } from './runtime-check.js';

requireSupportedNode();
// Node.js's compile cache (Node's own default folder, keyed by each file's content): from the second
// start on, no thread compiles or type-strips what it loaded before. In the workspace each isolate
// (primary, workers, logger) would otherwise load the TypeScript stripper, ~17 MiB of RSS each (issue
// 20). Worker threads enable it from NODE_COMPILE_CACHE in the environment they copy, so it is set first.
if (module.enableCompileCache && !process.env.NODE_DISABLE_COMPILE_CACHE) {
  process.env.NODE_COMPILE_CACHE ||= join(tmpdir(), 'node-compile-cache');
  module.enableCompileCache(process.env.NODE_COMPILE_CACHE);
}
// Young generations (issue 20, scripts/bench/memory-breakdown.ts). V8 grows an isolate's new space with
// its allocation rate up to its cap and rarely gives it back; its default cap is 64 MiB semi-spaces (128
// MiB of new space) per isolate. The caps are set per thread: the primary's by the launcher (bin/proxyd
// runs node with --max-semi-space-size=1: V8 sizes the main thread's heap before any code runs, and with
// workers the primary only accepts), the workers' by their resourceLimits (primary/serving.ts: 8 MiB
// semi-spaces at most), the logger's (primary/start-logger.ts: 1 MiB). The command-line flag would
// override every worker's own limit, so it is cleared here, before any thread starts: from now on each
// thread starts small (1 MiB semi-spaces) and grows only when it is busy, so a fresh proxyd does not hold
// two 16 MiB new spaces it is not using.
// Started without the launcher (node bin/proxyd.js, as the tests do), the primary has no cap: then the
// young generations are fixed as before this change — threads started from now on at 8 MiB semi-spaces,
// the primary at what it started with (1 MiB; V8 may still resize it to the new minimum after a full
// collection). V8 flags are the process's; V8 reads these when it sizes or grows a new space.
if (process.execArgv.some((flag) => flag.startsWith('--max-semi-space-size'))) {
  v8.setFlagsFromString('--max-semi-space-size=0');
} else {
  v8.setFlagsFromString('--semi-space-growth-factor=1');
  v8.setFlagsFromString('--min-semi-space-size=8');
}
// Old generations grown by half of what survives each full collection, not by up to 4x (V8's factor on a
// machine with this much memory): busy workers' old spaces otherwise filled with dead objects between
// collections, and RSS after load kept rising from round to round (memory-breakdown.ts, 3 rounds: 301 ->
// 339 -> 370 MiB; with 50%: 277 -> 286 -> 286). V8 reads it at every full collection, in every thread.
v8.setFlagsFromString('--heap-growing-percent=50');
// gc() for each thread's one collection after start (src/memory/settle-heap.ts; V8 defines it on every
// thread's global object, where nothing else in proxyd uses it). Set before any thread starts and before
// the sources load, so that it is part of the compile cache's key from the first start on.
v8.setFlagsFromString('--expose-gc');
const sources = new URL('../src/cli.ts', import.meta.url);
const { main } = await import(existsSync(sources) ? sources.href : new URL('../dist/cli.js', import.meta.url).href);
await main(process.argv.slice(2));
