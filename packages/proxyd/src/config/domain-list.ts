// A list of domain names (repeatable flag, comma-separated, or a JSON list), each checked as the
// blocklist checks its lines; "example.com" also covers its subdomains where the list is used
// (--cache-deny, --direct-for, the domains of --parent-for). Kept lower-case, without a leading or
// trailing dot.
import { isDomainName, normalizeHost } from '../policy/blocklist.ts';
import { listType, type OptionType, type Parsed } from './option-type.ts';

export function parseDomain(text: string): Parsed<string> {
  const host = normalizeHost(text.trim().replace(/^\./, ''));
  return host !== '' && isDomainName(host) ? { ok: true, value: host } : { ok: false, problem: 'is not a domain name', value: text };
}

export function domainListType(): OptionType<string[]> {
  return listType(parseDomain);
}
