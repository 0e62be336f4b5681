/**
 * The `refresh` function, on a timer: queues a `documents.refresh` event for every resource
 * group with a state, so each group's reconciler signs again the copies signed more than a
 * day ago (documents hold for a week). Through the queue, like every change: one group's
 * writes stay one at a time and in order.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { stateGroup, storePrefixes } from '../../shared/contract/store-layout.ts';
import { refreshEvent } from '../../shared/events/refresh-events.ts';
import type { EventQueue, ObjectStore } from '../../shared/ports.ts';

export interface RefreshDependencies {
  readonly store: ObjectStore;
  readonly queue: EventQueue;
  readonly logger: Logger;
  readonly now?: () => Date;
}

export function createRefreshHandler(deps: RefreshDependencies) {
  /** `occasion`: why, when not the timer (it names the events, so the hour's refresh does not swallow them). */
  return async (occasion?: string): Promise<{ refreshed: number }> => {
    const now = deps.now?.() ?? new Date();
    const groups = (await deps.store.list(storePrefixes.state)).flatMap((key) => stateGroup(key) ?? []);
    await deps.queue.send(groups.map((rg) => refreshEvent(rg, now, occasion)).map((event) => ({ id: event.id, group: event.resourceGroup, body: JSON.stringify(event) })));
    deps.logger.info('refresh queued', { groups: groups.length });
    return { refreshed: groups.length };
  };
}
