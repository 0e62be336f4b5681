/**
 * `cluster-auth/<rg>.json`: what the cluster function needs to check a cluster's signed calls,
 * and nothing more. The reconciler writes it from the state whenever the key changes; the
 * function, the one route open without IAM, never reads the state (cluster tokens, datastore
 * passwords) to find it.
 */
import { z } from 'zod';
import { sha256Hex } from '../hash.ts';
import { dnsLabel } from '../schema/primitives.ts';

export const clusterAuthSchema = z.strictObject({
  resourceGroup: dnsLabel,
  /** The cluster's `secrets.webhookKey`. */
  key: z.string().min(16),
});

export type ClusterAuth = z.output<typeof clusterAuthSchema>;

/** What the state records of the published key: a fingerprint, never the key again. */
export const clusterKeyFingerprint = (key: string | undefined): string => (key ? sha256Hex(`ringmaster/cluster-auth/${key}`).slice(0, 16) : 'none');
