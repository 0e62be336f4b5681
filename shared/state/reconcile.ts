/**
 * One reconcile of a resource group: fold a batch of events into the state, compute every
 * VM's document, and say which documents to write (only those whose hash changed) and
 * delete, what state and status to store. Pure: the shell does the I/O in the order
 * intent (the new state, marked `pendingWrite` with the run) → documents → status. The status,
 * written last and naming the same run, is the commit mark: the next run finds the intent
 * finished (shared/state/rg-state.ts `settledState`) and no second state write is needed.
 *
 * Why the intent: a batch killed after some writes is not always run again as the same batch
 * (its events are redelivered among others, now duplicates), so "run it again" cannot be what
 * repairs it. A state found with `pendingWrite` says the store may be anywhere between two
 * states; that run reads what is stored (`context.stored`) and makes `desired/<rg>/` exactly
 * this state's documents: every one written again, every other object deleted. Generations
 * stay monotonic because the intent records the generations before any document carries them.
 */
import { DOCUMENT_VALIDITY_MS, type UnsignedDocument } from '../contract/document-envelope.ts';
import { copiesToResign } from './resigning.ts';
import { type ClusterAuth, clusterKeyFingerprint } from '../contract/cluster-auth.ts';
import { storeKeys } from '../contract/store-layout.ts';
import type { AcmeSettings } from '../certificates/acme-settings.ts';
import type { ControlPlaneEvent } from '../events/control-plane-event.ts';
import { computeDesiredState, type DesiredState } from '../desired-state.ts';
import type { VmLayouts } from '../layout.ts';
import { type Outcome, type ReducerContext, reduce } from './reducer.ts';
import { effectiveDescription, type RgState } from './rg-state.ts';
import { DEFAULT_HISTORY_DEPTH, recordHistory } from './history.ts';
import type { RgStatus } from './status.ts';
import { dashboardLink } from '../dashboard.ts';
import { rolloutStatus, stagedDesiredState, stepRollout } from './rollout.ts';
import { routeUrl } from '../contract/routes.ts';

const canaryReportUrl = (apiUrl: string, rg: string, vm: string) => routeUrl(apiUrl, 'postCanaryReport', { rg, vm });

export interface ReconcileContext extends ReducerContext {
  /** The control plane's API URL as the clusters reach it (their servers call it back). */
  readonly apiUrl?: string;
  readonly layout?: VmLayouts;
  /** ISO time of this run, for the status only (documents never carry a clock). */
  readonly now: string;
  /**
   * What `desired/<rg>/` really holds (vm → envelope fields), read by the shell when the loaded
   * state has `pendingWrite`: a repair needs it, an ordinary run does not read the store.
   */
  readonly stored?: Readonly<Record<string, StoredDocumentRecord>>;
  /** This run's id (the shell makes one): its intent and its status carry it (default: `now`). */
  readonly runId?: string;
  /** Generations kept per VM in the audit trail (default DEFAULT_HISTORY_DEPTH). */
  readonly historyDepth?: number;
  /** The signer's epoch (`signingEpoch`): copies signed in another one are signed again. */
  readonly signingEpoch?: string;
  /** Where VMs order their TLS certificates (default: Let's Encrypt production). */
  readonly acme?: AcmeSettings;
}

/** A stored document as the store holds it: its content hash, generation and expiry. */
export type StoredDocumentRecord = RgState['documents'][string];

export interface ReconcilePlan {
  /** The state to store when the run touches nothing but state and status (never with `pendingWrite`). */
  readonly state: RgState;
  /** The same state marked `pendingWrite` (with the run), stored before any other write; finished by the status. */
  readonly intent: RgState;
  /** The previous run did not finish: this one rewrites the whole group. */
  readonly repair: boolean;
  /** Documents to sign and store: new content under a new generation, or the same one re-signed. */
  readonly writes: readonly UnsignedDocument[];
  readonly deletes: readonly string[];
  /** The cluster's auth object to write (its key changed or was never published), or `null` to delete it. */
  readonly clusterAuth?: ClusterAuth | null;
  /** Stored kubeconfigs (store keys) that must go: replaced, of users who lost access, or refused. */
  readonly kubeconfigDeletes: readonly string[];
  readonly status: RgStatus;
  readonly outcomes: ReadonlyArray<{ readonly eventId: string; readonly outcome: Outcome }>;
  readonly desired: DesiredState;
  /** Every event was a duplicate: nothing at all needs writing, not even the state. */
  readonly unchanged: boolean;
}

export function reconcile(initial: RgState, events: readonly ControlPlaneEvent[], context: ReconcileContext): ReconcilePlan {
  const repair = initial.pendingWrite !== undefined;
  const stored = context.stored ?? {};
  if (repair && context.stored === undefined) throw new Error(`the previous run of ${initial.description.name} did not finish: its stored documents must be read to repair it`);
  let state = initial;
  const outcomes: Array<{ eventId: string; outcome: Outcome }> = [];
  for (const event of events) {
    const reduction = reduce(state, event, context);
    state = reduction.state;
    outcomes.push({ eventId: event.id, outcome: reduction.outcome });
  }

  const name = state.description.name;
  const desiredOptions = {
    previousSlots: state.slots,
    ...(context.layout ? { layout: context.layout } : {}),
    ...(context.apiUrl ? { apiUrl: context.apiUrl } : {}),
    ...(context.acme ? { acme: context.acme } : {}),
    kubeconfigRequests: state.kubeconfigRequests,
  };
  const computed = computeDesiredState(effectiveDescription(state), desiredOptions);
  const step = stepRollout({
    rollout: state.rollout,
    // A canary reports to the API: without its URL (`ringmaster plan`) there is no one to wait for.
    policy: context.apiUrl ? (state.description.cluster?.gatewayRollout ?? 'canary') : 'all-at-once',
    frontendsBefore: initial.description.frontends,
    frontendsNow: state.description.frontends,
    gateways: computed.documents.filter((d) => d.roles.includes('webgateway')).map((d) => d.vm),
    published: new Set(Object.keys(state.documents)),
    now: context.now,
  });
  const desired = step.rollout && context.apiUrl ? stagedDesiredState(computed, step.rollout, step.held, effectiveDescription(state), desiredOptions, canaryReportUrl(context.apiUrl, name, step.rollout.canary)) : computed;

  const writes: UnsignedDocument[] = [];
  const documents: RgState['documents'] = {};
  const now = Date.parse(context.now);
  const expiresAt = new Date(now + DOCUMENT_VALIDITY_MS).toISOString();
  // A copy signed more than a day ago (or in another signing epoch) is signed again, same content
  // and generation, a share of them per run: an agent never meets an expired document while the
  // control plane runs, and no run signs a whole large group at once.
  const sameContent = desired.documents.flatMap((document) => {
    const previous = state.documents[document.vm];
    return previous?.hash === document.hash ? [{ vm: document.vm, expiresAt: previous.expiresAt, epoch: previous.epoch }] : [];
  });
  const resign = copiesToResign(sameContent, desired.documents.length, now, context.signingEpoch);
  for (const document of desired.documents) {
    const previous = state.documents[document.vm];
    if (!repair && previous?.hash === document.hash && !resign.has(document.vm)) {
      documents[document.vm] = previous;
    } else {
      // Never a generation lower than one stored: an agent that applied it would refuse ours.
      const onStore = stored[document.vm];
      const same = previous?.hash === document.hash && (onStore === undefined || onStore.generation <= previous.generation);
      const generation = same && previous ? previous.generation : Math.max(previous?.generation ?? 0, onStore?.generation ?? 0) + 1;
      writes.push({ ...document, generation, expiresAt });
      documents[document.vm] = { hash: document.hash, generation, expiresAt, ...(context.signingEpoch ? { epoch: context.signingEpoch } : {}) };
    }
  }
  const present = new Set(state.description.vms.map((vm) => vm.name));
  for (const blocked of desired.blocked) {
    // A blocked VM keeps its last document: after a crash, whichever one is really stored.
    const previous = repair ? stored[blocked.vm] : state.documents[blocked.vm];
    if (previous) documents[blocked.vm] = previous;
  }
  const deletes = [...new Set([...Object.keys(state.documents).filter((vm) => !present.has(vm)), ...Object.keys(stored).filter((vm) => documents[vm] === undefined)])].sort();

  // The agent chosen for the drain is remembered, so a later request can never take its place.
  const draining = new Set(desired.documents.flatMap((d) => d.kubernetes?.drainNodes ?? []));
  if ([...draining].some((name) => state.description.vms.some((vm) => vm.name === name && !vm.maintenance.draining))) {
    state = {
      ...state,
      description: { ...state.description, vms: state.description.vms.map((vm) => (draining.has(vm.name) ? { ...vm, maintenance: { ...vm.maintenance, draining: true } } : vm)) },
    };
  }
  const assignedRoles = { ...state.assignedRoles };
  for (const assignment of desired.assignments) assignedRoles[assignment.vm] = assignment.role;
  const pending = state.kubeconfigRequests;

  const slots = Object.fromEntries(Object.entries(desired.slots).map(([frontend, table]) => [frontend, [...table]]));
  // The cluster function reads only this object: published whenever the state's key differs from it.
  const clusterKey = state.description.secrets.webhookKey;
  const clusterAuthPublished = clusterKeyFingerprint(clusterKey);
  const clusterAuth = clusterAuthPublished === state.clusterAuthPublished && !repair ? undefined : clusterKey ? { resourceGroup: name, key: clusterKey } : null;
  const { pendingWrite: _unfinished, ...settled } = state;
  const byId = new Map(events.map((event) => [event.id, event]));
  const history = recordHistory(state.history, {
    written: writes.map(({ vm, generation, hash }) => ({ vm, generation, hash })),
    deleted: deletes,
    present,
    events: outcomes.filter((o) => o.outcome.kind === 'applied').map(({ eventId }) => ({ id: eventId, type: byId.get(eventId)!.type, occurredAt: byId.get(eventId)!.occurredAt })),
    at: context.now,
    repair,
    depth: context.historyDepth ?? DEFAULT_HISTORY_DEPTH,
  });
  const { rollout: _previousRollout, ...withoutRollout } = settled;
  const rollout = step.rollout && step.newRound ? { ...step.rollout, generation: documents[step.rollout.canary]!.generation } : step.rollout;
  const next: RgState = { ...withoutRollout, documents, assignedRoles, slots, clusterAuthPublished, history, ...(rollout ? { rollout } : {}) };
  const blockedBy = new Map(desired.blocked.map((b) => [b.vm, b.reasons]));
  const roles = new Map(effectiveDescription(next).vms.map((vm) => [vm.name, vm.roles]));
  const status: RgStatus = {
    resourceGroup: name,
    updatedAt: context.now,
    run: context.runId ?? context.now,
    clusterProvisioned: next.description.cluster !== undefined,
    findings: desired.findings.map((f) => ({ ...f, blocks: [...f.blocks] })),
    documents: [...present].sort().map((vm) => ({
      vm,
      roles: roles.get(vm) ?? [],
      // What the stored copy is (its signing epoch is the state's own bookkeeping).
      ...(documents[vm] ? { generation: documents[vm].generation, hash: documents[vm].hash, ...(documents[vm].expiresAt ? { expiresAt: documents[vm].expiresAt } : {}) } : {}),
      blockedBy: [...(blockedBy.get(vm) ?? [])],
    })),
    rejections: next.rejections,
    pendingKubeconfigRequests: pending.map(({ user, requestedAt }) => ({ user, requestedAt })),
    kubeconfigs: Object.entries(next.kubeconfigs).map(([user, issued]) => ({ user, ...issued })),
    dashboard: dashboardLink(effectiveDescription(next)),
    rollout: rollout ? rolloutStatus(rollout, step.held) : null,
    history,
  };
  // Every kubeconfig this run knew of (recorded before, or delivered now) that the new state does
  // not point at is deleted: replaced, revoked, refused, or a late delivery older than the one kept.
  const kept = new Set(Object.values(next.kubeconfigs).map((k) => k.location));
  const known = [
    ...Object.values(initial.kubeconfigs).map((k) => k.location),
    ...(initial.pendingWrite?.kubeconfigDeletes ?? []),
    ...events.flatMap((event) => (event.type === 'kubeconfig.issued' ? [event.payload.location] : [])),
  ];
  const ownPrefix = storeKeys.kubeconfigsOf(name);
  const kubeconfigDeletes = [...new Set(known.filter((location) => !kept.has(location) && location.startsWith(ownPrefix)))].sort();
  const unchanged =
    !repair && outcomes.every((o) => o.outcome.kind === 'duplicate' || o.outcome.kind === 'refresh') && writes.length === 0 && deletes.length === 0 && kubeconfigDeletes.length === 0 && clusterAuth === undefined;
  const intent: RgState = { ...next, pendingWrite: { since: context.now, run: context.runId ?? context.now, kubeconfigDeletes } };
  return { state: next, intent, repair, writes, deletes, kubeconfigDeletes, status, outcomes, desired, unchanged, ...(clusterAuth === undefined ? {} : { clusterAuth }) };
}
