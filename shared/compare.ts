/**
 * Text order by UTF-16 code units, the same on every machine. `localeCompare` depends on the
 * process locale, and a document whose order changes with it would be rewritten (and a
 * gateway reloaded) for nothing.
 */
export function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
