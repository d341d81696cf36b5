// How the primary puts numbers into words, for the log and the terminal: "1 domain", "2 domains".
export function plural(count: number, one: string, many = `${one}s`): string {
  return `${count} ${count === 1 ? one : many}`;
}

/** What changed between two lists of names: "+2 −1", or undefined when nothing did. */
export function listChange(before: readonly string[], after: readonly string[]): string | undefined {
  const old = new Set(before);
  const now = new Set(after);
  let added = 0;
  let removed = 0;
  for (const name of now) if (!old.has(name)) added++;
  for (const name of old) if (!now.has(name)) removed++;
  return added || removed ? `+${added} −${removed}` : undefined;
}
