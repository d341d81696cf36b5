#!/usr/bin/env node
// The proxyd program: check the runtime first (one clear line on an old Node.js), then load the CLI —
// the TypeScript sources in the workspace (Node.js >= 24.20 runs them directly), the compiled dist/ in
// the published package (which ships no src/). The `proxyd` command is bin/proxyd, a shell launcher
// that picks a Node.js able to run this file and execs it.
import { existsSync } from 'node:fs';
import { requireSupportedNode } from './runtime-check.js';

requireSupportedNode();
const sources = new URL('../src/cli.ts', import.meta.url);
const { main } = await import(existsSync(sources) ? sources.href : new URL('../dist/cli.js', import.meta.url).href);
await main(process.argv.slice(2));
