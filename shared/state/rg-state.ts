/**
 * The folded state of one resource group, as the reconciler keeps it in `state/<rg>.json`:
 * the description the desired state is computed from, plus the bookkeeping that makes
 * applying events idempotent (event ids, entity and slice versions) and documents stable
 * (slot tables, document hashes and generations). Read back through this schema: a stored
 * document is input from outside like any other.
 */
import { z } from 'zod';
import { frontendsSchema, resourceGroupSchema, type ResourceGroup } from '../schema/resource-group.ts';
import { historySchema } from './history.ts';

export const STATE_SCHEMA_VERSION = 1;
/** How many recent event ids are remembered per RG (the queue deduplicates within 5 minutes too). */
export const REMEMBERED_EVENT_IDS = 1000;
export const REMEMBERED_REJECTIONS = 50;
/** Kubeconfig requests waiting for the server's agent; older ones are dropped beyond this. */
export const PENDING_KUBECONFIG_REQUESTS = 100;

export const rejectionSchema = z.strictObject({
  eventId: z.string(),
  type: z.string(),
  occurredAt: z.string(),
  reason: z.string(),
});

export const kubeconfigRequestSchema = z.strictObject({
  eventId: z.string(),
  user: z.string(),
  requestedAt: z.string(),
});

export const issuedKubeconfigSchema = z.strictObject({
  location: z.string(),
  expiresAt: z.string(),
  issuedAt: z.string(),
});

/**
 * A gateway rollout in flight (shared/state/rollout.ts): the canary has the group's frontends,
 * the other gateways keep `stableFrontends` (the set they last ran) until the canary reports
 * it applied the round's generation.
 */
export const rolloutSchema = z.strictObject({
  canary: z.string(),
  stableFrontends: frontendsSchema,
  /** The frontends this round gives the canary (their canonical hash): another set starts a new round. */
  round: z.string(),
  startedAt: z.string(),
  /** When this round began (the rollout's first, or the change that resumed it). */
  roundStartedAt: z.string().optional(),
  /** The canary's first generation carrying the round's frontends; a report for it or a later one settles the round. */
  generation: z.number().int().min(1).optional(),
  /** The canary's newest report, as the reducer folded it. */
  report: z.strictObject({ generation: z.number().int().min(1), outcome: z.enum(['applied', 'failed']), reason: z.string().optional(), at: z.string() }).optional(),
  /** The canary failed the round's generation: nothing more goes out until the frontends change again. */
  halted: z.strictObject({ generation: z.number().int().min(1), reason: z.string(), at: z.string() }).optional(),
});

export const rgStateSchema = z.strictObject({
  schemaVersion: z.literal(STATE_SCHEMA_VERSION),
  description: resourceGroupSchema,
  /** Roles given by automatic assignment, kept so they never change afterwards. */
  assignedRoles: z.record(z.string(), z.string()).default({}),
  /** `vm/<name>`, `user/<name>`, `frontend/<name>`, `cluster` → `occurredAt` of the last event applied (deletions too). */
  entityVersions: z.record(z.string(), z.string()).default({}),
  /** `<namespace>/<slice>` → last resourceVersion seen, and whether that was a deletion. */
  sliceVersions: z.record(z.string(), z.strictObject({ resourceVersion: z.string(), deleted: z.boolean() })).default({}),
  appliedEventIds: z.array(z.string()).default([]),
  /** When the newest full resync of endpoints happened: an older one (a replay) must not drop newer slices. */
  endpointsResyncedAt: z.string().optional(),
  rejections: z.array(rejectionSchema).default([]),
  kubeconfigRequests: z.array(kubeconfigRequestSchema).default([]),
  /** user → the newest kubeconfig issued for them: where the portal finds it and until when it works. */
  kubeconfigs: z.record(z.string(), issuedKubeconfigSchema).default({}),
  slots: z.record(z.string(), z.array(z.string().nullable())).default({}),
  /** Fingerprint of the cluster key last published to `cluster-auth/<rg>.json` ('none' when removed). */
  clusterAuthPublished: z.string().optional(),
  /** vm → the stored document: its content hash, generation, and until when its signature holds. */
  documents: z.record(z.string(), z.strictObject({ hash: z.string(), generation: z.number().int().min(1), expiresAt: z.string().optional(), /** The signing epoch of the stored copy (shared/state/resigning.ts). */ epoch: z.string().optional() })).default({}),
  rollout: rolloutSchema.optional(),
  /** The audit trail: which events produced which generation of each VM's document (bounded). */
  history: historySchema.default({}),
  /**
   * The intent of an unfinished run: written with the new state *before* any document, cleared
   * once every write landed. Found on load, it says the store may hold anything between the old
   * and this state (documents written or not, deleted or not), so the next run repairs the
   * whole group (shared/state/reconcile.ts) instead of writing only what its events changed.
   */
  pendingWrite: z
    .strictObject({
      since: z.string(),
      /**
       * The run that wrote this intent. It is finished once the status (written last) carries the
       * same run: then nothing needs repairing, and no second state write was ever needed.
       */
      run: z.string().optional(),
      /** Stored kubeconfigs the unfinished run meant to delete (they cannot be found by listing). */
      kubeconfigDeletes: z.array(z.string()),
    })
    .optional(),
});

export type RgState = z.output<typeof rgStateSchema>;
export type Rejection = z.output<typeof rejectionSchema>;
export type Rollout = z.output<typeof rolloutSchema>;

/**
 * The state as the next run starts from: an intent whose run the stored status names finished
 * (every write before the status landed) is a finished state; any other intent is unfinished and
 * its run is repaired.
 */
export function settledState(state: RgState, statusRun: string | undefined): RgState {
  if (!state.pendingWrite?.run || state.pendingWrite.run !== statusRun) return state;
  const { pendingWrite: _finished, ...settled } = state;
  return settled;
}

export function emptyState(resourceGroup: string): RgState {
  return rgStateSchema.parse({ schemaVersion: STATE_SCHEMA_VERSION, description: { name: resourceGroup } });
}

/** The description with persisted automatic roles applied: what the desired state is computed from. */
export function effectiveDescription(state: RgState): ResourceGroup {
  const assigned = state.assignedRoles;
  if (Object.keys(assigned).length === 0) return state.description;
  return {
    ...state.description,
    vms: state.description.vms.map((vm) => (vm.roles.length === 0 && assigned[vm.name] ? { ...vm, roles: [assigned[vm.name]!] } : vm)),
  };
}
