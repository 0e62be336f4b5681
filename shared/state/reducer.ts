/**
 * The reducer: (state, event) → state, pure. Applying an event twice changes nothing (event
 * ids are remembered; every change is an upsert or a delete), and an event older than what
 * was already applied to the same VM, user or frontend is ignored, so a late duplicate can
 * never undo a newer change. EndpointSlices are ordered by their resourceVersion instead.
 * An event that cannot be applied (say, a network change on a running cluster, or another VM
 * as its k3s server) is recorded with its reason and changes nothing else.
 */
import { compareText } from '../compare.ts';
import type { EndpointsChangedEvent } from '../events/endpoint-events.ts';
import type { KubeconfigIssuedEvent } from '../events/kubeconfig-events.ts';
import type { ClusterCaObservedEvent } from '../events/cluster-ca-events.ts';
import { foldCanaryReport } from './rollout.ts';
import { SERVICE_NAME_LABEL } from '../events/endpoint-events.ts';
import type { ControlPlaneEvent } from '../events/control-plane-event.ts';
import type { PortalEvent } from '../events/portal-events.ts';
import { canonicalJson } from '../hash.ts';
import { deriveSecret } from '../secrets.ts';
import type { ResourceGroup } from '../schema/resource-group.ts';
import type { EndpointSlice, ServiceEndpoints } from '../schema/endpoints.ts';
import { SUDO_SRV } from '../schema/user.ts';
import { serverReplacementRefusal } from './server-replacement.ts';
import { PENDING_KUBECONFIG_REQUESTS, REMEMBERED_EVENT_IDS, REMEMBERED_REJECTIONS, type RgState } from './rg-state.ts';

export interface ReducerContext {
  /** The control plane's master key: cluster secrets are derived from it, never stored in events. */
  readonly masterKey: string;
}

/** `refresh`: an event that changes nothing by itself (it asks for stored copies to be signed again). */
export type Outcome = { readonly kind: 'applied' } | { readonly kind: 'duplicate' } | { readonly kind: 'refresh' } | { readonly kind: 'stale'; readonly reason: string } | { readonly kind: 'rejected'; readonly reason: string };

export interface Reduction {
  readonly state: RgState;
  readonly outcome: Outcome;
}

function remember(state: RgState, event: ControlPlaneEvent): RgState {
  const ids = [...state.appliedEventIds, event.id];
  return { ...state, appliedEventIds: ids.length > REMEMBERED_EVENT_IDS ? ids.slice(ids.length - REMEMBERED_EVENT_IDS) : ids };
}

function reject(state: RgState, event: ControlPlaneEvent, reason: string): Reduction {
  const rejections = [...state.rejections, { eventId: event.id, type: event.type, occurredAt: event.occurredAt, reason }].slice(-REMEMBERED_REJECTIONS);
  return { state: remember({ ...state, rejections }, event), outcome: { kind: 'rejected', reason } };
}

/**
 * The thing an event changes, whose last change time makes an older event stale; null for
 * events that change no one thing. Every event type must say which (no `undefined` in the
 * return type: a new type without its case does not compile).
 */
const entityKey = (event: PortalEvent): string | null => {
  switch (event.type) {
    case 'cluster.provisioned':
    case 'cluster.decommissioned':
      return 'cluster';
    case 'vm.upserted':
      return `vm/${event.payload.vm.name}`;
    case 'vm.deleted':
    case 'vm.maintenance.requested':
    case 'vm.maintenance.finished':
      return `vm/${event.payload.name}`;
    case 'user.upserted':
      return `user/${event.payload.user.name}`;
    case 'user.deleted':
      return `user/${event.payload.name}`;
    case 'frontend.upserted':
    case 'frontend.deleted':
      return `frontend/${event.payload.name}`;
    case 'kubeconfig.requested':
      return null;
  }
};

const time = (iso: string) => Date.parse(iso);

export function reduce(state: RgState, event: ControlPlaneEvent, context: ReducerContext): Reduction {
  if (event.resourceGroup !== state.description.name) {
    return reject(state, event, `belongs to resource group ${event.resourceGroup}, not ${state.description.name}`);
  }
  if (state.appliedEventIds.includes(event.id)) return { state, outcome: { kind: 'duplicate' } };
  // Not remembered: a refresh is idempotent, and must not push real event ids out of the window.
  if (event.type === 'documents.refresh') return { state, outcome: { kind: 'refresh' } };
  if (event.type === 'endpoints.changed') return { state: remember(applyEndpoints(state, event), event), outcome: { kind: 'applied' } };
  if (event.type === 'cluster.ca-observed') {
    const result = applyObservedCa(state, event);
    return typeof result === 'string' ? reject(state, event, result) : { state: remember(result, event), outcome: { kind: 'applied' } };
  }
  if (event.type === 'rollout.canary-reported') {
    // A report nobody waits for (the rollout ended, another canary) is harmless: stale, not refused.
    const result = foldCanaryReport(state.rollout, event);
    if (typeof result === 'string') return { state: remember(state, event), outcome: { kind: 'stale', reason: result } };
    return { state: remember({ ...state, rollout: result }, event), outcome: { kind: 'applied' } };
  }
  if (event.type === 'kubeconfig.issued') {
    const result = applyIssuedKubeconfig(state, event);
    return typeof result === 'string' ? reject(state, event, result) : { state: remember(result, event), outcome: { kind: 'applied' } };
  }

  const key = entityKey(event);
  const last = key ? state.entityVersions[key] : undefined;
  if (key && last && time(event.occurredAt) < time(last)) {
    const reason = `older (${event.occurredAt}) than the last change to ${key} (${last})`;
    return { state: remember(state, event), outcome: { kind: 'stale', reason } };
  }
  const result = applyPortalEvent(state, event, context);
  if (typeof result === 'string') return reject(state, event, result);
  const serverRefusal = serverReplacementRefusal(state, result, event);
  if (serverRefusal) return reject(state, event, serverRefusal);
  const versioned = key ? { ...result, entityVersions: { ...result.entityVersions, [key]: event.occurredAt } } : result;
  return { state: remember(versioned, event), outcome: { kind: 'applied' } };
}

function withDescription(state: RgState, change: Partial<ResourceGroup>): RgState {
  return { ...state, description: { ...state.description, ...change } };
}

const byName = <T extends { name: string }>(a: T, b: T) => compareText(a.name, b.name);

/** The new state, or the reason the event cannot be applied. */
function applyPortalEvent(state: RgState, event: PortalEvent, context: ReducerContext): RgState | string {
  const { description } = state;
  switch (event.type) {
    case 'cluster.provisioned': {
      const settings = event.payload.settings;
      if (description.cluster) {
        if (canonicalJson(description.cluster.network) !== canonicalJson(settings.network)) {
          return 'the cluster network (CIDRs, DNS, node mask, dual-stack) cannot change on a running cluster; decommission and provision it again';
        }
        return withDescription(state, { cluster: settings });
      }
      const secrets = {
        clusterToken: deriveSecret(context.masterKey, description.name, event.id, 'cluster-token'),
        webhookKey: deriveSecret(context.masterKey, description.name, event.id, 'webhook-key'),
        datastorePassword: deriveSecret(context.masterKey, description.name, event.id, 'datastore-password'),
      };
      return withDescription(state, { cluster: settings, secrets });
    }
    case 'cluster.decommissioned': {
      if (!description.cluster) return 'no cluster is provisioned';
      const { cluster: _cluster, ...rest } = description;
      return { ...state, description: { ...rest, secrets: {}, endpoints: [] }, sliceVersions: {}, slots: {}, assignedRoles: {}, kubeconfigRequests: [], kubeconfigs: {} };
    }
    case 'vm.upserted': {
      const current = description.vms.find((vm) => vm.name === event.payload.vm.name);
      // Maintenance is changed only by the maintenance events.
      const vm = { ...event.payload.vm, maintenance: current?.maintenance ?? { state: 'none' as const, draining: false } };
      return withDescription(state, { vms: [...description.vms.filter((v) => v.name !== vm.name), vm].sort(byName) });
    }
    case 'vm.deleted': {
      const { [event.payload.name]: _removed, ...assignedRoles } = state.assignedRoles;
      return { ...withDescription(state, { vms: description.vms.filter((vm) => vm.name !== event.payload.name) }), assignedRoles };
    }
    case 'vm.maintenance.requested':
    case 'vm.maintenance.finished': {
      const vm = description.vms.find((v) => v.name === event.payload.name);
      if (!vm) return `no VM named ${event.payload.name} in resource group ${description.name}`;
      if (event.type === 'vm.maintenance.requested' && vm.maintenance.state === 'requested') return state;
      const maintenance = event.type === 'vm.maintenance.requested' ? { state: 'requested' as const, requestedAt: event.occurredAt, draining: false } : { state: 'none' as const, draining: false };
      return withDescription(state, { vms: description.vms.map((v) => (v.name === vm.name ? { ...v, maintenance } : v)) });
    }
    case 'user.upserted': {
      const { user } = event.payload;
      const next = withDescription(state, { users: [...description.users.filter((u) => u.name !== user.name), user].sort(byName) });
      return user.permissions.includes(SUDO_SRV) ? next : withoutAccess(next, user.name);
    }
    case 'user.deleted':
      return withoutAccess(withDescription(state, { users: description.users.filter((u) => u.name !== event.payload.name) }), event.payload.name);
    case 'frontend.upserted':
      return withDescription(state, { frontends: sortedRecord({ ...description.frontends, [event.payload.name]: event.payload.frontend }) });
    case 'frontend.deleted': {
      const { [event.payload.name]: _removed, ...frontends } = description.frontends;
      const { [event.payload.name]: _slots, ...slots } = state.slots;
      return { ...withDescription(state, { frontends }), slots };
    }
    case 'kubeconfig.requested': {
      const user = description.users.find((u) => u.name === event.payload.user);
      if (!user?.permissions.includes(SUDO_SRV)) return `user ${event.payload.user} does not have the ${SUDO_SRV} permission in resource group ${description.name}`;
      if (!description.cluster) return 'no cluster is provisioned';
      const requests = [...state.kubeconfigRequests, { eventId: event.id, user: user.name, requestedAt: event.occurredAt }];
      return { ...state, kubeconfigRequests: requests.slice(-PENDING_KUBECONFIG_REQUESTS) };
    }
  }
}

/** A user who lost access has no kubeconfig coming, and the one issued is forgotten (the reconciler deletes it). */
function withoutAccess(state: RgState, user: string): RgState {
  const { [user]: _revoked, ...kubeconfigs } = state.kubeconfigs;
  return { ...state, kubeconfigRequests: state.kubeconfigRequests.filter((request) => request.user !== user), kubeconfigs };
}

/**
 * The server's agent saw k3s' CA: the first hash is pinned (trust on first use, as k3s' own
 * `node-token` file does), the same one again changes nothing, another one is refused: a server
 * answering with another CA is not the cluster the nodes joined, and they must not be told to
 * trust it.
 */
function applyObservedCa(state: RgState, event: ClusterCaObservedEvent): RgState | string {
  const { secrets } = state.description;
  if (!state.description.cluster || !secrets.clusterToken) return `no cluster is provisioned in resource group ${state.description.name}`;
  const pinned = secrets.clusterCaHash;
  if (pinned === event.payload.caHash) return state;
  if (pinned !== undefined) {
    return `the cluster CA changed (pinned ${pinned.slice(0, 12)}…, reported ${event.payload.caHash.slice(0, 12)}…): nodes keep joining only the CA they know; a new CA means a new cluster (decommission and provision it again)`;
  }
  return withDescription(state, { secrets: { ...secrets, clusterCaHash: event.payload.caHash } });
}

/** The server issued a kubeconfig: record where and until when, and close the requests it answers. */
function applyIssuedKubeconfig(state: RgState, event: KubeconfigIssuedEvent): RgState | string {
  const { user, expiresAt, location, requestIds } = event.payload;
  if (!state.description.users.find((u) => u.name === user)?.permissions.includes(SUDO_SRV)) {
    return `user ${user} does not have the ${SUDO_SRV} permission in resource group ${state.description.name}; the kubeconfig is deleted`;
  }
  const answered = new Set(requestIds);
  const kubeconfigRequests = state.kubeconfigRequests.filter((request) => !answered.has(request.eventId));
  const known = state.kubeconfigs[user];
  // Deliveries of one server come in order; an older one arriving late must not replace a newer one.
  if (known && time(known.issuedAt) > time(event.occurredAt)) return { ...state, kubeconfigRequests };
  return { ...state, kubeconfigRequests, kubeconfigs: sortedRecord({ ...state.kubeconfigs, [user]: { location, expiresAt, issuedAt: event.occurredAt } }) };
}

function sortedRecord<T>(record: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => compareText(a, b)));
}

/** resourceVersions are decimal etcd revisions: compare them as numbers of any size. */
function newer(candidate: string, known: string | undefined): boolean {
  return known === undefined || BigInt(candidate) > BigInt(known);
}

function applyEndpoints(state: RgState, event: EndpointsChangedEvent): RgState {
  // A resync older than the last one applied (a replayed delivery) only adds what is newer.
  const resync = event.payload.resync && !(state.endpointsResyncedAt && time(event.occurredAt) < time(state.endpointsResyncedAt));
  const services = new Map<string, ServiceEndpoints>(resync ? [] : state.description.endpoints.map((s) => [`${s.namespace}/${s.service}`, s]));
  // A resync replaces the slices, but keeps the ports learned so far unless new ones come.
  const knownPorts = new Map(state.description.endpoints.map((s) => [`${s.namespace}/${s.service}`, s.ports]));
  const sliceVersions = { ...state.sliceVersions };
  if (resync) {
    // Slices a resync does not name are gone, and so is what we knew of their versions: a resync
    // too large for one call goes on in plain changes, which must not be skipped as "not newer".
    const named = new Set(event.payload.changes.map((c) => `${c.object.metadata.namespace}/${c.object.metadata.name}`));
    for (const sliceKey of Object.keys(sliceVersions)) if (!named.has(sliceKey)) delete sliceVersions[sliceKey];
  }
  const serviceOf = (namespace: string, service: string): ServiceEndpoints => {
    const key = `${namespace}/${service}`;
    let entry = services.get(key);
    if (!entry) {
      entry = { namespace, service, ports: knownPorts.get(key) ?? [], slices: [] };
      services.set(key, entry);
    }
    return entry;
  };

  for (const change of event.payload.changes) {
    const { metadata } = change.object;
    const sliceKey = `${metadata.namespace}/${metadata.name}`;
    const known = sliceVersions[sliceKey];
    // Older than what is known: skip. A resync may repeat the same version (it lists everything).
    if (known && BigInt(metadata.resourceVersion) < BigInt(known.resourceVersion)) continue;
    if (!resync && !newer(metadata.resourceVersion, known?.resourceVersion)) continue;
    sliceVersions[sliceKey] = { resourceVersion: metadata.resourceVersion, deleted: change.type === 'DELETED' };
    const entry = serviceOf(metadata.namespace, metadata.labels[SERVICE_NAME_LABEL]);
    const others = entry.slices.filter((slice) => slice.metadata.name !== metadata.name);
    const slice: EndpointSlice = {
      metadata: { name: metadata.name, resourceVersion: metadata.resourceVersion },
      addressType: change.object.addressType,
      endpoints: change.object.endpoints,
      ports: change.object.ports,
    };
    const slices = change.type === 'DELETED' ? others : [...others, slice].sort((a, b) => compareText(a.metadata.name, b.metadata.name));
    services.set(`${entry.namespace}/${entry.service}`, { ...entry, slices });
  }
  for (const observed of event.payload.services) {
    const entry = serviceOf(observed.namespace, observed.name);
    services.set(`${entry.namespace}/${entry.service}`, { ...entry, ports: observed.ports });
  }
  const endpoints = [...services.values()]
    .filter((s) => s.slices.length > 0 || s.ports.length > 0)
    .sort((a, b) => compareText(`${a.namespace}/${a.service}`, `${b.namespace}/${b.service}`));
  return { ...withDescription(state, { endpoints }), sliceVersions, ...(resync ? { endpointsResyncedAt: event.occurredAt } : {}) };
}
