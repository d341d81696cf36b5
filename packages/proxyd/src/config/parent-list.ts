// --parent, repeatable: each flag (or each string of the config file's list) is one parent, written
// `URL[,weight=N][,name=NAME]` (upstream/parent-spec.ts reads it). Unlike the other list options its
// entries are not split at commas: the commas belong to the entry. Names must be unique, since rules
// (--parent-for), logs and metrics refer to a parent by its name.
import { z } from 'zod';
import { parseParent, showParent, type ParentSpec } from '../upstream/parent-spec.ts';
import { LIST, pushProblem, type OptionType } from './option-type.ts';

const SPEC = z.object({
  name: z.string(),
  protocol: z.enum(['http:', 'https:']),
  host: z.string(),
  port: z.number(),
  weight: z.number(),
  authorization: z.string().optional(),
}) as z.ZodType<ParentSpec, ParentSpec>;

export function parentListType(): OptionType<ParentSpec[]> {
  const schema = z.codec(LIST, z.array(SPEC), {
    decode: (input, payload) => {
      const out: ParentSpec[] = [];
      for (const entry of (Array.isArray(input) ? input : [input]).map((v) => v.trim()).filter((v) => v !== '')) {
        const parsed = parseParent(entry);
        if (!parsed.ok) {
          pushProblem(payload.issues, input, parsed);
          return z.NEVER;
        }
        if (out.some((p) => p.name === parsed.value.name)) {
          pushProblem(payload.issues, input, { problem: `names two parents "${parsed.value.name}": give each its own name=` });
          return z.NEVER;
        }
        out.push(parsed.value);
      }
      return out;
    },
    encode: (list) => list.map(showParent),
  });
  return { schema, repeatable: true };
}
