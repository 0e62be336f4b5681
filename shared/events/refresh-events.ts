/**
 * `documents.refresh`: the control plane's own nudge to a resource group, sent on a timer. It
 * changes nothing by itself; the reconcile it causes signs again every stored copy that was
 * signed more than a day ago, so a quiet group's documents never expire.
 */
import { z } from 'zod';
import { queuedEventSchema } from './queued-event.ts';

export const refreshEventSchema = queuedEventSchema('documents.refresh', z.strictObject({}));

export type RefreshEvent = z.output<typeof refreshEventSchema>;

/** One refresh per group and hour: sent twice (two timers, a retry), the queue keeps one. */
export function refreshEvent(resourceGroup: string, now: Date): RefreshEvent {
  const hour = now.toISOString().slice(0, 13);
  return { id: `refresh-${resourceGroup}-${hour}`, type: 'documents.refresh', resourceGroup, occurredAt: now.toISOString(), payload: {} };
}
