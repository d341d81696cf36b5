// The effective options written back as a config file: each option under its own key (the flag name),
// its value encoded by the option's own codec (option-type.ts) — "queue-timeout": "30s",
// "connect-ports": "443", "port": 8080, "admin": "off", an unset file as "" (which the file reads as
// unset). check-config prints this, so what it prints can be saved and used as a config file that gives
// the same options; test/config.test.ts checks that round trip.
import { z } from 'zod';
import { OPTION_LIST, type OptionName } from './option-table.ts';
import type { ProxyOptions } from './options.ts';
import type { Written } from './option-type.ts';

/** Every option, in the table's order (the order --help lists them). */
export function encodeOptions(options: ProxyOptions): Record<OptionName, Written> {
  const out: Partial<Record<OptionName, Written>> = {};
  for (const o of OPTION_LIST) out[o.name] = z.encode(o.type.schema, options[o.field]);
  return out as Record<OptionName, Written>;
}
