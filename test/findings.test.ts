/** Each finding an operator can meet: its code, the subject it names, what it blocks. */
import { computeDesiredState } from '../shared/desired-state.ts';
import { type ResourceGroupInput, resourceGroupSchema } from '../shared/schema/resource-group.ts';
import type { VmInput } from '../shared/schema/vm.ts';
import { TOKEN } from './helpers/fixtures.ts';

const vm = (name: string, roles: string[], extra: Partial<VmInput> = {}): VmInput => ({
  name,
  roles,
  cpu: 4,
  memoryMiB: 8192,
  disks: [{ sizeGiB: 60, kind: 'ssd' }],
  srvAddresses: ['172.22.1.1'],
  ...extra,
});

function base(overrides: Partial<ResourceGroupInput> = {}): ResourceGroupInput {
  return {
    name: 'rg1',
    cluster: {},
    vms: [
      vm('gw1', ['webgateway'], { publicAddresses: ['192.0.2.1'], srvAddresses: ['172.22.0.1'] }),
      vm('srv1', ['k3s-server'], { srvAddresses: ['172.22.0.2'], fqdn: 'srv1.example.com' }),
      vm('agent1', ['k3s-agent'], { srvAddresses: ['172.22.0.3'] }),
    ],
    users: [{ name: 'alice', permissions: ['sudo-srv'] }],
    secrets: { clusterToken: TOKEN, datastorePassword: 'datastore-password-0123456789' },
    ...overrides,
  };
}

function plan(input: ResourceGroupInput) {
  return computeDesiredState(resourceGroupSchema.parse(input));
}

const codes = (input: ResourceGroupInput) => plan(input).findings.map((f) => f.code);

test('a sound reference cluster has no warnings or errors', () => {
  const state = plan(base());
  expect(state.findings.filter((f) => f.severity !== 'info')).toEqual([]);
  expect(state.blocked).toEqual([]);
  expect(state.documents.map((d) => d.vm)).toEqual(['agent1', 'gw1', 'srv1']);
});

test('resources under the spec minimum are a warning naming the VM, the shortfall and the minimum', () => {
  const input = base();
  input.vms![2] = vm('agent1', ['k3s-agent'], { cpu: 2, memoryMiB: 4096, disks: [{ sizeGiB: 20, kind: 'hdd' }], srvAddresses: ['172.22.0.3'] });
  input.vms![1] = vm('srv1', ['k3s-server'], { disks: [{ sizeGiB: 100, kind: 'hdd' }], srvAddresses: ['172.22.0.2'] });
  const state = plan(input);
  const below = state.findings.filter((f) => f.code === 'resources.below-minimum');
  expect(below.map((f) => [f.severity, f.subject.name])).toEqual([
    ['warning', 'agent1'],
    ['warning', 'srv1'],
  ]);
  expect(below[0]!.message).toBe("agent1 (k3s-agent) has 2 CPU (needs 4), 4 GiB RAM (needs 8 GiB), 20 GiB disk (needs 30); the spec's minimum is 4 CPU, 8 GiB RAM, 30 GiB disk.");
  expect(below[1]!.message).toContain('0 GiB SSD (needs 30)');
  expect(state.blocked).toEqual([]);
});

test('a missing k3s-server blocks every cluster VM, and a VM without roles still gets its empty document', () => {
  const input = base();
  input.vms = [input.vms![0]!, input.vms![2]!, vm('other', ['postgresql'])];
  const state = plan(input);
  expect(state.findings.find((f) => f.code === 'server.missing')?.blocks).toEqual(['agent1', 'gw1']);
  expect(state.documents.map((d) => d.vm)).toEqual(['other']);
  expect(state.documents[0]).toMatchObject({ roles: [], files: [], services: [] });
});

test('two k3s-servers block the cluster until one is left', () => {
  const input = base();
  input.vms!.push(vm('srv2', ['k3s-server'], { srvAddresses: ['172.22.0.9'] }));
  const finding = plan(input).findings.find((f) => f.code === 'server.duplicate');
  expect(finding?.message).toContain('srv1, srv2');
  expect(finding?.blocks).toEqual(['agent1', 'gw1', 'srv1', 'srv2']);
});

test('a k3s-agent with a public address is an error that blocks only that agent', () => {
  const input = base();
  input.vms!.push(vm('agent2', ['k3s-agent'], { publicAddresses: ['192.0.2.99'], srvAddresses: ['172.22.0.4'] }));
  const state = plan(input);
  expect(state.findings.find((f) => f.code === 'agent.public-address')).toMatchObject({ severity: 'error', subject: { kind: 'vm', name: 'agent2' }, blocks: ['agent2'] });
  expect(state.blocked).toEqual([{ vm: 'agent2', reasons: ['agent.public-address'] }]);
});

test('server and agent role on one VM is refused for that VM', () => {
  const input = base();
  input.vms![1] = vm('srv1', ['k3s-server', 'k3s-agent'], { srvAddresses: ['172.22.0.2'] });
  const finding = plan(input).findings.find((f) => f.code === 'roles.conflict');
  expect(finding?.message).toContain('srv1 has the roles k3s-agent and k3s-server');
  expect(finding?.blocks).toEqual(['srv1']);
});

describe('frontends', () => {
  test('a frontend naming no port blocks the webgateway', () => {
    const finding = plan(base({ frontends: { web: { binds: ['127.0.0.1:8080'] } } })).findings.find((f) => f.code === 'frontend.no-port');
    expect(finding).toMatchObject({ subject: { kind: 'frontend', name: 'web' }, blocks: ['gw1'] });
  });

  test('servicePort together with podPort or lbServicePort is refused', () => {
    const finding = plan(base({ frontends: { web: { servicePort: 80, podPort: 8080 } } })).findings.find((f) => f.code === 'frontend.exclusive-ports');
    expect(finding?.message).toBe('Frontend web sets servicePort together with podPort; servicePort excludes the others, choose one.');
  });

  test('podPort with lbServicePort is the spec scenario and fine', () => {
    expect(codes(base({ frontends: { web: { lbServicePort: 7654, podPort: 8888 } } }))).not.toContain('frontend.exclusive-ports');
  });

  test('binds that collide between frontends, including wildcards, block the webgateway', () => {
    const state = plan(base({ frontends: { a: { binds: ['127.0.0.1:8080'], podPort: 1 }, b: { binds: ['*:8080'], podPort: 2 }, c: { binds: ['127.0.0.1:8081'], podPort: 3 } } }));
    const conflicts = state.findings.filter((f) => f.code === 'frontend.bind-conflict');
    expect(conflicts.map((f) => f.message)).toEqual(['Frontend b binds *:8080, which collides with 127.0.0.1:8080 of frontend a.']);
    expect(state.blocked.map((b) => b.vm)).toEqual(['gw1']);
  });

  test('a default bind (127.0.0.1:<lbServicePort>) can collide too', () => {
    expect(codes(base({ frontends: { a: { lbServicePort: 7654 }, b: { binds: ['127.0.0.1:7654'], podPort: 1 } } }))).toContain('frontend.bind-conflict');
  });

  test('a bind on an address the webgateway does not have is refused for that gateway', () => {
    const finding = plan(base({ frontends: { a: { binds: ['192.0.124.96:443'], podPort: 8443 } } })).findings.find((f) => f.code === 'frontend.bind-foreign-address');
    expect(finding?.message).toBe('Frontend a binds 192.0.124.96:443, but webgateway gw1 has no address 192.0.124.96.');
  });

  test("a bind on nginx's port 443 of the public address collides when nginx serves virtual hosts", () => {
    const frontends = { a: { binds: ['192.0.2.1:443'], mode: 'tcp' as const, podPort: 8443 }, b: { podPort: 8080, virtualHosts: { 'b.example.com': { forceSSL: true } } } };
    expect(codes(base({ frontends }))).toContain('frontend.bind-nginx-conflict');
  });

  test('the same virtual host on two frontends is refused', () => {
    const frontends = { a: { podPort: 1, virtualHosts: { 'x.example.com': {} } }, b: { podPort: 2, virtualHosts: { 'X.example.com': {} } } };
    expect(codes(base({ frontends }))).toContain('frontend.vhost-duplicate');
  });

  test('frontends without a webgateway are a warning', () => {
    const input = base({ frontends: { a: { podPort: 1 } } });
    input.vms = input.vms!.filter((v) => v.name !== 'gw1');
    expect(plan(input).findings.find((f) => f.code === 'webgateway.missing')?.severity).toBe('warning');
  });
});

describe('network', () => {
  test('overlapping cluster and service networks block the cluster', () => {
    const state = plan(base({ cluster: { network: { clusterCidr: '10.42.0.0/16', serviceCidr: '10.42.128.0/17', clusterDns: '10.42.128.10' } } }));
    const finding = state.findings.find((f) => f.code === 'network.cidr-overlap');
    expect(finding?.message).toBe('The IPv4 cluster network 10.42.0.0/16 overlaps the service network 10.42.128.0/17.');
    expect(state.documents.filter((d) => d.roles.length > 0)).toEqual([]);
  });

  test('a network too small for the VM count blocks the agents, not the gateway', () => {
    const input = base({ cluster: { network: { clusterCidr: '10.42.0.0/23', nodeCidrMaskSize: 24 } } });
    const state = plan(input);
    const finding = state.findings.find((f) => f.code === 'network.too-small');
    expect(finding?.message).toBe('The IPv4 cluster network 10.42.0.0/23 with a /24 per node holds 2 nodes, but 3 VMs run k3s; new agents cannot join until the network is larger.');
    expect(finding?.blocks).toEqual(['agent1']);
  });

  test("the spec's default network holds 253 nodes and more", () => {
    const input = base();
    for (let i = 0; i < 250; i++) input.vms!.push(vm(`a${i}`, ['k3s-agent'], { srvAddresses: [`172.23.${Math.floor(i / 200)}.${(i % 200) + 1}`] }));
    expect(codes(input)).not.toContain('network.too-small');
  });

  test('cluster DNS outside the service network is refused', () => {
    expect(codes(base({ cluster: { network: { clusterDns: '10.42.0.10' } } }))).toContain('network.dns-outside-services');
  });

  test('a VM address inside the cluster network is refused', () => {
    const input = base();
    input.vms![2] = vm('agent1', ['k3s-agent'], { srvAddresses: ['10.42.7.7'] });
    expect(plan(input).findings.find((f) => f.code === 'network.cidr-overlaps-vm')?.message).toContain("agent1's address 10.42.7.7 lies inside the cluster's 10.42.0.0/16");
  });

  test('dual-stack needs an IPv6 srv address on every node', () => {
    const state = plan(base({ cluster: { network: { dualStack: {} } } }));
    expect(state.findings.filter((f) => f.code === 'network.dual-stack-address').map((f) => f.subject.name)).toEqual(['agent1', 'gw1', 'srv1']);
  });
});

test('without a cluster token no node document is produced', () => {
  const state = plan(base({ secrets: {} }));
  expect(state.findings.find((f) => f.code === 'secrets.cluster-token-missing')?.blocks).toEqual(['agent1', 'gw1', 'srv1']);
});

test('VMs with Kubernetes roles but no provisioned cluster are blocked', () => {
  const input = base();
  delete input.cluster;
  expect(plan(input).findings.map((f) => f.code)).toEqual(['cluster.not-provisioned']);
});

test('maintenance drains one agent at a time, earliest request first, and never the server', () => {
  const input = base();
  input.vms!.push(
    vm('agent2', ['k3s-agent'], { srvAddresses: ['172.22.0.5'], maintenance: { state: 'requested', requestedAt: '2026-11-24T10:00:00Z' } }),
    vm('agent3', ['k3s-agent'], { srvAddresses: ['172.22.0.6'], maintenance: { state: 'requested', requestedAt: '2026-11-24T09:00:00Z' } }),
  );
  input.vms![1] = { ...input.vms![1]!, maintenance: { state: 'requested' } };
  const state = plan(input);
  const server = state.documents.find((d) => d.vm === 'srv1');
  expect(server?.kubernetes?.drainNodes).toEqual(['agent3']);
  expect(state.findings.filter((f) => f.code.startsWith('maintenance.')).map((f) => `${f.code} ${f.subject.name}`)).toEqual([
    'maintenance.waiting agent2',
    'maintenance.draining agent3',
    'maintenance.not-drained srv1',
  ]);
});

describe('input that would end up in generated configs is held to a single safe line', () => {
  const parse = (input: ResourceGroupInput) => resourceGroupSchema.safeParse(input);
  test.each([
    ['haproxyExtraConfig', { podPort: 1, haproxyExtraConfig: 'maxconn 5\nlisten evil' }],
    ['haproxyExtraConfig', { podPort: 1, haproxyExtraConfig: 'maxconn 5; shutdown sessions' }],
    ['extraPodTemplateOptions', { podPort: 1, extraPodTemplateOptions: 'check "unbalanced' }],
  ])('%s with a newline, ";" or a quote is refused', (field, frontend) => {
    const result = parse(base({ frontends: { web: frontend } }));
    expect(result.success).toBe(false);
    expect(result.error!.issues[0]!.path).toEqual(['frontends', 'web', field]);
  });

  test('proxyPass with an nginx variable is refused', () => {
    const result = parse(base({ frontends: { web: { podPort: 1, virtualHosts: { 'a.example.com': { locations: { '/': { proxyPass: 'http://$arg_target' } } } } } } }));
    expect(result.error!.issues[0]!.path).toEqual(['frontends', 'web', 'virtualHosts', 'a.example.com', 'locations', '/', 'proxyPass']);
  });

  test('endpoint addresses and pod names must be what Kubernetes allows', () => {
    const slice = (address: string, name: string) => ({
      namespace: 'default',
      service: 'web',
      slices: [{ metadata: { name: 's1' }, addressType: 'IPv4' as const, endpoints: [{ addresses: [address], targetRef: { kind: 'Pod', name } }] }],
    });
    expect(parse(base({ endpoints: [slice('10.42.0.1', 'web-1')] })).success).toBe(true);
    expect(parse(base({ endpoints: [slice('10.42.0.1 backup\nlisten x', 'web-1')] })).success).toBe(false);
    expect(parse(base({ endpoints: [slice('10.42.0.1', 'web-1\nlisten injected')] })).success).toBe(false);
  });
});
