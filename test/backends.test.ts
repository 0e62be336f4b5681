/** How backends follow the pods: stable slots, drain for terminating pods, port changes followed. */
import { computeDesiredState } from '../shared/desired-state.ts';
import { endpointState } from '../shared/endpoints.ts';
import type { EndpointSlice } from '../shared/schema/endpoints.ts';
import type { ResourceGroup } from '../shared/schema/resource-group.ts';
import type { HaproxyBackend } from '../shared/schema/document.ts';
import { assignSlots } from '../shared/slots.ts';
import { documentOf, example, fileOf } from './helpers/fixtures.ts';

describe('assignSlots', () => {
  test('a pod keeps its slot, a new pod takes the lowest free one', () => {
    const first = assignSlots(undefined, ['a', 'b', 'c'], 4);
    expect(first).toEqual(['a', 'b', 'c', null]);
    expect(assignSlots(first, ['a', 'c', 'd'], 4)).toEqual(['a', 'd', 'c', null]);
  });

  test('the table grows past the minimum while more pods exist, and shrinks back', () => {
    const grown = assignSlots(['a', 'b'], ['a', 'b', 'c'], 2);
    expect(grown).toEqual(['a', 'b', 'c']);
    expect(assignSlots(grown, ['a', 'c'], 2)).toEqual(['a', null, 'c']);
    expect(assignSlots(grown, ['a'], 2)).toEqual(['a', null]);
  });
});

test('endpoint conditions follow the EndpointSlice API: unset ready means ready', () => {
  expect(endpointState({})).toBe('ready');
  expect(endpointState({ ready: true, serving: true, terminating: false })).toBe('ready');
  expect(endpointState({ ready: false, serving: true, terminating: true })).toBe('drain');
  expect(endpointState({ ready: false, serving: false, terminating: true })).toBe('maint');
  expect(endpointState({ ready: false, serving: false, terminating: false })).toBe('maint');
});

type Pod = { name: string; ip: string; ready?: boolean; serving?: boolean; terminating?: boolean };

function withPods(rg: ResourceGroup, pods: Pod[], sliceOverrides: Partial<EndpointSlice> = {}): ResourceGroup {
  const slice: EndpointSlice = {
    metadata: { name: 'myapp-abc', resourceVersion: '1' },
    addressType: 'IPv4',
    ports: [{ name: 'http', port: 8888, protocol: 'TCP' }],
    endpoints: pods.map((pod) => ({
      addresses: [pod.ip],
      conditions: { ready: pod.ready ?? true, serving: pod.serving ?? pod.ready ?? true, terminating: pod.terminating ?? false },
      targetRef: { kind: 'Pod', namespace: 'default', name: pod.name },
    })),
    ...sliceOverrides,
  };
  return { ...rg, endpoints: [{ namespace: 'default', service: 'myapp', ports: [{ name: 'http', port: 7654, targetPort: 'http' }], slices: [slice] }] };
}

const scenario = example('scenario-1-http');
const backendOf = (state: ReturnType<typeof computeDesiredState>): HaproxyBackend => documentOf(state.documents, 'web01').haproxy!.backends[0]!;
const occupied = (backend: HaproxyBackend) => backend.slots.filter((s) => s.address).map((s) => `${s.server}=${s.address}:${s.port}/${s.state}`);

test('a rolling update: pods keep their servers, terminating pods drain, new pods fill free slots', () => {
  const v1 = computeDesiredState(withPods(scenario, [{ name: 'a', ip: '10.42.1.1' }, { name: 'b', ip: '10.42.1.2' }]));
  expect(occupied(backendOf(v1))).toEqual(['pod1=10.42.1.1:8888/ready', 'pod2=10.42.1.2:8888/ready']);

  const rolling = withPods(scenario, [
    { name: 'a', ip: '10.42.1.1', ready: false, serving: true, terminating: true },
    { name: 'b', ip: '10.42.1.2' },
    { name: 'c', ip: '10.42.2.3' },
  ]);
  const v2 = computeDesiredState(rolling, { previousSlots: v1.slots });
  expect(occupied(backendOf(v2))).toEqual(['pod1=10.42.1.1:8888/drain', 'pod2=10.42.1.2:8888/ready', 'pod3=10.42.2.3:8888/ready']);
  expect(fileOf(documentOf(v2.documents, 'web01'), 'haproxy.cfg')).toMatch(/server pod1 10\.42\.1\.1:8888 check weight 0/);

  const v3 = computeDesiredState(withPods(scenario, [{ name: 'b', ip: '10.42.1.2' }, { name: 'c', ip: '10.42.2.3' }, { name: 'd', ip: '10.42.2.4' }]), { previousSlots: v2.slots });
  expect(occupied(backendOf(v3))).toEqual(['pod1=10.42.2.4:8888/ready', 'pod2=10.42.1.2:8888/ready', 'pod3=10.42.2.3:8888/ready']);
});

test('endpoint changes leave the config structure alone (no reload), a frontend change does not', () => {
  const v1 = computeDesiredState(withPods(scenario, [{ name: 'a', ip: '10.42.1.1' }]));
  const v2 = computeDesiredState(withPods(scenario, [{ name: 'b', ip: '10.42.1.9' }]), { previousSlots: v1.slots });
  const gateway = (s: typeof v1) => documentOf(s.documents, 'web01');
  expect(gateway(v2).hash).not.toBe(gateway(v1).hash);
  expect(gateway(v2).haproxy!.structureHash).toBe(gateway(v1).haproxy!.structureHash);

  const changed = { ...scenario, frontends: { ...scenario.frontends, myapp: { ...scenario.frontends.myapp!, mode: 'tcp' as const } } };
  expect(gateway(computeDesiredState(changed)).haproxy!.structureHash).not.toBe(gateway(v1).haproxy!.structureHash);
});

test('more pods than maxExpectedPods: all get a server, and a warning says so', () => {
  const pods = Array.from({ length: 13 }, (_, i) => ({ name: `p${String(i).padStart(2, '0')}`, ip: `10.42.3.${i + 1}` }));
  const state = computeDesiredState(withPods(scenario, pods));
  expect(backendOf(state).slots).toHaveLength(13);
  expect(occupied(backendOf(state))).toHaveLength(13);
  expect(state.findings.find((f) => f.code === 'frontend.pods-beyond-expected')?.message).toContain('has 13 pods, more than maxExpectedPods (10)');
});

test("a changed targetPort is followed through the Service port's name (the spec's limitation, lifted)", () => {
  const moved = withPods(scenario, [{ name: 'a', ip: '10.42.1.1' }], { ports: [{ name: 'http', port: 9999, protocol: 'TCP' }] });
  expect(occupied(backendOf(computeDesiredState(moved)))).toEqual(['pod1=10.42.1.1:9999/ready']);
});

test('all pods gone: every slot is free and the load balancer backups carry the traffic', () => {
  const state = computeDesiredState(withPods(scenario, []));
  const backend = backendOf(state);
  expect(backend.slots.every((s) => s.state === 'maint')).toBe(true);
  expect(backend).toMatchObject({ loadBalancerPort: 7654, loadBalancersAreBackup: true });
  expect(documentOf(state.documents, 'web01').haproxy!.loadBalancers.map((lb) => `${lb.server}=${lb.address}`)).toEqual(['lb-kube02=172.22.48.12', 'lb-kube03=172.22.48.13']);
});

test('without podPort the load balancer entries are the servers, not backups', () => {
  const { podPort: _podPort, ...noPods } = scenario.frontends.myapp!;
  const rg = { ...scenario, frontends: { myapp: noPods } };
  const config = fileOf(documentOf(computeDesiredState(rg).documents, 'web01'), 'haproxy.cfg');
  expect(config).toContain('server lb-kube02 172.22.48.12:7654 check\n');
  expect(config).not.toContain('backup');
  expect(config).not.toMatch(/server pod\d/);
});
