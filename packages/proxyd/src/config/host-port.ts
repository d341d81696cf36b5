// A listening address, "127.0.0.1:9090", "localhost:9090" or "[::1]:9090"; with offAllowed, "off".
import { z } from 'zod';
import { scalarType, type OptionType, type Parsed } from './option-type.ts';

export interface HostPort {
  host: string;
  port: number;
}

/** Parse host:port (port 0-65535, 0 for any free port); "off" is undefined when allowed. */
export function parseHostPort(text: string, { offAllowed = false } = {}): Parsed<HostPort | undefined> {
  if (offAllowed && text.trim() === 'off') return { ok: true, value: undefined };
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s[\]]+)):(\d{1,5})$/.exec(text.trim());
  const port = Number(m?.[3]);
  if (!m || port > 65535) return { ok: false, problem: `must be host:port (e.g. 127.0.0.1:9090)${offAllowed ? ' or "off"' : ''}, got "${text}"` };
  return { ok: true, value: { host: (m[1] ?? m[2])!, port } };
}

export function formatHostPort(address: HostPort | undefined): string {
  if (!address) return 'off';
  return `${address.host.includes(':') ? `[${address.host}]` : address.host}:${address.port}`;
}

/** An address option that may be turned "off" (undefined). */
export function hostPortOrOffType(): OptionType<HostPort | undefined> {
  return scalarType({
    out: z.object({ host: z.string(), port: z.number().int() }).optional(),
    parse: (text) => parseHostPort(text, { offAllowed: true }),
    show: formatHostPort,
  });
}
