// `pnpm release:pack [--out DIR]`: build both packages and pack them as npm will publish them.
//
//   1. stage    each package in a fresh temporary folder: package.json, README.md, LICENSE, bin/, and
//               dist/ compiled from src/ by its tsconfig.build.json (the same sources the workspace runs
//               directly, `./x.ts` imports rewritten to `./x.js`; .d.ts for @proxyd/sync), plus the files
//               proxyd reads at run time (the dashboard's page, script and style);
//   2. manifest point `exports` at dist/ (`./src/x.ts` → `./dist/x.js`, its types → `./dist/x.d.ts` when
//               one was emitted), apply `publishConfig`, and turn `workspace:*` into the exact version
//               of that workspace package — what `pnpm pack` does with a publishConfig, done here
//               because pnpm packs only in place: building in place would put dist/ in the source tree
//               and let two packs at once (two test files) delete each other's build;
//   3. pack     with `npm pack` into DIR (default: release/), and check each tarball: what it must hold,
//               no TypeScript source, no workspace: version, and `npm publish --dry-run`.
//
// It prints the tarballs' paths and sizes, then how a maintainer publishes them. Nothing is published.
import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Folder under packages/ → what its tarball must hold besides package.json, README.md and LICENSE. */
const PACKAGES = {
  sync: ['dist/semaphore.js', 'dist/semaphore.d.ts'],
  proxyd: ['bin/proxyd', 'bin/proxyd.js', 'bin/runtime-check.js', 'dist/cli.js', 'dist/worker/connection-task.js', 'dist/logger/logger-thread.js', 'dist/admin/dashboard/index.html'],
} as const;
/** publishConfig keys that are settings for npm publish, not fields of the published manifest. */
const PUBLISH_SETTINGS = new Set(['access', 'registry', 'tag', 'provenance', 'directory']);

type Manifest = Record<string, unknown> & { name: string; version: string; publishConfig?: Record<string, unknown> };

function fail(message: string): never {
  process.stderr.write(`release:pack: ${message}\n`);
  process.exit(1);
}

function run(command: string, args: string[], cwd: string): string {
  try {
    return execFileSync(command, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    fail(`${command} ${args.join(' ')} (in ${cwd}) failed:\n${e.stdout ?? ''}${e.stderr ?? e.message}`);
  }
}

const readManifest = (dir: string) => JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Manifest;

/** An export target in the published package: `./src/x.ts` → `./dist/x.js` (or `./dist/x.d.ts` for types). */
function compiledTarget(target: string, types: boolean): string {
  return target.replace(/^\.\/src\/(.*)\.ts$/, types ? './dist/$1.d.ts' : './dist/$1.js');
}

/** `exports` with every target compiled; a `types` condition whose .d.ts was not emitted is left out. */
function compiledExports(exports: Record<string, unknown>, staged: string): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  for (const [path, target] of Object.entries(exports)) {
    if (typeof target === 'string') result[path] = compiledTarget(target, false);
    else {
      const conditions: Record<string, string> = {};
      for (const [condition, file] of Object.entries(target as Record<string, string>)) {
        const compiled = compiledTarget(file, condition === 'types');
        if (condition !== 'types' || existsSync(join(staged, compiled))) conditions[condition] = compiled;
      }
      result[path] = conditions;
    }
  }
  return result;
}

/** The manifest as published: exports compiled, publishConfig applied, workspace:* versions made exact. */
function publishedManifest(manifest: Manifest, workspaceVersions: ReadonlyMap<string, string>, staged: string): Manifest {
  const { publishConfig, ...published } = manifest;
  if (published.exports) published.exports = compiledExports(published.exports as Record<string, unknown>, staged);
  const settings: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(publishConfig ?? {})) {
    if (PUBLISH_SETTINGS.has(key)) settings[key] = value;
    else published[key] = value;
  }
  if (Object.keys(settings).length) published.publishConfig = settings;
  for (const field of ['dependencies', 'optionalDependencies', 'peerDependencies', 'devDependencies']) {
    const deps = published[field] as Record<string, string> | undefined;
    for (const [name, range] of Object.entries(deps ?? {})) {
      if (!range.startsWith('workspace:')) continue;
      const version = workspaceVersions.get(name);
      if (!version) fail(`${manifest.name}: ${field}.${name} is ${range}, but no workspace package is called ${name}`);
      deps![name] = version;
    }
  }
  return published;
}

function main(): void {
  const i = process.argv.indexOf('--out');
  if (i >= 0 && !process.argv[i + 1]) fail('--out needs a folder');
  const out = resolve(i >= 0 ? process.argv[i + 1]! : join(ROOT, 'release'));
  const tsc = join(ROOT, 'node_modules/.bin/tsc');
  if (!existsSync(tsc)) fail(`no ${tsc}: install the workspace first (npx --yes pnpm@10.34.8 install)`);
  mkdirSync(out, { recursive: true });

  const versions = new Map(Object.keys(PACKAGES).map((name) => readManifest(join(ROOT, 'packages', name))).map((m) => [m.name, m.version]));
  const stage = mkdtempSync(join(tmpdir(), 'proxyd-release-'));
  const tarballs: string[] = [];
  try {
    for (const [name, must] of Object.entries(PACKAGES)) {
      const source = join(ROOT, 'packages', name);
      const dir = join(stage, name);
      mkdirSync(dir);
      // 1. stage
      run(tsc, ['-p', join(source, 'tsconfig.build.json'), '--outDir', join(dir, 'dist')], ROOT);
      if (name === 'proxyd') cpSync(join(source, 'src/admin/dashboard'), join(dir, 'dist/admin/dashboard'), { recursive: true });
      if (existsSync(join(source, 'bin'))) cpSync(join(source, 'bin'), join(dir, 'bin'), { recursive: true });
      copyFileSync(join(source, 'README.md'), join(dir, 'README.md'));
      copyFileSync(join(ROOT, 'LICENSE'), join(dir, 'LICENSE'));
      // 2. manifest
      const manifest = publishedManifest(readManifest(source), versions, dir);
      writeFileSync(join(dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
      // 3. pack and check
      const file = run('npm', ['pack', '--ignore-scripts', '--pack-destination', out], dir).trim().split('\n').at(-1)!;
      const tarball = join(out, file);
      const listing = run('tar', ['-tzf', tarball], out).split('\n').filter(Boolean).map((f) => f.replace(/^package\//, ''));
      for (const wanted of [...must, 'package.json', 'README.md', 'LICENSE']) if (!listing.includes(wanted)) fail(`${tarball} lacks ${wanted}`);
      const sources = listing.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'));
      if (sources.length) fail(`${tarball} ships TypeScript sources, which Node.js does not run from node_modules: ${sources.slice(0, 3).join(', ')}`);
      if (run('tar', ['-xzOf', tarball, 'package/package.json'], out).includes('workspace:')) fail(`${tarball}: package.json still names a workspace: version`);
      run('npm', ['publish', '--dry-run', '--ignore-scripts', tarball], out);
      tarballs.push(tarball);
    }
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
  for (const tarball of tarballs) console.log(`${tarball}  ${(statSync(tarball).size / 1024).toFixed(0)} KiB`);
  console.log(
    '\nchecked with npm publish --dry-run. To publish (npm login first; @proxyd/sync first, proxyd depends on it):\n' +
      tarballs.map((t) => `  npm publish ${t}`).join('\n'),
  );
}

main();
