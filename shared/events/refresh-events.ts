/**
 * `documents.refresh`: the control plane's own nudge to a resource group, sent on a timer. It
 * changes nothing by itself; the reconcile it causes signs again every stored copy that was
 * signed more than a day ago, so a quiet group's documents never expire.
 */
import { z } from 'zod';
import { queuedEventSchema } from './queued-event.ts';

export const refreshEventSchema = queuedEventSchema('documents.refresh', z.strictObject({}));

export type RefreshEvent = z.output<typeof refreshEventSchema>;

/**
 * One refresh per group and hour: sent twice (two timers, a retry), the queue keeps one. A
 * refresh for an occasion (a new signing epoch: a root added or retired) has its own id, so it
 * is not taken for the hour's.
 */
export function refreshEvent(resourceGroup: string, now: Date, occasion?: string): RefreshEvent {
  const when = occasion ?? now.toISOString().slice(0, 13);
  return { id: `refresh-${resourceGroup}-${when}`, type: 'documents.refresh', resourceGroup, occurredAt: now.toISOString(), payload: {} };
}
