/**
 * Stable backend slots, as HAProxy's Kubernetes ingress controller keeps them: a pod keeps
 * its slot while it lives, new pods take the lowest free slot, and the table grows past
 * `maxExpectedPods` only while more pods exist. Stable slots mean an endpoint change is a
 * runtime-API update of a few servers, never a reload.
 */

/** The pod key in each slot, `null` for a free one. */
export type SlotTable = ReadonlyArray<string | null>;

export function assignSlots(previous: SlotTable | undefined, keys: readonly string[], minimum: number): (string | null)[] {
  const present = new Set(keys);
  const table = (previous ?? []).map((key) => (key !== null && present.has(key) ? key : null));
  const placed = new Set(table.filter((key): key is string => key !== null));
  for (const key of keys) {
    if (placed.has(key)) continue;
    const free = table.indexOf(null);
    if (free === -1) table.push(key);
    else table[free] = key;
    placed.add(key);
  }
  while (table.length < minimum) table.push(null);
  while (table.length > minimum && table[table.length - 1] === null) table.pop();
  return table;
}
