// Domain lists for routing through parents: --direct-for DOMAIN (repeatable) and --parent-for
// DOMAIN=NAME (repeatable). A domain covers its subdomains, as in the blocklist. Whether NAME is a
// parent is a rule between options (option-table.ts), since the parents are another option.
import { listType, type OptionType, type Parsed } from './option-type.ts';

const DOMAIN = /^\.?([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/i;

function parseDomain(text: string): Parsed<string> {
  return DOMAIN.test(text) ? { ok: true, value: text.toLowerCase().replace(/^\./, '') } : { ok: false, value: text, problem: 'is not a domain name' };
}

export function domainListType(): OptionType<string[]> {
  return listType(parseDomain);
}

/** DOMAIN=NAME entries, kept as written (lower-cased domain). */
export function domainToParentListType(): OptionType<string[]> {
  return listType((entry) => {
    const [domain = '', name, extra] = entry.split('=');
    if (name === undefined || name === '' || extra !== undefined) return { ok: false, value: entry, problem: 'must be DOMAIN=PARENT-NAME' };
    const d = parseDomain(domain);
    return d.ok ? { ok: true, value: `${d.value}=${name}` } : d;
  });
}
