// Blocklist: one domain per line, "#" starts a comment. A domain blocks itself and every subdomain
// ("facebook.com" blocks "www.facebook.com", not "notfacebook.com"); case-insensitive; a trailing dot
// is ignored. Pure functions: no socket, no thread, no file (loading is the caller's).

export interface Blocklist {
  /** The domains, normalised. */
  readonly rules: readonly string[];
  /** The rule that blocks `host`, or undefined. */
  match(host: string): string | undefined;
}

const LABEL = /^(?!-)[a-z0-9_-]{1,63}(?<!-)$/;

/** Lower-case, drop one trailing dot and IPv6 brackets. */
export function normalizeHost(host: string): string {
  let h = host.trim().toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  if (h.endsWith('.')) h = h.slice(0, -1);
  return h;
}

/** A normalised host that is a domain name (labels of letters, digits, '-' and '_'; 253 bytes at most). */
export function isDomainName(domain: string): boolean {
  return domain.length <= 253 && domain.split('.').every((label) => LABEL.test(label));
}

/** Parse blocklist text; throws naming the first bad line ("line 3: ..."). */
export function parseBlocklist(text: string): Blocklist {
  const rules = new Set<string>();
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, i) => {
    const line = raw.replace(/#.*/, '').trim();
    if (line === '') return;
    const domain = normalizeHost(line);
    if (!isDomainName(domain) || /\s/.test(line)) throw new Error(`line ${i + 1}: "${raw.trim()}" is not a domain name`);
    rules.add(domain);
  });
  return blocklistOf([...rules]);
}

/** A blocklist over already-normalised domains. */
export function blocklistOf(rules: readonly string[]): Blocklist {
  const set = new Set(rules);
  return {
    rules,
    match(host: string): string | undefined {
      if (set.size === 0) return undefined;
      let h = normalizeHost(host);
      // Try the name and each parent: www.a.facebook.com, a.facebook.com, facebook.com, com.
      for (;;) {
        if (set.has(h)) return h;
        const dot = h.indexOf('.');
        if (dot < 0) return undefined;
        h = h.slice(dot + 1);
      }
    },
  };
}

export const EMPTY_BLOCKLIST: Blocklist = blocklistOf([]);
