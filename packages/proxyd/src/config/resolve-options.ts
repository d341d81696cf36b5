// Defaults < config file < flags → the options proxyd runs with, and the rules that join options
// (option-table.ts: RULES) checked on the result. Each layer arrives already parsed by the table's
// schemas (config-file.ts, flags.ts); here they are only layered and checked together.
import { OptionError, type OptionSource } from './option-error.ts';
import { RULES } from './option-table.ts';
import { DEFAULTS, type ProxyOptions } from './options.ts';

export interface ConfigLayer {
  file: string;
  values: Partial<ProxyOptions>;
}

function checkRules(options: ProxyOptions, where: { source: OptionSource; file?: string }): void {
  for (const rule of RULES) {
    const broken = rule.check(options);
    if (broken) throw new OptionError({ ...where, ...broken });
  }
}

export function resolveOptions(config: ConfigLayer | undefined, flags: Partial<ProxyOptions>): ProxyOptions {
  // A copy: the defaults' lists belong to the table, the result to the proxy.
  const defaults = structuredClone(DEFAULTS);
  // The file on its own must make sense, so that its mistakes are reported as the file's.
  if (config) checkRules({ ...defaults, ...config.values }, { source: 'config', file: config.file });
  const options = { ...defaults, ...config?.values, ...flags };
  checkRules(options, { source: 'flag' });
  return options;
}
