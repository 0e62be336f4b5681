/**
 * What a cluster's endpoint watcher sends: EndpointSlice watch events in the shape the
 * Kubernetes API returns them (`{type, object}`, `discovery.k8s.io/v1`), plus the Service
 * ports it knows, so frontends can follow a changed `targetPort`.
 */
import { z } from 'zod';
import { endpointSliceSchema, servicePortSchema } from '../schema/endpoints.ts';
import { dnsLabel, serviceName } from '../schema/primitives.ts';
import { eventId } from './portal-events.ts';
import { queuedEventSchema } from './queued-event.ts';

export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

/** An EndpointSlice as the API returns it: it must say its namespace and its Service. */
export const endpointSliceObjectSchema = endpointSliceSchema.extend({
  metadata: z.object({
    name: endpointSliceSchema.shape.metadata.shape.name,
    namespace: dnsLabel,
    resourceVersion: z.string().regex(/^\d{1,20}$/, 'must be the resourceVersion the API server returned'),
    labels: z.object({ [SERVICE_NAME_LABEL]: serviceName }, { error: `must carry the label ${SERVICE_NAME_LABEL}` }),
  }),
});

export const endpointChangeSchema = z.strictObject({
  type: z.enum(['ADDED', 'MODIFIED', 'DELETED'], { error: 'must be ADDED, MODIFIED or DELETED' }),
  object: endpointSliceObjectSchema,
});

export const serviceObservationSchema = z.strictObject({
  namespace: dnsLabel,
  name: serviceName,
  ports: z.array(servicePortSchema).max(100),
});

export const MAX_CHANGES_PER_WEBHOOK = 1000;

export const endpointWebhookBodySchema = z.strictObject({
  changes: z.array(endpointChangeSchema).max(MAX_CHANGES_PER_WEBHOOK, `must hold at most ${MAX_CHANGES_PER_WEBHOOK} changes`).default([]),
  services: z.array(serviceObservationSchema).max(1000).default([]),
  /** After a restart or a watch gap: these changes are everything; slices not named are gone. */
  resync: z.boolean().default(false),
  /**
   * Unique per call: the same changes sent again later (a resync repeating an earlier one in
   * the same second) are a new call, not a replay. A replay of the same bytes is still caught.
   */
  nonce: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1 to 64 letters, digits, "-" or "_"').optional(),
});

/** The queued form of one webhook call. */
export const endpointsChangedEventSchema = queuedEventSchema('endpoints.changed', endpointWebhookBodySchema);

export type EndpointChange = z.output<typeof endpointChangeSchema>;
export type EndpointWebhookBody = z.output<typeof endpointWebhookBodySchema>;
export type EndpointsChangedEvent = z.output<typeof endpointsChangedEventSchema>;
