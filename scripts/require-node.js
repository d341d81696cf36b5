// Run before the tests: fail with one clear line when the pinned Node.js runtime is not the one on PATH.
import { requireSupportedNode } from '../packages/proxyd/bin/runtime-check.js';

requireSupportedNode('the proxyd test suite');
