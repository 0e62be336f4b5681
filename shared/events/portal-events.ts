/**
 * Portal events: VM lifecycle, users, frontends, the cluster itself. Each carries an `id`
 * (the queue's deduplication id, so at most 128 characters of SQS's alphabet), its resource
 * group, when it happened, and a payload checked as strictly as the description it changes.
 */
import { z } from 'zod';
import { clusterSchema } from '../schema/cluster.ts';
import { frontendName, frontendSchema } from '../schema/frontend.ts';
import { dnsLabel } from '../schema/primitives.ts';
import { defaultServiceNameProblem } from '../schema/resource-group.ts';
import { userSchema } from '../schema/user.ts';
import { vmInputSchema } from '../schema/vm.ts';

export const eventId = z
  .string()
  .min(1, 'must not be empty')
  .max(128, 'must be at most 128 characters')
  .regex(/^[A-Za-z0-9!"#$%&'()*+,\-./:;<=>?@[\\\]^_`{|}~]+$/, 'must be letters, digits and punctuation (no spaces)');

const envelope = {
  id: eventId,
  resourceGroup: dnsLabel,
  occurredAt: z.iso.datetime({ offset: true, error: 'must be an ISO 8601 date-time such as "2026-11-24T10:00:00Z"' }),
};

const named = z.strictObject({ name: dnsLabel });

/** One schema per event type; the list of types is read off them, never written twice. */
const portalEventVariants = [
    z.strictObject({ ...envelope, type: z.literal('cluster.provisioned'), payload: z.strictObject({ settings: clusterSchema.default(() => clusterSchema.parse({})) }) }),
    z.strictObject({ ...envelope, type: z.literal('cluster.decommissioned'), payload: z.strictObject({}).default({}) }),
    z.strictObject({ ...envelope, type: z.literal('vm.upserted'), payload: z.strictObject({ vm: vmInputSchema }) }),
    z.strictObject({ ...envelope, type: z.literal('vm.deleted'), payload: named }),
    z.strictObject({ ...envelope, type: z.literal('vm.maintenance.requested'), payload: named }),
    z.strictObject({ ...envelope, type: z.literal('vm.maintenance.finished'), payload: named }),
    z.strictObject({ ...envelope, type: z.literal('user.upserted'), payload: z.strictObject({ user: userSchema }) }),
    z.strictObject({ ...envelope, type: z.literal('user.deleted'), payload: z.strictObject({ name: userSchema.shape.name }) }),
    z.strictObject({
      ...envelope,
      type: z.literal('frontend.upserted'),
      payload: z.strictObject({ name: frontendName, frontend: frontendSchema }).superRefine((payload, ctx) => {
        const problem = defaultServiceNameProblem(payload.name, payload.frontend.serviceName);
        if (problem) ctx.addIssue({ code: 'custom', path: ['frontend', 'serviceName'], message: problem });
      }),
    }),
    z.strictObject({ ...envelope, type: z.literal('frontend.deleted'), payload: z.strictObject({ name: frontendName }) }),
    z.strictObject({ ...envelope, type: z.literal('kubeconfig.requested'), payload: z.strictObject({ user: userSchema.shape.name }) }),
] as const;

export const PORTAL_EVENT_TYPES: readonly string[] = portalEventVariants.map((variant) => variant.shape.type.value);

export const portalEventSchema = z.discriminatedUnion('type', portalEventVariants, {
  error: (issue) => (issue.code === 'invalid_union' ? `must be one of the event types: ${PORTAL_EVENT_TYPES.join(', ')}` : undefined),
});

export type PortalEvent = z.output<typeof portalEventSchema>;
export type PortalEventInput = z.input<typeof portalEventSchema>;

/** `postEvents` takes one event or a batch of at most this many. */
export const MAX_EVENTS_PER_REQUEST = 100;
