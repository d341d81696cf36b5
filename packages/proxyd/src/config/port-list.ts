// Port lists such as "443,8443,9000-9099": a set of inclusive ranges.

export type PortList = readonly (readonly [number, number])[];

function parsePort(text: string, what: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > 65535) throw new Error(`${what}: "${text}" is not a port (1-65535)`);
  return n;
}

/** Parse "443,8443,9000-9099"; throws a one-line error on a bad entry. */
export function parsePortList(text: string, what = 'port list'): PortList {
  const ranges: [number, number][] = [];
  for (const part of text.split(',').map((p) => p.trim())) {
    if (part === '') throw new Error(`${what}: empty entry in "${text}"`);
    const [lo, hi, extra] = part.split('-');
    if (extra !== undefined) throw new Error(`${what}: "${part}" is not a port or a range like 9000-9099`);
    const from = parsePort(lo!.trim(), what);
    const to = hi === undefined ? from : parsePort(hi.trim(), what);
    if (to < from) throw new Error(`${what}: range "${part}" runs backwards`);
    ranges.push([from, to]);
  }
  return ranges;
}

export function formatPortList(list: PortList): string {
  return list.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(',');
}
