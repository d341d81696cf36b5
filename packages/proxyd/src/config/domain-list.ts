// A list of domain names (repeatable flag, comma-separated, or a JSON list), each checked as the
// blocklist checks its lines; "example.com" also covers its subdomains where the list is used.
import { listType, type OptionType } from './option-type.ts';
import { isDomainName, normalizeHost } from '../policy/blocklist.ts';

export function domainListType(): OptionType<string[]> {
  return listType((entry) => (isDomainName(normalizeHost(entry)) ? { ok: true, value: entry } : { ok: false, problem: 'is not a domain name', value: entry }));
}
