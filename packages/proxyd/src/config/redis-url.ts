// --redis URL: where the fleet's shared bans and rate limits live (primary/fleet-bridge.ts). Only
// redis:// and rediss:// (TLS, as ElastiCache with in-transit encryption wants) are accepted, with a
// host; "off" (the default) leaves every Redis part out. A password in the URL is never shown
// (redactRedisUrl) in the log or the start-up banner.
import { z } from 'zod';
import { scalarType, type OptionType, type Parsed } from './option-type.ts';

export function parseRedisUrl(text: string): Parsed<string | undefined> {
  const trimmed = text.trim();
  if (trimmed === '' || trimmed === 'off') return { ok: true, value: undefined };
  let url: URL;
  try {
    url = new URL(trimmed);
  } catch {
    return { ok: false, problem: `must be a redis:// or rediss:// URL (e.g. redis://10.0.0.7:6379), or "off", got "${redactRedisUrl(trimmed)}"` };
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') return { ok: false, problem: `must start with redis:// or rediss:// (TLS), got "${url.protocol}//…"` };
  if (url.hostname === '') return { ok: false, problem: `needs a host (e.g. redis://10.0.0.7:6379), got "${redactRedisUrl(trimmed)}"` };
  if (url.pathname !== '' && url.pathname !== '/' && !/^\/\d+$/.test(url.pathname)) return { ok: false, problem: `may name a database number only (redis://host:6379/0), got path "${url.pathname}"` };
  return { ok: true, value: trimmed };
}

/** The URL without its password, for the log. */
export function redactRedisUrl(text: string): string {
  return text.replace(/^(\w+:\/\/[^:@/]*:)[^@/]*@/, '$1***@');
}

export function redisUrlType(): OptionType<string | undefined> {
  return scalarType({ out: z.string().optional(), parse: parseRedisUrl, show: (url) => url ?? 'off' });
}
