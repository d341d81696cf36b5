// Port lists such as "443,8443,9000-9099": a set of inclusive ranges.
import { z } from 'zod';
import { scalarType, type OptionType, type Parsed } from './option-type.ts';

export type PortList = readonly (readonly [number, number])[];

function parsePort(text: string): Parsed<number> {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > 65535) return { ok: false, value: text, problem: 'is not a port (1-65535)' };
  return { ok: true, value: n };
}

/** Parse "443,8443,9000-9099"; with `noneAllowed`, "none" is the empty list. */
export function parsePortList(text: string, { noneAllowed = false } = {}): Parsed<PortList> {
  if (noneAllowed && text.trim() === 'none') return { ok: true, value: [] };
  const ranges: [number, number][] = [];
  for (const part of text.split(',').map((p) => p.trim())) {
    if (part === '') return { ok: false, value: text, problem: 'has an empty entry' };
    const [lo, hi, extra] = part.split('-');
    if (extra !== undefined) return { ok: false, value: part, problem: 'is not a port or a range like 9000-9099' };
    const from = parsePort(lo!.trim());
    if (!from.ok) return from;
    const to = hi === undefined ? from : parsePort(hi.trim());
    if (!to.ok) return to;
    if (to.value < from.value) return { ok: false, value: part, problem: 'is a range that runs backwards' };
    ranges.push([from.value, to.value]);
  }
  return { ok: true, value: ranges };
}

export function formatPortList(list: PortList): string {
  return list.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(',');
}

const PORT_LIST = z.array(z.tuple([z.number().int(), z.number().int()]).readonly()).readonly();

/** A port-list option; with `noneAllowed`, "none" (the empty list) is a value too. */
export function portListType({ noneAllowed = false } = {}): OptionType<PortList> {
  return scalarType({
    out: PORT_LIST,
    parse: (text) => parsePortList(text, { noneAllowed }),
    show: (list) => (list.length === 0 && noneAllowed ? 'none' : formatPortList(list)),
  });
}
