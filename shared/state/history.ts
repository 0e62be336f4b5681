/**
 * The audit trail of a resource group: for each VM, which events produced which generation of
 * its document (and when it was deleted), newest first, bounded to the last `depth`
 * generations per VM so it never grows for ever. Kept in the state, published with the status;
 * what each agent reported for a generation is joined on read (shared/contract/history-view.ts).
 */
import { z } from 'zod';

/** Generations kept per VM unless configured otherwise. */
export const DEFAULT_HISTORY_DEPTH = 10;
/** Events named per entry: a big batch is summarised by a count beyond them. */
export const HISTORY_EVENTS_PER_ENTRY = 20;

export const historyEventSchema = z.strictObject({ id: z.string(), type: z.string(), occurredAt: z.string() });

export const historyEntrySchema = z.strictObject({
  /** The generation stored, or null when the document was deleted (the VM left the group). */
  generation: z.number().int().min(1).nullable(),
  hash: z.string().nullable(),
  /** When the reconciler stored it. */
  at: z.string(),
  /** The events of the batch that produced it (the applied ones; duplicates and refusals change nothing). */
  events: z.array(historyEventSchema),
  /** Events of that batch beyond those named. */
  moreEvents: z.number().int().min(0).default(0),
  /** Written by the repair after an unfinished run (shared/state/reconcile.ts), not by new events alone. */
  repair: z.boolean().default(false),
});

/** vm → entries, newest first. */
export const historySchema = z.record(z.string(), z.array(historyEntrySchema));

export type HistoryEvent = z.output<typeof historyEventSchema>;
export type HistoryEntry = z.output<typeof historyEntrySchema>;
export type History = z.output<typeof historySchema>;

export interface HistoryChange {
  /** Documents stored by this run (a copy signed again under the same generation is no new entry). */
  readonly written: ReadonlyArray<{ readonly vm: string; readonly generation: number; readonly hash: string }>;
  readonly deleted: readonly string[];
  /** VMs of the group after this run: the history of any other VM is dropped once its deletion was recorded. */
  readonly present: ReadonlySet<string>;
  readonly events: readonly HistoryEvent[];
  readonly at: string;
  readonly repair: boolean;
  readonly depth: number;
}

/** The history after one run: a new entry per new generation or deletion, each VM cut to `depth`. */
export function recordHistory(previous: History, change: HistoryChange): History {
  const named = change.events.slice(0, HISTORY_EVENTS_PER_ENTRY).map((event) => ({ ...event }));
  const entry = (generation: number | null, hash: string | null): HistoryEntry => ({ generation, hash, at: change.at, events: named, moreEvents: change.events.length - named.length, repair: change.repair });
  const next: History = {};
  for (const [vm, entries] of Object.entries(previous)) if (change.present.has(vm)) next[vm] = entries;
  for (const { vm, generation, hash } of change.written) {
    const entries = next[vm] ?? [];
    if (entries[0]?.generation === generation && entries[0].hash === hash) continue;
    next[vm] = [entry(generation, hash), ...entries];
  }
  for (const vm of change.deleted) next[vm] = [entry(null, null), ...(previous[vm] ?? [])];
  for (const vm of Object.keys(next)) next[vm] = next[vm]!.slice(0, Math.max(1, change.depth));
  return next;
}
