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
// Fixed young generations (issue 20, scripts/bench/memory-breakdown.ts). V8 grows each isolate's
// new space with its allocation rate, to about 100 MiB per busy worker here, and never gives it back:
// after load that was ~250 MiB of RSS with two workers. Growth factor 1 keeps every isolate at the size
// it starts with; threads started from now on start with 8 MiB semi-spaces (a worker's new space is
// 16 MiB; smaller ones scavenge so often that GC time per request grows: 1 MiB semi-spaces paused the
// workers ~4x as long per request), the logger caps its own lower (primary/start-logger.ts). The
// primary's heap was sized before this line, at 1 MiB semi-spaces: with workers it only accepts.
// V8 flags are the process's; V8 reads these two when it sizes or grows a new space.
v8.setFlagsFromString('--semi-space-growth-factor=1');
v8.setFlagsFromString('--min-semi-space-size=8');
const sources = new URL('../src/cli.ts', import.meta.url);
const { main } = await import(existsSync(sources) ? sources.href : new URL('../dist/cli.js', import.meta.url).href);
await main(process.argv.slice(2));
