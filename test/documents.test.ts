/** What each role's VM gets: k3s configs, manifests, exports, tasks; hashes that verify. */
import { readFileSync } from 'node:fs';
import { DEFAULT_LAYOUT, layoutUnder } from '../shared/layout.ts';
import { beyondRoles, serviceCommands } from '../shared/services.ts';
import { parse } from 'yaml';
import { type InputError, parseResourceGroup } from '../cli/input.ts';
import { computeDesiredState } from '../shared/desired-state.ts';
import { hasValidHash } from '../shared/contract/document-envelope.ts';
import { vmDocumentSchema } from '../shared/schema/document.ts';
import { DATASTORE_PASSWORD, documentOf, example, fileOf, ROOT, TOKEN, WEBHOOK_KEY } from './helpers/fixtures.ts';

const state = computeDesiredState(example('scenario-1-http'), { apiUrl: 'https://ringmaster.example.com' });
const doc = (vm: string) => documentOf(state.documents, vm);

test('every document passes its own schema and carries a hash of its content', () => {
  for (const document of state.documents) {
    expect(vmDocumentSchema.parse(document)).toEqual(document);
    expect(hasValidHash(document)).toBe(true);
    expect(hasValidHash({ ...document, pollIntervalSeconds: 99 })).toBe(false);
  }
});

test('the k3s server: PostgreSQL datastore, flannel host-gw on the srv interface, CIDRs, DNS, taint, token file', () => {
  const config = parse(fileOf(doc('kube01'), '/etc/rancher/k3s/config.yaml'));
  expect(config).toMatchObject({
    'node-name': 'kube01',
    'node-ip': '172.22.48.11',
    'flannel-backend': 'host-gw',
    'flannel-iface': 'ethsrv',
    'cluster-cidr': '10.42.0.0/16',
    'service-cidr': '10.43.0.0/16',
    'cluster-dns': '10.43.0.10',
    'datastore-endpoint': expect.stringMatching(/^postgres:\/\//),
    'token-file': '/var/lib/ringmaster/k3s-token',
    'agent-token-file': '/var/lib/ringmaster/k3s-agent-token',
    'node-taint': ['node-role.kubernetes.io/control-plane=true:NoSchedule'],
    'kube-controller-manager-arg': ['node-cidr-mask-size=24'],
    'kube-proxy-arg': ['nodeport-addresses=172.22.48.11/32,127.0.0.0/8'],
  });
  expect(config['tls-san']).toEqual(expect.arrayContaining(['kube01.demo.example.com', '192.0.2.11']));
  expect(doc('kube01').files.find((f) => f.path === '/var/lib/ringmaster/k3s-token')).toMatchObject({ mode: '0600', secret: true, content: `${TOKEN}\n` });
});

test('the server deploys an NFS provisioner with its StorageClass per k3s-nfs VM, and the dashboard', () => {
  const nfs = parse(fileOf(doc('kube01'), 'ringmaster-nfs-nfs01.yaml'));
  expect(nfs).toMatchObject({ kind: 'HelmChart', spec: { chart: 'nfs-subdir-external-provisioner' } });
  expect(parse(nfs.spec.valuesContent)).toMatchObject({ nfs: { server: '172.22.48.14', path: '/srv/nfs/kubernetes' }, storageClass: { name: 'nfs-nfs01' } });
  expect(parse(fileOf(doc('kube01'), 'ringmaster-dashboard.yaml'))).toMatchObject({ spec: { chart: 'kubernetes-dashboard' } });
  expect(fileOf(doc('kube01'), 'nginx.conf')).toContain('server_name kube01.demo.example.com;');
});

test("the server's own PostgreSQL is prepared before k3s starts, with a password only the server's document holds", () => {
  const server = doc('kube01');
  expect(server.services.map((s) => s.name)).toEqual(['postgresql', 'nftables', 'k3s', 'nginx']);
  const endpoint = parse(fileOf(server, '/etc/rancher/k3s/config.yaml'))['datastore-endpoint'] as string;
  expect(endpoint).toBe(`postgres://kubernetes:${DATASTORE_PASSWORD}@127.0.0.1:5432/kubernetes?sslmode=disable`);
  expect(fileOf(server, 'k3s-datastore.sql')).toContain(`ALTER ROLE kubernetes WITH LOGIN PASSWORD '${DATASTORE_PASSWORD}';`);
  expect(server.files.filter((f) => f.content.includes(DATASTORE_PASSWORD)).map((f) => [f.path, f.secret, f.mode])).toEqual([
    ['/etc/rancher/k3s/config.yaml', true, '0600'],
    ['/var/lib/ringmaster/k3s-datastore.sql', true, '0600'],
  ]);
  for (const other of state.documents.filter((d) => d.vm !== 'kube01')) expect(JSON.stringify(other)).not.toContain(DATASTORE_PASSWORD);
});

test('without a datastore password and without an external datastore the server is withheld', () => {
  const rg = example('reference-architecture');
  const result = computeDesiredState({ ...rg, secrets: { ...rg.secrets, datastorePassword: undefined } });
  expect(result.blocked).toEqual([{ vm: 'kube01', reasons: ['secrets.datastore-password-missing'] }]);
});

test('an external datastore is used as given, and nothing is prepared locally', () => {
  const rg = example('reference-architecture');
  const external = { ...rg, cluster: { ...rg.cluster!, datastoreEndpoint: 'postgres://k3s:pw@db.example.com:5432/k3s' } };
  const server = documentOf(computeDesiredState(external).documents, 'kube01');
  expect(parse(fileOf(server, 'config.yaml'))['datastore-endpoint']).toBe('postgres://k3s:pw@db.example.com:5432/k3s');
  expect(server.services.map((s) => s.name)).not.toContain('postgresql');
});

test("the server's tasks: sudo-srv users, an API URL that works from outside, the watched services, where to call the control plane", () => {
  expect(doc('kube01').kubernetes).toEqual({
    accessUsers: ['alice'],
    kubeconfigRequests: [],
    kubeconfigTtlHours: 12,
    apiServerUrl: 'https://kube01.demo.example.com:6443',
    watchedServices: [{ namespace: 'default', service: 'myapp' }],
    drainNodes: [],
    drainTimeoutSeconds: 600,
    controlPlane: { apiUrl: 'https://ringmaster.example.com', keyFile: '/var/lib/ringmaster/webhook-key' },
  });
  expect(fileOf(doc('kube01'), 'webhook-key')).toBe(`${WEBHOOK_KEY}\n`);
});

test('kubeconfigs can live as short as Kubernetes allows (10 minutes, 1/6 hour); shorter is refused with the reason', () => {
  const path = `${ROOT}examples/scenario-1-http.yaml`;
  const withTtl = (hours: number) => readFileSync(path, 'utf8').replace('cluster:\n', `cluster:\n  kubeconfigTtlHours: ${hours}\n`);
  const tenMinutes = parseResourceGroup(path, withTtl(0.1667));
  const server = documentOf(computeDesiredState({ ...tenMinutes, secrets: example('scenario-1-http').secrets }).documents, 'kube01');
  expect(server.kubernetes?.kubeconfigTtlHours).toBe(0.1667);
  const refused = (() => {
    try {
      parseResourceGroup(path, withTtl(0.15));
      return [];
    } catch (error) {
      return (error as InputError).lines;
    }
  })();
  expect(refused).toEqual([`${path}: cluster.kubeconfigTtlHours: must be at least 10 minutes (1/6 hour, e.g. 0.1667): Kubernetes issues no shorter token`]);
});

test('agents join the server over the srv network with the agent token; the webgateway joins tainted', () => {
  const agent = parse(fileOf(doc('kube02'), 'config.yaml'));
  expect(agent).toMatchObject({ server: 'https://172.22.48.11:6443', 'token-file': '/var/lib/ringmaster/k3s-token', 'node-ip': '172.22.48.12', 'flannel-iface': 'ethsrv' });
  expect(agent['node-taint']).toBeUndefined();
  const gateway = parse(fileOf(doc('web01'), '/etc/rancher/k3s/config.yaml'));
  expect(gateway).toMatchObject({ server: 'https://172.22.48.11:6443', 'node-taint': ['node-role.kubernetes.io/control-plane=true:NoSchedule'] });
});

test('only the server holds the server token: agents and the internet-facing webgateway join with the agent token, which the server accepts', () => {
  const agentToken = fileOf(doc('kube01'), '/var/lib/ringmaster/k3s-agent-token');
  expect(agentToken).toMatch(/^[0-9a-f]{64}\n$/);
  expect(agentToken).not.toContain(TOKEN);
  for (const vm of ['kube02', 'kube03', 'web01']) {
    expect([vm, fileOf(doc(vm), '/var/lib/ringmaster/k3s-token')]).toEqual([vm, agentToken]);
    expect([vm, JSON.stringify(doc(vm)).includes(TOKEN)]).toEqual([vm, false]);
    expect(doc(vm).files.find((f) => f.path.endsWith('k3s-token'))).toMatchObject({ mode: '0600', secret: true });
  }
  // Stable for the cluster: the same server token always gives the same agent token, another one another.
  expect(fileOf(documentOf(computeDesiredState(example('scenario-1-http')).documents, 'web01'), 'k3s-token')).toBe(agentToken);
  const other = example('scenario-1-http');
  const rotated = computeDesiredState({ ...other, secrets: { ...other.secrets, clusterToken: `${TOKEN}-other` } });
  expect(fileOf(documentOf(rotated.documents, 'web01'), 'k3s-token')).not.toBe(agentToken);
});

test('NodePorts open on each node\'s srv address (and loopback) only, never on the public addresses of the server or the webgateway', () => {
  const expected: Record<string, string> = { kube01: '172.22.48.11/32', kube02: '172.22.48.12/32', kube03: '172.22.48.13/32', web01: '172.22.48.10/32' };
  for (const [vm, srv] of Object.entries(expected)) {
    const config = parse(fileOf(doc(vm), '/etc/rancher/k3s/config.yaml'));
    expect([vm, config['kube-proxy-arg']]).toEqual([vm, [`nodeport-addresses=${srv},127.0.0.0/8`]]);
    for (const address of example('scenario-1-http').vms.find((v) => v.name === vm)!.publicAddresses) {
      expect(config['kube-proxy-arg'].join(',')).not.toContain(address);
    }
  }
});

/**
 * The tolerations k3s gives every ServiceLB (svclb) DaemonSet, as in its source
 * (k3s-io/k3s pkg/cloudprovider/servicelb.go, newDaemonSet): our taint must be one of them, or no
 * load-balancer port answers on the server and the webgateway.
 */
const SERVICELB_TOLERATIONS = [
  { key: 'node-role.kubernetes.io/master', operator: 'Exists', effect: 'NoSchedule' },
  { key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' },
  { key: 'CriticalAddonsOnly', operator: 'Exists' },
] as const;

test("k3s' service load balancer runs on the tainted server and webgateway: every taint we set is one its DaemonSets tolerate", () => {
  for (const vm of ['kube01', 'web01']) {
    const taints: string[] = parse(fileOf(doc(vm), '/etc/rancher/k3s/config.yaml'))['node-taint'];
    expect(taints.length).toBeGreaterThan(0);
    for (const taint of taints) {
      const [, key, effect] = /^([^=:]+)(?:=[^:]*)?:(\w+)$/.exec(taint) ?? [];
      const tolerated = SERVICELB_TOLERATIONS.some((t) => t.key === key && (!('effect' in t) || t.effect === effect));
      expect([vm, taint, tolerated]).toEqual([vm, taint, true]);
    }
  }
});

test('the NFS VM exports its folder to every agent', () => {
  expect(fileOf(doc('nfs01'), 'kubernetes.exports')).toContain(
    '/srv/nfs/kubernetes 172.22.48.12(rw,sync,no_subtree_check,no_root_squash) 172.22.48.13(rw,sync,no_subtree_check,no_root_squash)',
  );
  // The document names the service; how it is reloaded is the agent's (`exportfs -ra`).
  expect(doc('nfs01').services).toEqual([{ name: 'nfs', files: ['/etc/exports.d/kubernetes.exports'] }]);
  expect(serviceCommands(DEFAULT_LAYOUT).nfs.reload).toEqual(['exportfs', '-ra']);
});

test('webgateways poll fast, other VMs slowly', () => {
  expect(doc('web01').pollIntervalSeconds).toBe(1);
  expect(doc('kube02').pollIntervalSeconds).toBe(30);
});

test('dual-stack: both families in the server config and the per-family node masks', () => {
  const rg = example('reference-architecture');
  const dual = {
    ...rg,
    cluster: { ...rg.cluster!, network: { ...rg.cluster!.network, dualStack: { clusterCidr: 'fd42::/56', serviceCidr: 'fd43::/112', nodeCidrMaskSize: 64 } } },
    vms: rg.vms.map((vm, i) => ({ ...vm, srvAddresses: [...vm.srvAddresses, `2001:db8::${i + 1}`] })),
  };
  const result = computeDesiredState(dual);
  expect(result.blocked).toEqual([]);
  const config = parse(fileOf(documentOf(result.documents, 'kube01'), 'config.yaml'));
  expect(config['cluster-cidr']).toBe('10.42.0.0/16,fd42::/56');
  expect(config['node-ip']).toBe('172.22.48.11,2001:db8::2');
  expect(config['kube-controller-manager-arg']).toEqual(['node-cidr-mask-size-ipv4=24', 'node-cidr-mask-size-ipv6=64']);
});

test("every rendered document stays within its roles' services and folders (what the agent accepts), here and under a root", () => {
  for (const layout of [DEFAULT_LAYOUT, layoutUnder('/tmp/vm-root')]) {
    for (const name of ['reference-architecture', 'scenario-1-http', 'scenario-2-tcp', 'configuration-reference']) {
      for (const document of computeDesiredState(example(name), { layout, apiUrl: 'https://cp.example.com' }).documents) {
        expect([name, document.vm, beyondRoles(document, layout)]).toEqual([name, document.vm, undefined]);
      }
    }
  }
  const web = doc('web01');
  expect(beyondRoles({ ...web, roles: ['k3s-agent'] }, DEFAULT_LAYOUT)).toMatch(/service\(s\) nftables, haproxy(, nginx)?, which its roles \(k3s-agent\) do not run/);
  expect(beyondRoles({ ...web, files: [{ path: '/etc/haproxy/../shadow' }] }, DEFAULT_LAYOUT)).toMatch(/writes \/etc\/haproxy\/\.\.\/shadow, outside/);
  expect(beyondRoles({ ...web, directories: [{ path: '/etc/haproxyx' }] }, DEFAULT_LAYOUT)).toMatch(/outside/);
});
