/**
 * Staged rollout of frontend changes (issue 19), through the reconcile as the reconciler runs
 * it: with two gateways running, a frontend change goes to the canary first, the other keeps
 * the frontends it runs (its backends still follow the pods) until the canary reports the
 * generation applied; a failed report halts the rollout, the next change resumes it.
 */
import type { ControlPlaneEvent } from '../shared/events/control-plane-event.ts';
import { canaryReportedEventSchema } from '../shared/events/rollout-events.ts';
import { endpointsChangedEventSchema } from '../shared/events/endpoint-events.ts';
import { type PortalEventInput, portalEventSchema } from '../shared/events/portal-events.ts';
import type { VmDocument } from '../shared/schema/document.ts';
import { type ReconcilePlan, reconcile } from '../shared/state/reconcile.ts';
import { emptyState, type RgState } from '../shared/state/rg-state.ts';
import { fileOf } from './helpers/fixtures.ts';

const API = 'http://127.0.0.1:7480';
let clock = 0;
let serial = 0;
const at = () => new Date(Date.UTC(2026, 11, 4, 10, 0, clock++)).toISOString();
const ctx = () => ({ masterKey: 'test-master-key-0123456789', now: at(), apiUrl: API });

function event(type: PortalEventInput['type'], payload: unknown): ControlPlaneEvent {
  return portalEventSchema.parse({ id: `e${++serial}-${type}`, type, resourceGroup: 'rg1', occurredAt: at(), payload });
}
const vm = (name: string, roles: string[], srv: string, extra: object = {}) => ({ name, roles, cpu: 4, memoryMiB: 8192, disks: [{ sizeGiB: 50, kind: 'ssd' }], srvAddresses: [srv], ...extra });
const gateway = (name: string, n: number) => vm(name, ['webgateway'], `172.22.0.${n}`, { publicAddresses: [`192.0.2.${n}`] });
/** The frontend `web`, told apart by a timeout only haproxy reads. */
const web = (timeout: string) => event('frontend.upserted', { name: 'web', frontend: { binds: ['*:8080'], podPort: 8888, haproxyExtraConfig: `timeout client ${timeout}` } });

function report(vmName: string, generation: number, outcome: 'applied' | 'failed', reason?: string): ControlPlaneEvent {
  return canaryReportedEventSchema.parse({ id: `canary-${vmName}-${generation}-${outcome}`, type: 'rollout.canary-reported', resourceGroup: 'rg1', occurredAt: at(), payload: { vm: vmName, generation, outcome, ...(reason ? { reason } : {}) } });
}

let resourceVersion = 100;
function pods(...addresses: string[]): ControlPlaneEvent {
  return endpointsChangedEventSchema.parse({
    id: `slice-${++serial}`,
    type: 'endpoints.changed',
    resourceGroup: 'rg1',
    occurredAt: at(),
    payload: {
      changes: [
        {
          type: 'MODIFIED',
          object: {
            metadata: { name: 'web-abc', namespace: 'default', resourceVersion: String(++resourceVersion), labels: { 'kubernetes.io/service-name': 'web' } },
            addressType: 'IPv4',
            endpoints: addresses.map((address) => ({ addresses: [address], conditions: { ready: true } })),
            ports: [{ port: 8888, protocol: 'TCP' }],
          },
        },
      ],
    },
  });
}

/** A group of two running gateways and a server, every document stored once. */
function running(extraSettings: object = {}): RgState {
  const events = [
    event('cluster.provisioned', { settings: extraSettings }),
    event('vm.upserted', { vm: vm('srv', ['k3s-server'], '172.22.0.10', { fqdn: 'srv.example.com' }) }),
    event('vm.upserted', { vm: gateway('web01', 1) }),
    event('vm.upserted', { vm: gateway('web02', 2) }),
    web('30s'),
  ];
  return reconcile(emptyState('rg1'), events, ctx()).state;
}

const haproxyOf = (plan: ReconcilePlan, name: string): string => fileOf(documentOf(plan, name), 'haproxy.cfg');
const documentOf = (plan: ReconcilePlan, name: string): VmDocument => {
  const found = plan.desired.documents.find((d) => d.vm === name);
  if (!found) throw new Error(`no document for ${name}`);
  return found;
};
const written = (plan: ReconcilePlan) => plan.writes.map((w) => w.vm).sort();

test('a new group gets every frontend on every gateway at once: nothing runs yet to protect', () => {
  const state = running();
  expect(state.rollout).toBeUndefined();
  expect(state.documents.web01?.generation).toBe(1);
  expect(state.documents.web02?.generation).toBe(1);
});

test('a frontend change goes to the canary first; the other gateway keeps what it runs, and the status says so', () => {
  const before = running();
  const plan = reconcile(before, [web('31s')], ctx());
  expect(written(plan)).toEqual(['web01']);
  expect(haproxyOf(plan, 'web01')).toContain('timeout client 31s');
  expect(haproxyOf(plan, 'web02')).toContain('timeout client 30s');
  expect(plan.state.documents.web02).toEqual(before.documents.web02);
  expect(documentOf(plan, 'web01').canary).toEqual({ round: expect.stringMatching(/^[0-9a-f]{16}$/), reportUrl: `${API}/v1/agents/rg1/web01/canary-reports` });
  expect(documentOf(plan, 'web02').canary).toBeUndefined();
  expect(plan.status.rollout).toEqual({ phase: 'waiting', canary: 'web01', generation: 2, held: ['web02'], startedAt: expect.any(String), since: expect.any(String) });
});

test('backends follow the pods on a held gateway as on the canary: endpoint changes are never held', () => {
  const staged = reconcile(running(), [web('31s')], ctx()).state;
  const plan = reconcile(staged, [pods('10.42.1.5', '10.42.2.7')], ctx());
  expect(written(plan)).toEqual(['web01', 'web02']);
  for (const gw of ['web01', 'web02']) {
    const servers = documentOf(plan, gw).haproxy?.backends.flatMap((b) => b.slots.flatMap((s) => (s.address === undefined ? [] : [s.address])));
    expect(servers?.sort()).toEqual(['10.42.1.5', '10.42.2.7']);
  }
  // ... and the held one still runs the old frontends.
  expect(haproxyOf(plan, 'web02')).toContain('timeout client 30s');
  expect(plan.status.rollout?.phase).toBe('waiting');
});

test('the canary applied the generation: the other gateways follow, and the rollout is over', () => {
  const staged = reconcile(running(), [web('31s')], ctx());
  const plan = reconcile(staged.state, [report('web01', staged.state.rollout!.generation!, 'applied')], ctx());
  expect(written(plan)).toEqual(['web01', 'web02']);
  expect(haproxyOf(plan, 'web02')).toContain('timeout client 31s');
  expect(documentOf(plan, 'web01').canary).toBeUndefined();
  expect(plan.state.rollout).toBeUndefined();
  expect(plan.status.rollout).toBeNull();
  expect(plan.outcomes).toEqual([{ eventId: expect.stringMatching(/^canary-web01-/), outcome: { kind: 'applied' } }]);
});

test('a failed report halts the rollout with its reason; the next change resumes it, and an applied one ends it', () => {
  const staged = reconcile(running(), [web('bad')], ctx());
  const halted = reconcile(staged.state, [report('web01', staged.state.rollout!.generation!, 'failed', "haproxy refused the config: unexpected character 'b'")], ctx());
  expect(written(halted)).toEqual([]);
  expect(haproxyOf(halted, 'web02')).toContain('timeout client 30s');
  expect(halted.status.rollout).toMatchObject({ phase: 'halted', canary: 'web01', held: ['web02'], reason: "haproxy refused the config: unexpected character 'b'" });

  // Still halted while nothing changes in the frontends (an endpoint change passes, the config does not).
  const endpoints = reconcile(halted.state, [pods('10.42.1.5')], ctx());
  expect(haproxyOf(endpoints, 'web02')).toContain('timeout client 30s');
  expect(endpoints.status.rollout?.phase).toBe('halted');

  const resumed = reconcile(endpoints.state, [web('32s')], ctx());
  expect(written(resumed)).toEqual(['web01']);
  // The rollout began with the first change; this round with the one that resumed it.
  expect(Date.parse(resumed.status.rollout!.since)).toBeGreaterThan(Date.parse(resumed.status.rollout!.startedAt));
  expect(resumed.status.rollout).toMatchObject({ phase: 'waiting', canary: 'web01', generation: resumed.state.documents.web01!.generation });
  expect(resumed.status.rollout?.reason).toBeUndefined();

  const done = reconcile(resumed.state, [report('web01', resumed.state.rollout!.generation!, 'applied')], ctx());
  expect(haproxyOf(done, 'web02')).toContain('timeout client 32s');
  expect(done.status.rollout).toBeNull();
});

test('a report for an earlier round, or from a gateway that is not the canary, settles nothing', () => {
  const first = reconcile(running(), [web('31s')], ctx());
  const earlier = first.state.rollout!.generation!;
  const second = reconcile(first.state, [web('32s')], ctx());
  expect(second.state.rollout!.generation).toBeGreaterThan(earlier);
  const plan = reconcile(second.state, [report('web01', earlier, 'applied'), report('web02', second.state.rollout!.generation!, 'applied')], ctx());
  expect(haproxyOf(plan, 'web02')).toContain('timeout client 30s');
  expect(plan.status.rollout?.phase).toBe('waiting');
  expect(plan.outcomes[1]?.outcome).toEqual({ kind: 'stale', reason: 'web02 is not the canary of the rollout (web01 is)' });
});

test('a change taken back before the canary reported ends the rollout: every gateway runs what it ran', () => {
  const staged = reconcile(running(), [web('31s')], ctx());
  const plan = reconcile(staged.state, [web('30s')], ctx());
  expect(plan.status.rollout).toBeNull();
  expect(haproxyOf(plan, 'web01')).toContain('timeout client 30s');
  expect(documentOf(plan, 'web01').canary).toBeUndefined();
});

test('the canary deleted mid-rollout: the one gateway left gets the change, nothing waits for ever', () => {
  const staged = reconcile(running(), [web('31s')], ctx());
  const plan = reconcile(staged.state, [event('vm.deleted', { name: 'web01' })], ctx());
  expect(plan.status.rollout).toBeNull();
  expect(haproxyOf(plan, 'web02')).toContain('timeout client 31s');
});

test('`gatewayRollout: all-at-once` gives a change to every gateway at once', () => {
  const plan = reconcile(running({ gatewayRollout: 'all-at-once' }), [web('31s')], ctx());
  expect(written(plan)).toEqual(['web01', 'web02']);
  expect(plan.status.rollout).toBeNull();
});

test('a bad rollout setting is refused naming the field', () => {
  const result = portalEventSchema.safeParse({ id: 'x', type: 'cluster.provisioned', resourceGroup: 'rg1', occurredAt: at(), payload: { settings: { gatewayRollout: 'sometimes' } } });
  expect(result.success).toBe(false);
  expect(result.error?.issues[0]).toMatchObject({ path: ['payload', 'settings', 'gatewayRollout'], message: 'must be "canary" or "all-at-once"' });
});
