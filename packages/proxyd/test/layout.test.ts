// The layout rules README states, checked on the source: a file's folder says which thread runs it, and
// imports run one way (primary/ and worker/ never import each other, admin/ reaches into nothing of the
// primary and nothing that serves traffic reaches into admin/, policy/ is pure, limits/ decides on shared
// memory without touching a socket or a thread, @proxyd/sync knows nothing of the proxy).
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../src/', import.meta.url));
const SYNC_SRC = fileURLToPath(new URL('../../sync/src/', import.meta.url));

/** Folders (under src/) a folder may not import from. */
const FORBIDDEN: Record<string, string[]> = {
  primary: ['worker', 'admin', 'logger'],
  worker: ['primary', 'admin', 'logger'],
  logger: ['primary', 'worker', 'admin'],
  admin: ['primary', 'worker', 'logger'],
  policy: ['primary', 'worker', 'admin', 'logger', 'memory', 'messages'],
  memory: ['primary', 'worker', 'admin', 'logger', 'messages'],
  messages: ['primary', 'worker', 'admin', 'logger'],
  config: ['primary', 'worker', 'admin', 'logger', 'memory', 'messages'],
  // Parent proxies: part of the serving side (it uses worker/'s dialling and relaying), never the primary's.
  upstream: ['primary', 'admin', 'logger'],
  limits: ['primary', 'worker', 'admin', 'logger', 'messages'],
  // The cache runs in the serving threads, as the worker's tool: it knows no thread role, no admin.
  cache: ['primary', 'worker', 'admin', 'logger', 'messages'],
  // Node.js's own modules, loaded the cheap way (builtins/http.ts, builtins/tls.ts): usable from every
  // thread, so they know nothing of proxyd.
  builtins: ['primary', 'worker', 'admin', 'logger', 'messages', 'memory', 'policy', 'config', 'upstream', 'limits', 'cache'],
};
/** Built-in modules a pure folder may not touch: threads, sockets that carry traffic. */
const IMPURE_BUILTINS = ['node:worker_threads', 'node:tls', 'node:dgram', 'node:child_process'];

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => join(e.parentPath, e.name));
}

/**
 * Every module specifier a file names: static imports, re-exports, import(), and new URL(…, import.meta.url)
 * — in quotes or in a template (a template's `${…}` parts are dropped: `../x${EXT}` names ../x).
 */
function specifiers(text: string): string[] {
  const found = [
    ...text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"`;]*?\bfrom\s+'([^']+)'/g),
    ...text.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g),
    ...text.matchAll(/new URL\(\s*['`]([^'`]+)['`]\s*,\s*import\.meta\.url\)/g),
  ];
  return found.map((m) => m[1]!.replace(/\$\{[^}]*\}/g, ''));
}

/** The rule a file breaks by naming `spec`, or undefined. */
function violation(file: string, spec: string): string | undefined {
  const folder = relative(SRC, file).split('/')[0]!;
  if (spec.startsWith('.')) {
    const target = relative(SRC, resolve(dirname(file), spec)).split('/')[0]!;
    if (FORBIDDEN[folder]?.includes(target)) return `${folder}/ may not import ${target}/`;
  }
  if ((folder === 'policy' || folder === 'config' || folder === 'limits') && IMPURE_BUILTINS.includes(spec)) return `${folder}/ is pure: no ${spec}`;
  return undefined;
}

t.test('the checker catches what it is meant to catch', async (t) => {
  t.same(specifiers(`import a from '../worker/x.ts';\nimport type { B } from "../y";\nexport { c } from '../admin/c.ts';\nconst m = await import('../primary/m.ts');\nconst f = new URL('../worker/task.ts', import.meta.url);\nconst g = new URL(\`../logger/thread\${EXT}\`, import.meta.url);`), ['../worker/x.ts', '../admin/c.ts', '../primary/m.ts', '../worker/task.ts', '../logger/thread']);
  t.equal(violation(join(SRC, 'primary/a.ts'), '../worker/connection-task.ts'), 'primary/ may not import worker/');
  t.equal(violation(join(SRC, 'admin/a.ts'), '../primary/start-proxy.ts'), 'admin/ may not import primary/');
  t.equal(violation(join(SRC, 'policy/a.ts'), 'node:worker_threads'), 'policy/ is pure: no node:worker_threads');
  t.equal(violation(join(SRC, 'primary/a.ts'), '../policy/refusals.ts'), undefined);
  t.equal(violation(join(SRC, 'cache/a.ts'), '../worker/context.ts'), 'cache/ may not import worker/');
});

t.test('imports in packages/proxyd/src run one way', async (t) => {
  const files = filesUnder(SRC);
  t.ok(files.length > 40, `${files.length} source files read`);
  const broken: string[] = [];
  for (const file of files) {
    for (const spec of specifiers(readFileSync(file, 'utf8'))) {
      const v = violation(file, spec);
      if (v) broken.push(`${relative(SRC, file)} → ${spec}: ${v}`);
    }
  }
  // The one sanctioned crossing: the primary names the serving task's and the logger thread's files
  // with new URL() to start those threads (primary/thread-files.ts); neither module is imported into the
  // primary's module graph.
  const allowed = ['primary/thread-files.ts → ../worker/connection-task', 'primary/thread-files.ts → ../logger/logger-thread'];
  t.same(broken.filter((b) => !allowed.some((a) => b.startsWith(a))), [], 'no import crosses a layer the wrong way');
});

t.test('@proxyd/sync imports nothing but itself', async (t) => {
  for (const file of filesUnder(SYNC_SRC)) {
    const outside = specifiers(readFileSync(file, 'utf8')).filter((s) => !s.startsWith('./'));
    t.same(outside, [], `${relative(SYNC_SRC, file)} imports only sibling files`);
  }
});
