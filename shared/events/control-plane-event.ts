/** Everything that travels through the queue: portal events, the clusters' endpoint changes, issued kubeconfigs and CA hashes, canary gateways' reports, the control plane's refreshes. */
import { z } from 'zod';
import { fieldErrors, type FieldError } from '../schema/errors.ts';
import { clusterCaObservedEventSchema } from './cluster-ca-events.ts';
import { endpointsChangedEventSchema } from './endpoint-events.ts';
import { kubeconfigIssuedEventSchema } from './kubeconfig-events.ts';
import { refreshEventSchema } from './refresh-events.ts';
import { canaryReportedEventSchema } from './rollout-events.ts';
import { MAX_EVENTS_PER_REQUEST, portalEventSchema, type PortalEvent } from './portal-events.ts';

export const controlPlaneEventSchema = z.discriminatedUnion('type', [portalEventSchema, endpointsChangedEventSchema, kubeconfigIssuedEventSchema, clusterCaObservedEventSchema, canaryReportedEventSchema, refreshEventSchema]);
export type ControlPlaneEvent = z.output<typeof controlPlaneEventSchema>;

export interface EventError extends FieldError {
  /** Index of the event in the request, and its id when it has a usable one. */
  readonly index: number;
  readonly id?: string;
}

/**
 * Parses `postEvents`: one event or an array. Each event is checked on its own so every
 * bad one is named; the batch is all-or-nothing.
 */
export function parsePortalEvents(body: unknown): { events: PortalEvent[]; errors: [] } | { events: []; errors: EventError[] } {
  const list = Array.isArray(body) ? body : [body];
  if (list.length === 0) return { events: [], errors: [{ index: 0, field: '', reason: 'must hold at least one event' }] };
  if (list.length > MAX_EVENTS_PER_REQUEST) return { events: [], errors: [{ index: 0, field: '', reason: `must hold at most ${MAX_EVENTS_PER_REQUEST} events` }] };
  const events: PortalEvent[] = [];
  const errors: EventError[] = [];
  const seen = new Map<string, number>();
  list.forEach((item, index) => {
    const prefix = Array.isArray(body) ? `[${index}]` : '';
    const result = portalEventSchema.safeParse(item);
    const rawId = typeof (item as { id?: unknown } | null)?.id === 'string' ? (item as { id: string }).id : undefined;
    if (!result.success) {
      for (const error of fieldErrors(result.error)) {
        errors.push({ index, ...(rawId ? { id: rawId } : {}), field: `${prefix}${error.field && prefix ? '.' : ''}${error.field}`, reason: error.reason });
      }
      return;
    }
    const first = seen.get(result.data.id);
    if (first !== undefined) errors.push({ index, id: result.data.id, field: `${prefix}.id`, reason: `repeats the id of event [${first}]` });
    seen.set(result.data.id, index);
    events.push(result.data);
  });
  return errors.length > 0 ? { events: [], errors } : { events, errors: [] };
}
