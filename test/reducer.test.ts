/** Folding events into a resource group: idempotent, order-safe, explicit about what it refuses. */
import { HISTORY_EVENTS_PER_ENTRY, recordHistory } from '../shared/state/history.ts';
import type { ControlPlaneEvent } from '../shared/events/control-plane-event.ts';
import type { PortalEventInput } from '../shared/events/portal-events.ts';
import { portalEventSchema } from '../shared/events/portal-events.ts';
import { endpointsChangedEventSchema } from '../shared/events/endpoint-events.ts';
import { kubeconfigIssuedEventSchema } from '../shared/events/kubeconfig-events.ts';
import { reconcile } from '../shared/state/reconcile.ts';
import { reduce } from '../shared/state/reducer.ts';
import { deriveSecret } from '../shared/secrets.ts';
import { emptyState, type RgState } from '../shared/state/rg-state.ts';

const ctx = { masterKey: 'test-master-key-0123456789', now: '2026-11-24T12:00:00Z' };
let clock = 0;
let serial = 0;
const at = () => new Date(Date.UTC(2026, 10, 24, 10, 0, clock++)).toISOString();

function event(type: PortalEventInput['type'], payload: unknown, extra: { id?: string; occurredAt?: string } = {}): ControlPlaneEvent {
  return portalEventSchema.parse({ id: extra.id ?? `e${++serial}-${type}`, type, resourceGroup: 'rg1', occurredAt: extra.occurredAt ?? at(), payload });
}

const vm = (name: string, roles: string[], srv: string, extra: object = {}) => ({ name, roles, cpu: 4, memoryMiB: 8192, disks: [{ sizeGiB: 50, kind: 'ssd' }], srvAddresses: [srv], ...extra });

function provisioned(): RgState {
  const events = [
    event('cluster.provisioned', { settings: {} }, { id: 'prov-1' }),
    event('vm.upserted', { vm: vm('srv', ['k3s-server'], '172.22.0.2', { fqdn: 'srv.example.com' }) }),
    event('vm.upserted', { vm: vm('gw', ['webgateway'], '172.22.0.1', { publicAddresses: ['192.0.2.1'] }) }),
    event('vm.upserted', { vm: vm('a1', ['k3s-agent'], '172.22.0.3') }),
    event('user.upserted', { user: { name: 'alice', permissions: ['sudo-srv'] } }),
    event('frontend.upserted', { name: 'web', frontend: { lbServicePort: 7654, podPort: 8888 } }),
  ];
  return reconcile(emptyState('rg1'), events, ctx).state;
}

function slices(id: string, changes: Array<[type: 'ADDED' | 'MODIFIED' | 'DELETED', rv: string, ips: string[]]>, extra: object = {}): ControlPlaneEvent {
  return endpointsChangedEventSchema.parse({
    id,
    type: 'endpoints.changed',
    resourceGroup: 'rg1',
    occurredAt: at(),
    payload: {
      ...extra,
      changes: changes.map(([type, rv, ips]) => ({
        type,
        object: {
          metadata: { name: 'web-abc', namespace: 'default', resourceVersion: rv, labels: { 'kubernetes.io/service-name': 'web' } },
          addressType: 'IPv4',
          ports: [{ name: 'http', port: 8888, protocol: 'TCP' }],
          endpoints: ips.map((ip) => ({ addresses: [ip], conditions: { ready: true }, targetRef: { kind: 'Pod', name: `pod-${ip}` } })),
        },
      })),
    },
  });
}

const podAddresses = (state: RgState) => state.description.endpoints.flatMap((s) => s.slices.flatMap((sl) => sl.endpoints.map((e) => e.addresses[0])));

test('provisioning derives the cluster secrets from the master key: stable for the event, never in the event', () => {
  const state = provisioned();
  expect(state.description.secrets.clusterToken).toBe(deriveSecret(ctx.masterKey, 'rg1', 'prov-1', 'cluster-token'));
  expect(state.description.secrets.webhookKey).not.toBe(state.description.secrets.clusterToken);
  expect(reconcile(emptyState('rg1'), [event('cluster.provisioned', { settings: {} }, { id: 'prov-1' })], ctx).state.description.secrets).toEqual(state.description.secrets);
});

test('an event applied twice changes nothing the second time', () => {
  const state = provisioned();
  const upsert = event('vm.upserted', { vm: vm('a2', ['k3s-agent'], '172.22.0.4') });
  const once = reduce(state, upsert, ctx);
  expect(once.outcome.kind).toBe('applied');
  const twice = reduce(once.state, upsert, ctx);
  expect(twice.outcome.kind).toBe('duplicate');
  expect(twice.state).toBe(once.state);
});

test('a late, older event for a VM never undoes a newer one', () => {
  const state = provisioned();
  const newer = event('vm.upserted', { vm: vm('a1', ['k3s-agent'], '172.22.0.3', { cpu: 8 }) }, { occurredAt: '2026-11-24T11:00:00Z' });
  const older = event('vm.upserted', { vm: vm('a1', ['k3s-agent'], '172.22.0.3', { cpu: 2 }) }, { occurredAt: '2026-11-24T10:30:00Z' });
  const deleted = event('vm.deleted', { name: 'a1' }, { occurredAt: '2026-11-24T11:30:00Z' });
  const late = event('vm.upserted', { vm: vm('a1', ['k3s-agent'], '172.22.0.3') }, { occurredAt: '2026-11-24T11:10:00Z' });
  const result = reconcile(state, [newer, older, deleted, late], ctx);
  expect(result.outcomes.map((o) => o.outcome.kind)).toEqual(['applied', 'stale', 'applied', 'stale']);
  expect(result.state.description.vms.map((v) => v.name)).toEqual(['gw', 'srv']);
});

test('changing the network of a running cluster is refused with its reason, and nothing else changes', () => {
  const state = provisioned();
  const result = reduce(state, event('cluster.provisioned', { settings: { network: { clusterCidr: '10.50.0.0/16' } } }), ctx);
  expect(result.outcome).toEqual({ kind: 'rejected', reason: expect.stringContaining('cannot change on a running cluster') });
  expect(result.state.description).toEqual(state.description);
  expect(result.state.rejections.at(-1)?.reason).toContain('cannot change on a running cluster');
});

test('maintenance of an unknown VM and kubeconfigs for users without sudo-srv are refused', () => {
  const state = reduce(provisioned(), event('user.upserted', { user: { name: 'bob', permissions: [] } }), ctx).state;
  expect(reduce(state, event('vm.maintenance.requested', { name: 'nope' }), ctx).outcome).toEqual({ kind: 'rejected', reason: 'no VM named nope in resource group rg1' });
  expect(reduce(state, event('kubeconfig.requested', { user: 'bob' }), ctx).outcome).toEqual({ kind: 'rejected', reason: 'user bob does not have the sudo-srv permission in resource group rg1' });
  expect(reduce(state, event('kubeconfig.requested', { user: 'alice' }), ctx).state.kubeconfigRequests).toEqual([expect.objectContaining({ user: 'alice' })]);
});

test('EndpointSlice changes apply in resourceVersion order; stale ones are ignored, deletions are remembered', () => {
  let state = provisioned();
  state = reduce(state, slices('w1', [['ADDED', '100', ['10.42.1.1']]]), ctx).state;
  state = reduce(state, slices('w2', [['MODIFIED', '102', ['10.42.1.1', '10.42.1.2']]]), ctx).state;
  state = reduce(state, slices('w3', [['MODIFIED', '101', ['10.42.9.9']]]), ctx).state;
  expect(podAddresses(state)).toEqual(['10.42.1.1', '10.42.1.2']);
  state = reduce(state, slices('w4', [['DELETED', '103', []]]), ctx).state;
  state = reduce(state, slices('w5', [['MODIFIED', '102', ['10.42.1.1']]]), ctx).state;
  expect(podAddresses(state)).toEqual([]);
});

test('a resync replaces what was known', () => {
  let state = provisioned();
  state = reduce(state, slices('w1', [['ADDED', '100', ['10.42.1.1']]]), ctx).state;
  state = reduce(state, slices('w2', [['ADDED', '300', ['10.42.7.7']]], { resync: true }), ctx).state;
  expect(podAddresses(state)).toEqual(['10.42.7.7']);
});

test('reconcile writes only changed documents, bumps their generation, and a re-run after a crash converges', () => {
  const state = provisioned();
  const first = reconcile(state, [], ctx);
  expect(first.writes).toEqual([]);
  const change = slices('w1', [['ADDED', '100', ['10.42.1.1']]]);
  const applied = reconcile(state, [change], ctx);
  expect(applied.writes.map((w) => `${w.vm}@${w.generation}`)).toEqual([`gw@${state.documents.gw!.generation + 1}`]);
  // Crash after the document writes, before the state write: the retry starts from the old state.
  const retried = reconcile(state, [change], ctx);
  expect(retried.writes).toEqual(applied.writes);
  expect(retried.state).toEqual(applied.state);
  // And once the state was saved, the same event is a duplicate and writes nothing.
  const again = reconcile(applied.state, [change], ctx);
  expect(again.outcomes[0]?.outcome.kind).toBe('duplicate');
  expect(again.writes).toEqual([]);
});

test('a deleted VM loses its document; a blocked VM keeps its last one', () => {
  const state = provisioned();
  const result = reconcile(state, [event('vm.deleted', { name: 'a1' }), event('vm.upserted', { vm: vm('gw', ['webgateway'], '172.22.0.1', { publicAddresses: ['192.0.2.1'] }) }), event('frontend.upserted', { name: 'bad', frontend: { binds: ['127.0.0.1:7654'], podPort: 1 } })], ctx);
  expect(result.deletes).toEqual(['a1']);
  expect(result.state.documents.gw).toEqual(state.documents.gw);
  expect(result.status.documents.find((d) => d.vm === 'gw')?.blockedBy).toEqual(['frontend.bind-conflict']);
});

test('a batch of duplicates changes nothing and asks for no write at all', () => {
  const state = provisioned();
  const change = slices('w9', [['ADDED', '100', ['10.42.1.1']]]);
  const applied = reconcile(state, [change], ctx);
  expect(applied.unchanged).toBe(false);
  const again = reconcile(applied.state, [change, change], ctx);
  expect(again.unchanged).toBe(true);
  expect(again.writes).toEqual([]);
});

test('a frontend whose name cannot default its Service name is refused at the event, not later', () => {
  const result = portalEventSchema.safeParse({ id: 'f1', type: 'frontend.upserted', resourceGroup: 'rg1', occurredAt: at(), payload: { name: 'My_App', frontend: { podPort: 80 } } });
  expect(result.success).toBe(false);
  expect(result.error!.issues[0]).toMatchObject({ path: ['payload', 'frontend', 'serviceName'], message: expect.stringContaining('defaults to the frontend\'s name "My_App"') });
  expect(portalEventSchema.safeParse({ id: 'f2', type: 'frontend.upserted', resourceGroup: 'rg1', occurredAt: at(), payload: { name: 'My_App', frontend: { podPort: 80, serviceName: 'my-app' } } }).success).toBe(true);
});

test('a replayed, older resync never drops what a newer one established', () => {
  let state = provisioned();
  const newer = slices('r2', [['ADDED', '200', ['10.42.2.2']]], { resync: true });
  const older = slices('r1', [['ADDED', '150', ['10.42.1.1']]], { resync: true });
  state = reduce(state, newer, ctx).state;
  state = reduce(state, { ...older, occurredAt: '2026-11-24T09:00:00.000Z' }, ctx).state;
  expect(podAddresses(state)).toEqual(['10.42.2.2']);
});

test('a resync too large for one call goes on in plain changes: the later parts are applied, not skipped', () => {
  let state = provisioned();
  const slice = (name: string, rv: string, ip: string) => ({
    type: 'ADDED' as const,
    object: { metadata: { name, namespace: 'default', resourceVersion: rv, labels: { 'kubernetes.io/service-name': 'web' } }, addressType: 'IPv4', ports: [{ name: 'http', port: 8888, protocol: 'TCP' }], endpoints: [{ addresses: [ip], conditions: { ready: true } }] },
  });
  const body = (id: string, changes: unknown[], resync: boolean) => endpointsChangedEventSchema.parse({ id, type: 'endpoints.changed', resourceGroup: 'rg1', occurredAt: at(), payload: { changes, resync } });
  state = reduce(state, body('b1', [slice('web-a', '10', '10.42.0.1'), slice('web-b', '11', '10.42.0.2')], false), ctx).state;
  // After a restart: part one (a resync) names web-a, part two (plain) brings web-b at the same version.
  state = reduce(state, body('b2', [slice('web-a', '10', '10.42.0.1')], true), ctx).state;
  state = reduce(state, body('b3', [slice('web-b', '11', '10.42.0.2')], false), ctx).state;
  expect(podAddresses(state)).toEqual(['10.42.0.1', '10.42.0.2']);
});

test('losing sudo-srv drops a pending kubeconfig request', () => {
  let state = reduce(provisioned(), event('kubeconfig.requested', { user: 'alice' }), ctx).state;
  expect(state.kubeconfigRequests).toHaveLength(1);
  state = reduce(state, event('user.upserted', { user: { name: 'alice', permissions: [] } }), ctx).state;
  expect(state.kubeconfigRequests).toEqual([]);
});

test('an issued kubeconfig closes the requests it answers and is recorded; an older delivery never replaces a newer one', () => {
  const issued = (id: string, occurredAt: string, expiresAt: string, requestIds: string[], user = 'alice'): ControlPlaneEvent =>
    kubeconfigIssuedEventSchema.parse({ id, type: 'kubeconfig.issued', resourceGroup: 'rg1', occurredAt, payload: { user, expiresAt, location: `kubeconfigs/rg1/${user}/${id}.yaml`, requestIds } });
  let state = reduce(provisioned(), event('kubeconfig.requested', { user: 'alice' }, { id: 'req-1' }), ctx).state;
  state = reduce(state, issued('i2', '2026-11-24T12:00:00Z', '2026-11-25T00:00:00Z', ['req-1']), ctx).state;
  expect(state.kubeconfigRequests).toEqual([]);
  expect(state.kubeconfigs).toEqual({ alice: { location: 'kubeconfigs/rg1/alice/i2.yaml', expiresAt: '2026-11-25T00:00:00Z', issuedAt: '2026-11-24T12:00:00Z' } });
  // A late, older delivery: the newer one stays, and the older object is deleted.
  const late = reconcile(state, [issued('i1', '2026-11-24T11:00:00Z', '2026-11-24T23:00:00Z', [])], ctx);
  state = late.state;
  expect(state.kubeconfigs.alice?.expiresAt).toBe('2026-11-25T00:00:00Z');
  expect(late.kubeconfigDeletes).toEqual(['kubeconfigs/rg1/alice/i1.yaml']);
  // A newer one replaces it: the one before is deleted.
  const renewed = reconcile(state, [issued('i4', '2026-11-24T13:00:00Z', '2026-11-25T01:00:00Z', [])], ctx);
  expect(renewed.kubeconfigDeletes).toEqual(['kubeconfigs/rg1/alice/i2.yaml']);
  expect(renewed.state.kubeconfigs.alice?.location).toBe('kubeconfigs/rg1/alice/i4.yaml');
  expect(reduce(state, issued('i3', '2026-11-24T12:00:01Z', '2026-11-25T00:00:00Z', [], 'bob'), ctx).outcome).toMatchObject({ kind: 'rejected', reason: expect.stringContaining('user bob does not have the sudo-srv permission') });

  // Losing sudo-srv forgets it, and the reconcile plan deletes the stored kubeconfig.
  const plan = reconcile(state, [event('user.upserted', { user: { name: 'alice', permissions: [] } })], ctx);
  expect(plan.state.kubeconfigs).toEqual({});
  expect(plan.kubeconfigDeletes).toEqual(['kubeconfigs/rg1/alice/i2.yaml']);
  expect(plan.status.kubeconfigs).toEqual([]);
});

test('the server document lists open kubeconfig requests of users with access only', () => {
  let state = reduce(provisioned(), event('kubeconfig.requested', { user: 'alice' }, { id: 'req-9' }), ctx).state;
  const server = () => reconcile(state, [], ctx).desired.documents.find((d) => d.vm === 'srv')!.kubernetes!;
  expect(server().kubeconfigRequests).toEqual([{ user: 'alice', requestId: 'req-9' }]);
  state = reduce(state, event('user.deleted', { name: 'alice' }), ctx).state;
  expect(server().kubeconfigRequests).toEqual([]);
});

test('the agent chosen for the drain stays chosen, even when an earlier request arrives late', () => {
  let state = provisioned();
  state = reconcile(state, [event('vm.upserted', { vm: vm('a2', ['k3s-agent'], '172.22.0.4') })], ctx).state;
  state = reconcile(state, [event('vm.maintenance.requested', { name: 'a1' }, { occurredAt: '2026-11-24T12:00:00Z' })], ctx).state;
  const drainOf = (s: RgState) => reconcile(s, [], ctx).desired.documents.find((d) => d.vm === 'srv')?.kubernetes?.drainNodes;
  expect(drainOf(state)).toEqual(['a1']);
  // A request stamped earlier (it was delayed on its way) must not uncordon a1 mid-drain.
  state = reconcile(state, [event('vm.maintenance.requested', { name: 'a2' }, { occurredAt: '2026-11-24T13:30:00+02:00' })], ctx).state;
  expect(drainOf(state)).toEqual(['a1']);
  state = reconcile(state, [event('vm.maintenance.finished', { name: 'a1' }, { occurredAt: '2026-11-24T12:30:00Z' })], ctx).state;
  expect(drainOf(state)).toEqual(['a2']);
});

test('every stored copy is signed for a week and signed again a day later: same content, same generation, new expiry', () => {
  const state = provisioned();
  const names = Object.keys(state.documents).sort();
  const later = (hours: number) => ({ ...ctx, now: new Date(Date.parse(ctx.now) + hours * 3600_000).toISOString() });
  // provisioned() signed every copy at ctx.now: within a day nothing is written again.
  expect(Object.values(state.documents).every((d) => d.expiresAt === '2026-12-01T12:00:00.000Z')).toBe(true);
  expect(reconcile(state, [], later(23)).writes).toEqual([]);
  const resigned = reconcile(state, [], later(25));
  expect(resigned.writes.map((w) => [w.vm, w.generation, w.expiresAt]).sort()).toEqual(names.map((vm) => [vm, state.documents[vm]!.generation, '2026-12-02T13:00:00.000Z']));
  expect(resigned.writes.every((w) => w.hash === state.documents[w.vm]!.hash)).toBe(true);
  expect(resigned.unchanged).toBe(false);
  expect(reconcile(resigned.state, [], later(26)).writes).toEqual([]);
});

test("the cluster's key is published to cluster-auth/<rg>.json once, again only when it changes, and removed with the cluster", () => {
  const state = provisioned();
  // provisioned() published it with the cluster.
  expect(state.clusterAuthPublished).toMatch(/^[0-9a-f]{16}$/);
  expect(reconcile(state, [], ctx).clusterAuth).toBeUndefined();
  // A state from before cluster-auth existed publishes it on its next run.
  const { clusterAuthPublished: _published, ...older } = state;
  expect(reconcile(older as RgState, [], ctx).clusterAuth).toEqual({ resourceGroup: 'rg1', key: state.description.secrets.webhookKey });
  // Decommissioning drops the cluster's secrets: the object goes too, once.
  const gone = reconcile(state, [event('cluster.decommissioned', {})], ctx);
  expect(gone.clusterAuth).toBeNull();
  expect(gone.state.clusterAuthPublished).toBe('none');
  expect(reconcile(gone.state, [], ctx).clusterAuth).toBeUndefined();
});

describe("the k3s server is not replaced (the spec: changing the VM which runs the k3s server is not supported)", () => {
  const documentsOf = (state: RgState) => state.documents;

  test('a second server is refused with the reason in the status, and no document changes', () => {
    const state = provisioned();
    const result = reconcile(state, [event('vm.upserted', { vm: vm('srv2', ['k3s-server'], '172.22.0.9') }, { id: 'second-server' })], ctx);
    expect(result.outcomes[0]?.outcome).toEqual({ kind: 'rejected', reason: expect.stringContaining('srv2 cannot become a k3s-server: srv runs the k3s server of this cluster') });
    expect(result.status.rejections).toEqual([expect.objectContaining({ eventId: 'second-server', type: 'vm.upserted', reason: expect.stringContaining('changing the VM which runs the k3s server is not supported') })]);
    expect(result.state.description.vms.map((v) => v.name)).toEqual(['a1', 'gw', 'srv']);
    expect(result.writes).toEqual([]);
    expect(documentsOf(result.state)).toEqual(documentsOf(state));
  });

  test('deleting the server, or taking its role away, is refused; agents keep their server', () => {
    const state = provisioned();
    const deleted = reconcile(state, [event('vm.deleted', { name: 'srv' }, { id: 'delete-server' })], ctx);
    expect(deleted.outcomes[0]?.outcome).toEqual({ kind: 'rejected', reason: expect.stringMatching(/^srv cannot be deleted: .*not supported; decommission the cluster/) });
    expect(deleted.deletes).toEqual([]);
    expect(deleted.writes).toEqual([]);
    const demoted = reduce(state, event('vm.upserted', { vm: vm('srv', ['k3s-agent'], '172.22.0.2') }), ctx);
    expect(demoted.outcome).toEqual({ kind: 'rejected', reason: expect.stringContaining('srv cannot lose the k3s-server role') });
    // The server's own changes (more memory, say) still apply.
    expect(reduce(state, event('vm.upserted', { vm: vm('srv', ['k3s-server'], '172.22.0.2', { fqdn: 'srv.example.com', memoryMiB: 16384 }) }), ctx).outcome.kind).toBe('applied');
  });

  test('after decommissioning, the server may go and another VM may become the server of a new cluster', () => {
    let state = reconcile(provisioned(), [event('cluster.decommissioned', {}), event('vm.deleted', { name: 'srv' })], ctx).state;
    expect(state.rejections).toEqual([]);
    const result = reconcile(state, [event('vm.upserted', { vm: vm('srv2', ['k3s-server'], '172.22.0.9') }), event('cluster.provisioned', { settings: {} })], ctx);
    state = result.state;
    expect(result.outcomes.map((o) => o.outcome.kind)).toEqual(['applied', 'applied']);
    expect(reconcile(state, [event('vm.deleted', { name: 'srv2' })], ctx).outcomes[0]?.outcome.kind).toBe('rejected');
  });

  test('two servers (a blocked cluster) may be resolved by deleting either one', () => {
    const twoServers = reconcile(
      emptyState('rg1'),
      [event('vm.upserted', { vm: vm('s1', ['k3s-server'], '172.22.0.2') }), event('vm.upserted', { vm: vm('s2', ['k3s-server'], '172.22.0.3') }), event('cluster.provisioned', { settings: {} })],
      ctx,
    );
    expect(twoServers.desired.findings.map((f) => f.code)).toContain('server.duplicate');
    const resolved = reconcile(twoServers.state, [event('vm.deleted', { name: 's1' })], ctx);
    expect(resolved.outcomes[0]?.outcome.kind).toBe('applied');
    expect(resolved.desired.findings.map((f) => f.code)).not.toContain('server.duplicate');
  });

  test('an automatically chosen server is kept the same way', () => {
    const big = (name: string, srv: string) => vm(name, [], srv, { cpu: 8, memoryMiB: 16384, disks: [{ sizeGiB: 100, kind: 'ssd' }] });
    const first = reconcile(emptyState('rg1'), [event('cluster.provisioned', { settings: { roleAssignment: 'automatic' } }), event('vm.upserted', { vm: big('v1', '172.22.0.2') }), event('vm.upserted', { vm: big('v2', '172.22.0.3') })], ctx);
    const server = Object.entries(first.state.assignedRoles).find(([, role]) => role === 'k3s-server')?.[0];
    expect(server).toBeDefined();
    // Upserted again without roles, it stays the server (its role was assigned, not given).
    expect(reconcile(first.state, [event('vm.upserted', { vm: big(server!, server === 'v1' ? '172.22.0.2' : '172.22.0.3') })], ctx).outcomes[0]?.outcome.kind).toBe('applied');
    expect(reconcile(first.state, [event('vm.deleted', { name: server! })], ctx).outcomes[0]?.outcome).toMatchObject({ kind: 'rejected', reason: expect.stringContaining(`${server} cannot be deleted`) });
  });
});

test('a misspelt Kubernetes role is refused at the event, naming the field and the known roles; other platform roles are fine', () => {
  const upsert = (roles: string[]) => portalEventSchema.safeParse({ id: 'r1', type: 'vm.upserted', resourceGroup: 'rg1', occurredAt: at(), payload: { vm: vm('x', roles, '172.22.0.5') } });
  const result = upsert(['k3s-agnet']);
  expect(result.error?.issues).toEqual([
    expect.objectContaining({ path: ['payload', 'vm', 'roles', 0], message: 'unknown Kubernetes role "k3s-agnet" (did you mean "k3s-agent"?): the Kubernetes roles are webgateway, k3s-server, k3s-agent, k3s-nfs' }),
  ]);
  expect(upsert(['postgresql', 'webgatway']).error?.issues.map((i) => i.path)).toEqual([['payload', 'vm', 'roles', 1]]);
  expect(upsert(['k3s-master']).error?.issues[0]?.message).toMatch(/^unknown Kubernetes role "k3s-master": the Kubernetes roles are/);
  for (const roles of [['postgresql'], ['webproxy', 'loghost'], ['k3s-agent'], []]) expect([roles, upsert(roles).success]).toEqual([roles, true]);
});

describe('audit trail (recordHistory)', () => {
  const base = { present: new Set(['a', 'b']), events: [{ id: 'e1', type: 'vm.upserted', occurredAt: '2026-12-04T10:00:00Z' }], at: '2026-12-04T10:00:01Z', repair: false, depth: 3 };
  test('one entry per new generation, newest first, bounded per VM; a copy signed again adds none; a deletion is recorded, then dropped', () => {
    let history = {};
    for (let generation = 1; generation <= 5; generation++) history = recordHistory(history, { ...base, written: [{ vm: 'a', generation, hash: `h${generation}` }], deleted: [] });
    expect(recordHistory(history, { ...base, written: [{ vm: 'a', generation: 5, hash: 'h5' }], deleted: [] })).toEqual(history);
    expect((history as Record<string, Array<{ generation: number }>>).a!.map((e) => e.generation)).toEqual([5, 4, 3]);
    const deleted = recordHistory(history, { ...base, present: new Set(['b']), written: [], deleted: ['a'] });
    expect(deleted.a!.map((e) => e.generation)).toEqual([null, 5, 4]);
    expect(recordHistory(deleted, { ...base, present: new Set(['b']), written: [], deleted: [] }).a).toBeUndefined();
  });
  test('a big batch names its first events and counts the rest', () => {
    const events = Array.from({ length: HISTORY_EVENTS_PER_ENTRY + 7 }, (_, i) => ({ id: `e${i}`, type: 'user.upserted', occurredAt: '2026-12-04T10:00:00Z' }));
    const entry = recordHistory({}, { ...base, events, written: [{ vm: 'a', generation: 1, hash: 'h' }], deleted: [] }).a![0]!;
    expect(entry.events).toHaveLength(HISTORY_EVENTS_PER_ENTRY);
    expect(entry.moreEvents).toBe(7);
  });
});
