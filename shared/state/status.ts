/** The status an operator or the portal reads: `status/<rg>.json`, merged with agents' reports on read. */
import { z } from 'zod';
import { rejectionSchema } from './rg-state.ts';
import { historySchema } from './history.ts';
import { dashboardLinkSchema } from '../dashboard.ts';

export const findingSchema = z.strictObject({
  code: z.string(),
  severity: z.enum(['error', 'warning', 'info']),
  subject: z.strictObject({ kind: z.enum(['resource-group', 'cluster', 'vm', 'frontend', 'user']), name: z.string() }),
  message: z.string(),
  blocks: z.array(z.string()),
});

export const documentStatusSchema = z.strictObject({
  vm: z.string(),
  roles: z.array(z.string()),
  /** The generation and hash of the document in the store (blocked VMs keep their last one). */
  generation: z.number().int().optional(),
  hash: z.string().optional(),
  /** Until when the stored copy's signature holds (the control plane signs it again long before). */
  expiresAt: z.string().optional(),
  /** Error codes withholding a new document, when blocked. */
  blockedBy: z.array(z.string()).default([]),
});

/** A gateway rollout in flight (shared/state/rollout.ts), as operators read it. */
export const rolloutStatusSchema = z.strictObject({
  /** `waiting`: for the canary to apply `generation`; `halted`: the canary failed it, the others keep their frontends. */
  phase: z.enum(['waiting', 'halted']),
  canary: z.string(),
  /** The canary's generation that carries the new frontends. */
  generation: z.number().int().optional(),
  /** The gateways that keep the frontends they last ran. */
  held: z.array(z.string()),
  startedAt: z.string(),
  /** When the current round began: the canary has had its generation since then. */
  since: z.string(),
  reason: z.string().optional(),
  haltedAt: z.string().optional(),
});

export const rgStatusSchema = z.strictObject({
  resourceGroup: z.string(),
  updatedAt: z.string(),
  /** The reconcile run that wrote it: the run's commit mark (its intent in the state names the same run). */
  run: z.string().optional(),
  clusterProvisioned: z.boolean(),
  findings: z.array(findingSchema),
  documents: z.array(documentStatusSchema),
  rejections: z.array(rejectionSchema),
  pendingKubeconfigRequests: z.array(z.strictObject({ user: z.string(), requestedAt: z.string() })),
  /** The newest kubeconfig issued per user: where the portal reads it and until when it works. */
  kubeconfigs: z.array(z.strictObject({ user: z.string(), location: z.string(), expiresAt: z.string(), issuedAt: z.string() })).default([]),
  /** The Kubernetes dashboard's link (issue 20's shape), null when the group has none; absent in statuses written before it. */
  dashboard: dashboardLinkSchema.nullable().default(null),
  /** The gateway rollout in flight, null when every gateway runs the group's frontends. */
  rollout: rolloutStatusSchema.nullable().default(null),
  /** The audit trail (served by the history route, left out of the status view). */
  history: historySchema.default({}),
});

export type RgStatus = z.output<typeof rgStatusSchema>;
export type RolloutStatus = z.output<typeof rolloutStatusSchema>;
