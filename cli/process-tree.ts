/**
 * The processes below some others, read from /proc (Linux): what `ringmaster demo` checks is
 * gone after it stopped its agents. A process group alone is not enough: PostgreSQL's
 * background processes start sessions of their own.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** pid → parent pid of every process now. */
function parents(): Map<number, number> {
  const map = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // The command name (2nd field) is in parentheses and may hold spaces: fields after its ")" are fixed.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      map.set(Number(entry), ppid);
    } catch {
      // Gone while we looked.
    }
  }
  return map;
}

/** Every process below `roots` (children, their children, …), the roots not included. */
export function descendants(roots: readonly number[]): number[] {
  const tree = parents();
  const found = new Set<number>();
  let frontier = new Set(roots);
  while (frontier.size > 0) {
    const next = new Set<number>();
    for (const [pid, ppid] of tree) if (frontier.has(ppid) && !found.has(pid)) next.add(pid);
    for (const pid of next) found.add(pid);
    frontier = next;
  }
  return [...found];
}

/** Whether `pid` still runs (a zombie does not: it only waits for its parent to read its status). */
export function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}
