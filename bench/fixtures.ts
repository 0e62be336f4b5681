/**
 * Synthetic resource groups for the desired-state benchmark: one k3s-server, one webgateway,
 * one k3s-nfs VM and N k3s-agents, with frontends (podPort + lbServicePort), observed ready
 * pods in the EndpointSlice shape of examples/scenario-1-http.yaml, and users. Everything is
 * deterministic: the same settings always give the same input.
 *
 * Addresses: VMs live on the srv network 172.20.0.0/16 (public ones in 192.0.2.0/24), pods
 * in the default cluster network 10.42.0.0/16, one /24 per agent as k3s hands them out
 * (agent k: 10.42.<k+1>.0/24), so no pod IP repeats and no VM address lies inside the
 * cluster or service network.
 */
import type { ResourceGroupInput } from '../shared/schema/resource-group.ts';
import type { VmInput } from '../shared/schema/vm.ts';

export interface FixtureSettings {
  readonly agents: number;
  readonly frontends: number;
  readonly podsPerFrontend: number;
  readonly users: number;
  /** Every `sudoEvery`-th user has the `sudo-srv` permission. */
  readonly sudoEvery: number;
}

export const DEFAULT_FIXTURE: Omit<FixtureSettings, 'agents'> = {
  frontends: 100,
  podsPerFrontend: 10,
  users: 50,
  sudoEvery: 5,
};

export const CLUSTER_TOKEN = 'bench-cluster-token-0123456789abcdef0123';
export const POD_PORT = 8080;
export const FIRST_BIND_PORT = 10000;
export const FIRST_LB_PORT = 20000;

/** The most agents the default /16 cluster network with /24 node subnets holds next to server and webgateway. */
export const MAX_AGENTS = 253;

const pad = (n: number, width: number) => String(n).padStart(width, '0');

export const agentName = (index: number) => `agent-${pad(index + 1, 3)}`;
export const frontendName = (index: number) => `app-${pad(index, 3)}`;

/** `172.20.<1+k/200>.<10+k%200>`: up to 200 agents per /24 of the srv network. */
function agentSrvAddress(index: number): string {
  return `172.20.${1 + Math.floor(index / 200)}.${10 + (index % 200)}`;
}

/** A pod name like Kubernetes makes them: `<deployment>-<replicaset hash>-<5 chars>`. */
function podName(frontend: string, serial: number): string {
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  let suffix = '';
  let n = serial * 7919 + 104729; // spread the serials so names do not share long prefixes
  for (let i = 0; i < 5; i++) {
    suffix += alphabet[n % alphabet.length];
    n = Math.floor(n / alphabet.length);
  }
  return `${frontend}-6d9f7c5b8-${suffix}`;
}

function vm(name: string, roles: string[], cpu: number, memoryMiB: number, disk: { sizeGiB: number; kind: 'ssd' | 'hdd' }, srv: string, extra: Partial<VmInput> = {}): VmInput {
  return { name, roles, cpu, memoryMiB, disks: [disk], srvAddresses: [srv], ...extra };
}

interface PodInput {
  addresses: string[];
  conditions: { ready: boolean; serving: boolean; terminating: boolean };
  nodeName: string;
  targetRef: { kind: string; namespace: string; name: string };
}

/** Hands out pods round-robin over the agents, each with the next free address of its agent's /24. */
class PodAllocator {
  private next = 0;
  private readonly used: number[];
  private readonly agents: number;

  constructor(agents: number) {
    this.agents = agents;
    this.used = new Array<number>(agents).fill(0);
  }

  pod(frontend: string, serial: number): PodInput {
    const agent = this.next++ % this.agents;
    const host = ++this.used[agent]!;
    if (host > 254) throw new Error(`agent ${agentName(agent)} ran out of pod addresses in 10.42.${agent + 1}.0/24`);
    return {
      addresses: [`10.42.${agent + 1}.${host}`],
      conditions: { ready: true, serving: true, terminating: false },
      nodeName: agentName(agent),
      targetRef: { kind: 'Pod', namespace: 'default', name: podName(frontend, serial) },
    };
  }
}

export interface Fixture {
  readonly input: ResourceGroupInput;
  /**
   * The same input after one endpoint event: pod `replacedPod` of frontend `replacedFrontend`
   * is gone and a new pod (new name, new address) took its place.
   */
  readonly afterPodReplaced: ResourceGroupInput;
  readonly replacedFrontend: string;
  readonly replacedPod: string;
  readonly newPod: string;
}

export function buildFixture(settings: FixtureSettings): Fixture {
  const { agents, frontends, podsPerFrontend, users, sudoEvery } = settings;
  if (agents < 1 || agents > MAX_AGENTS) throw new Error(`agents must be between 1 and ${MAX_AGENTS}, got ${agents}`);

  const vms: VmInput[] = [
    vm('kube-server', ['k3s-server'], 2, 8192, { sizeGiB: 50, kind: 'ssd' }, '172.20.0.10', { publicAddresses: ['192.0.2.11'], fqdn: 'kube-server.bench.example.com' }),
    vm('web01', ['webgateway'], 2, 4096, { sizeGiB: 30, kind: 'hdd' }, '172.20.0.11', { publicAddresses: ['192.0.2.10'] }),
    vm('nfs01', ['k3s-nfs'], 1, 8192, { sizeGiB: 100, kind: 'ssd' }, '172.20.0.12'),
  ];
  for (let i = 0; i < agents; i++) vms.push(vm(agentName(i), ['k3s-agent'], 4, 8192, { sizeGiB: 30, kind: 'hdd' }, agentSrvAddress(i)));

  const allocator = new PodAllocator(agents);
  const frontendInputs: NonNullable<ResourceGroupInput['frontends']> = {};
  const endpoints: NonNullable<ResourceGroupInput['endpoints']> = [];
  const podLists: PodInput[][] = [];
  for (let f = 0; f < frontends; f++) {
    const name = frontendName(f);
    frontendInputs[name] = {
      binds: [`127.0.0.1:${FIRST_BIND_PORT + f}`],
      lbServicePort: FIRST_LB_PORT + f,
      podPort: POD_PORT,
      maxExpectedPods: podsPerFrontend,
    };
    const pods = Array.from({ length: podsPerFrontend }, (_, p) => allocator.pod(name, p));
    podLists.push(pods);
    endpoints.push({
      namespace: 'default',
      service: name,
      ports: [{ name: 'http', port: FIRST_LB_PORT + f, targetPort: POD_PORT, protocol: 'TCP' }],
      slices: [
        {
          metadata: { name: `${name}-x7k2p`, resourceVersion: String(4711 + f) },
          addressType: 'IPv4',
          ports: [{ name: 'http', port: POD_PORT, protocol: 'TCP' }],
          endpoints: pods,
        },
      ],
    });
  }

  const userInputs = Array.from({ length: users }, (_, u) => ({
    name: `user${pad(u, 3)}`,
    permissions: u % sudoEvery === 0 ? ['login', 'sudo-srv'] : ['login'],
  }));

  const input: ResourceGroupInput = {
    name: `bench-${agents}`,
    cluster: {},
    vms,
    users: userInputs,
    frontends: frontendInputs,
    endpoints,
    secrets: { clusterToken: CLUSTER_TOKEN, datastorePassword: 'bench-datastore-password-0123456789' },
  };

  // One endpoint event: the middle pod of the first frontend is replaced by a new one.
  const replacedFrontend = frontendName(0);
  const podIndex = Math.floor(podsPerFrontend / 2);
  const oldPod = podLists[0]![podIndex]!;
  const newPod = allocator.pod(replacedFrontend, podsPerFrontend + 1000);
  const afterEndpoints = endpoints.map((service, f) =>
    f !== 0
      ? service
      : { ...service, slices: service.slices!.map((slice) => ({ ...slice, metadata: { ...slice.metadata, resourceVersion: '9999' }, endpoints: podLists[0]!.map((pod, p) => (p === podIndex ? newPod : pod)) })) },
  );
  return {
    input,
    afterPodReplaced: { ...input, endpoints: afterEndpoints },
    replacedFrontend,
    replacedPod: `Pod/default/${oldPod.targetRef.name}`,
    newPod: `Pod/default/${newPod.targetRef.name}`,
  };
}
