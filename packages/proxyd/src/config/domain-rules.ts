// --parent-for DOMAIN=NAME (repeatable): a domain and its subdomains go to one parent. The domain is
// checked as every domain list is (domain-list.ts, which --direct-for uses). Whether NAME is a parent is
// a rule between options (option-table.ts), since the parents are another option.
import { parseDomain } from './domain-list.ts';
import { listType, type OptionType } from './option-type.ts';

/** DOMAIN=NAME entries, kept as written (lower-cased domain). */
export function domainToParentListType(): OptionType<string[]> {
  return listType((entry) => {
    const [domain = '', name, extra] = entry.split('=');
    if (name === undefined || name === '' || extra !== undefined) return { ok: false, value: entry, problem: 'must be DOMAIN=PARENT-NAME' };
    const d = parseDomain(domain);
    return d.ok ? { ok: true, value: `${d.value}=${name}` } : d;
  });
}
