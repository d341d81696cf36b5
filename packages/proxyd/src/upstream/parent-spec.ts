// One --parent entry, read from text: `URL[,weight=N][,name=NAME]`, e.g.
// `http://user:secret@10.0.0.5:3128,weight=3,name=east`. Pure: no socket, no thread.
//
// The credentials are kept apart from everything that may be shown: `name` and `display` never carry
// them (log records, metrics, --help, check-config's output and error messages use those), and only the
// `Proxy-Authorization` value the paths to the parent send is built from them.
import type { Parsed } from '../config/option-type.ts';

export interface ParentSpec {
  /** For logs, metrics and --parent-for rules: given with name=, or host:port. */
  name: string;
  protocol: 'http:' | 'https:';
  host: string;
  port: number;
  weight: number;
  /** `Basic …` for the parent, or undefined when the URL carries no user. Never logged. */
  authorization: string | undefined;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

/** Read one entry. The problem text never repeats the URL's password. */
export function parseParent(text: string): Parsed<ParentSpec> {
  const [urlText = '', ...params] = text.trim().split(',');
  let url: URL;
  try {
    url = new URL(urlText);
  } catch {
    return { ok: false, value: redact(urlText), problem: 'is not a URL (http://host:port or https://host:port)' };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return { ok: false, value: redact(urlText), problem: 'must be an http:// or https:// proxy URL' };
  if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash) return { ok: false, value: redact(urlText), problem: 'must be a proxy URL without a path' };
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  let weight = 1;
  let name = `${url.hostname}:${port}`;
  for (const param of params) {
    const [key, value = ''] = param.split('=');
    if (key === 'weight' && /^\d{1,3}$/.test(value) && Number(value) >= 1 && Number(value) <= 100) weight = Number(value);
    else if (key === 'name' && NAME.test(value)) name = value;
    else return { ok: false, value: param, problem: 'is not weight=N (1 to 100) or name=NAME (letters, digits, . _ -)' };
  }
  const user = decodeURIComponent(url.username);
  const authorization = url.username || url.password ? `Basic ${Buffer.from(`${user}:${decodeURIComponent(url.password)}`).toString('base64')}` : undefined;
  return { ok: true, value: { name, protocol: url.protocol, host, port, weight, authorization } };
}

/** The URL with its password replaced, for messages about it. */
function redact(urlText: string): string {
  return urlText.replace(/\/\/([^/@:]*):[^/@]*@/, '//$1:***@');
}

/** How a parent is written back (check-config's output, --help): without its password. */
export function showParent(p: ParentSpec): string {
  const user = p.authorization ? `${Buffer.from(p.authorization.slice(6), 'base64').toString().split(':')[0]}:***@` : '';
  const host = p.host.includes(':') ? `[${p.host}]` : p.host;
  return `${p.protocol}//${user}${host}:${p.port},weight=${p.weight},name=${p.name}`;
}
