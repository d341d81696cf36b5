#!/usr/bin/env node
// Entry point of the `proxyd` command: check the runtime first (one clear line on an old Node.js), then
// load the TypeScript CLI, which Node.js >= 24.20 runs directly.
import { requireSupportedNode } from './runtime-check.js';

requireSupportedNode();
const { main } = await import('../src/cli.ts');
await main(process.argv.slice(2));
