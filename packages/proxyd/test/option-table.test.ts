// Walks the option table (config/option-table.ts) and checks that every consumer derived from it sees
// every option: --help, the config-file schema, check-config, the reload diff, DEFAULTS and README's
// options table. A new entry is covered here without editing this file.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { buildParser } from '../src/config/command-line.ts';
import { CONFIG_SCHEMA, parseConfigText } from '../src/config/config-file.ts';
import { parseFlags } from '../src/config/flags.ts';
import { OPTION_LIST } from '../src/config/option-table.ts';
import { DEFAULTS, type ProxyOptions } from '../src/config/options.ts';
import { splitReload } from '../src/config/split-reload.ts';
import { BIN } from './helpers/proxy.ts';

/** The default as text, the way the flag and the config file take it. */
function encodedDefault(o: (typeof OPTION_LIST)[number]) {
  return z.encode(o.type.schema, o.default);
}

t.test('each option sets its own field, and DEFAULTS is the table plus the internal logRingBytes', async (t) => {
  const fields = OPTION_LIST.map((o) => o.field);
  t.equal(new Set(fields).size, fields.length, 'no two options set one field');
  t.same(Object.keys(DEFAULTS).sort(), [...fields, 'logRingBytes'].sort());
  for (const o of OPTION_LIST) t.same(DEFAULTS[o.field], o.default, `DEFAULTS.${o.field}`);
  t.notOk(OPTION_LIST.some((o) => (o.field as string) === 'logRingBytes'), 'logRingBytes is not an option');
});

t.test('every default is a value of its type: it reads back through the flag and through the config file', async (t) => {
  for (const o of OPTION_LIST) {
    const text = encodedDefault(o);
    const fromFlag = parseFlags({ [o.name]: o.type.repeatable ? (text as string[]) : String(text) });
    t.same(fromFlag, { [o.field]: o.default }, `--${o.name} ${JSON.stringify(text)}`);
    const fromFile = parseConfigText(JSON.stringify({ [o.name]: text }), 'f.json');
    t.same(fromFile, { [o.field]: o.default }, `"${o.name}": ${JSON.stringify(text)}`);
  }
});

t.test('every option is in --help with its text, its default, and [restart to change] when not live', async (t) => {
  const help = await buildParser(['--help']).getHelp();
  // One section per flag: from its "--name" at the start of a line to the next flag's.
  const sections = new Map<string, string>();
  for (const section of help.split(/\n(?=\s+(?:-\w, )?--[\w-]+\s)/)) {
    const name = /^\s+(?:-\w, )?--([\w-]+)/.exec(section)?.[1];
    if (name) sections.set(name, section.replace(/\s+/g, ' '));
  }
  for (const o of OPTION_LIST) {
    const section = sections.get(o.name);
    if (!t.ok(section, `--${o.name} is in --help`) || !section) continue;
    t.ok(section.includes(o.help), `--${o.name}: its help text`);
    t.equal(section.includes('[restart to change]'), !o.live, `--${o.name}: ${o.live ? 'live, not marked' : 'marked restart to change'}`);
    if (o.helpDefault !== undefined) t.ok(section.includes(`[default: ${o.helpDefault}]`), `--${o.name}: default shown as ${o.helpDefault}`);
    else if (o.default !== undefined) t.ok(section.includes(`[default: ${JSON.stringify(encodedDefault(o))}]`), `--${o.name}: default ${JSON.stringify(encodedDefault(o))}`);
    else t.ok(section.includes('[default: none]'), `--${o.name}: unset by default, shown as none`);
    if (o.type.choices) t.ok(section.includes(`[choices: ${o.type.choices.map((c) => JSON.stringify(c)).join(', ')}]`), `--${o.name}: its choices`);
  }
});

t.test('the config-file schema has a key for every option, and no other', async (t) => {
  t.same(Object.keys(CONFIG_SCHEMA.shape).sort(), OPTION_LIST.map((o) => o.name).sort());
});

t.test('check-config prints every option under its own key, in table order, at its default when nothing is given', async (t) => {
  const r = spawnSync(process.execPath, [BIN, 'check-config'], { encoding: 'utf8', timeout: 20_000 });
  t.equal(r.status, 0, r.stderr);
  const printed = JSON.parse(r.stdout) as Record<string, unknown>;
  t.same(Object.keys(printed), OPTION_LIST.map((o) => o.name), 'the option names, and nothing else');
  for (const o of OPTION_LIST) t.same(printed[o.name], encodedDefault(o), `"${o.name}": ${JSON.stringify(encodedDefault(o))}`);
});

t.test('splitReload: a live option applies, a restart-only option is reported and keeps its running value', async (t) => {
  for (const o of OPTION_LIST) {
    const next = { ...DEFAULTS, [o.field]: 'changed' } as unknown as ProxyOptions;
    const { applied, changedLive, needRestart } = splitReload(DEFAULTS, next);
    const field = o.field;
    if (o.live) {
      t.same({ changedLive, needRestart }, { changedLive: [o.name], needRestart: [] }, `${o.name} changes live`);
      t.equal(applied[field], 'changed');
    } else {
      t.same({ changedLive, needRestart }, { changedLive: [], needRestart: [o.name] }, `${o.name} needs a restart`);
      t.same(applied[field], DEFAULTS[field], `${o.name} keeps its running value`);
    }
  }
  t.same(splitReload(DEFAULTS, { ...DEFAULTS, logRingBytes: 1 }), { applied: DEFAULTS, changedLive: [], needRestart: [] }, 'the internal logRingBytes is not an option a reload changes');
});

t.test("README's options table has a row for every option, with its default", async (t) => {
  const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
  const rows = readme.split('\n').filter((l) => l.startsWith('| `--'));
  for (const o of OPTION_LIST) {
    const row = rows.find((r) => r.split('|')[1]!.includes(`\`--${o.name}`));
    if (!t.ok(row, `--${o.name} has a row`) || !row) continue;
    const cell = row.split('|')[2]!;
    if (o.helpDefault !== undefined) continue; // described in words there ("CPUs, at most 8")
    if (o.default === undefined) t.match(cell, /none/, `--${o.name}: none`);
    else t.ok(cell.includes(`\`${encodedDefault(o)}\``), `--${o.name}: \`${encodedDefault(o)}\` in ${cell.trim()}`);
  }
});
