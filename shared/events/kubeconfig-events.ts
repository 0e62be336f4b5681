/**
 * Kubeconfigs issued on a cluster's server: the server's agent posts each one to
 * `postClusterKubeconfig` (signed with the cluster's webhook key). The control
 * plane keeps the kubeconfig where only the portal reads it, and queues a `kubeconfig.issued`
 * event without the secret: the state records where it is and until when.
 */
import { z } from 'zod';
import { kubeconfigKeyPattern } from '../contract/store-layout.ts';
import { userSchema } from '../schema/user.ts';
import { eventId } from './portal-events.ts';
import { queuedEventSchema } from './queued-event.ts';

export const MAX_KUBECONFIG_BYTES = 64 * 1024;

export const kubeconfigDeliverySchema = z.strictObject({
  user: userSchema.shape.name,
  /** The kubeconfig as `kubectl` reads it; a secret (it carries a token). */
  kubeconfig: z.string().min(1, 'must not be empty').max(MAX_KUBECONFIG_BYTES, `must be at most ${MAX_KUBECONFIG_BYTES} bytes`),
  expiresAt: z.iso.datetime({ offset: true, error: 'must be an RFC 3339 time' }),
  /** The `kubeconfig.requested` events this answers (none when issued on the server's CLI). */
  requestIds: z.array(eventId).max(100).default([]),
});

export const kubeconfigIssuedEventSchema = queuedEventSchema(
  'kubeconfig.issued',
  z.strictObject({
    user: userSchema.shape.name,
    expiresAt: z.iso.datetime({ offset: true }),
    /** The store key it was written to: under `kubeconfigs/` and nowhere else (the reconciler deletes these). */
    location: z.string().regex(kubeconfigKeyPattern, 'must be a key under kubeconfigs/<rg>/<user>/'),
    requestIds: z.array(eventId).max(100).default([]),
  }),
);

export type KubeconfigDelivery = z.output<typeof kubeconfigDeliverySchema>;
export type KubeconfigIssuedEvent = z.output<typeof kubeconfigIssuedEventSchema>;
