/** Properties over generated resource groups: determinism, and secrets only where they belong. */
import fc from 'fast-check';
import { computeDesiredState } from '../shared/desired-state.ts';
import { canonicalJson } from '../shared/hash.ts';
import { NODE_ROLES } from '../shared/roles.ts';
import { resourceGroupSchema, type ResourceGroup } from '../shared/schema/resource-group.ts';

const TOKEN = 'prop-token-5f1c2a9be7d34c08a1f0';
const KEY = 'prop-webhook-key-93ab71cc02de4f';
const DB_PASSWORD = 'prop-datastore-password-7c1e0d2a';
const ROLE_SETS = [[], ['webgateway'], ['k3s-server'], ['k3s-agent'], ['k3s-nfs'], ['postgresql'], ['k3s-agent', 'k3s-nfs'], ['k3s-server', 'k3s-agent']];

const vmArb = fc.record({
  roles: fc.constantFrom(...ROLE_SETS),
  cpu: fc.integer({ min: 1, max: 16 }),
  memoryMiB: fc.integer({ min: 1024, max: 65536 }),
  disks: fc.array(fc.record({ sizeGiB: fc.integer({ min: 1, max: 500 }), kind: fc.constantFrom('ssd' as const, 'hdd' as const) }), { maxLength: 2 }),
  publicAddress: fc.boolean(),
  maintenance: fc.boolean(),
});

const podArb = fc.record({ ready: fc.boolean(), terminating: fc.boolean() });

const rgArb = fc
  .record({
    vms: fc.array(vmArb, { minLength: 1, maxLength: 8 }),
    automatic: fc.boolean(),
    frontends: fc.array(fc.record({ mode: fc.constantFrom('http' as const, 'tcp' as const), podPort: fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }), lbServicePort: fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }), vhost: fc.boolean() }), { maxLength: 4 }),
    pods: fc.array(podArb, { maxLength: 12 }),
    withWebhook: fc.boolean(),
  })
  .map(({ vms, automatic, frontends, pods, withWebhook }): ResourceGroup =>
    resourceGroupSchema.parse({
      name: 'prop',
      cluster: { roleAssignment: automatic ? 'automatic' : 'manual' },
      vms: vms.map((vm, i) => ({
        name: `vm${i}`,
        roles: vm.roles,
        cpu: vm.cpu,
        memoryMiB: vm.memoryMiB,
        disks: vm.disks,
        srvAddresses: [`172.22.0.${i + 1}`],
        publicAddresses: vm.publicAddress ? [`192.0.2.${i + 1}`] : [],
        maintenance: vm.maintenance ? { state: 'requested', requestedAt: `2026-11-24T10:0${i}:00Z` } : { state: 'none' },
      })),
      users: [{ name: 'alice', permissions: ['sudo-srv'] }],
      frontends: Object.fromEntries(
        frontends.map((f, i) => [`fe${i}`, { binds: [`127.0.0.1:${9000 + i}`], mode: f.mode, podPort: f.podPort, lbServicePort: f.lbServicePort, ...(f.vhost ? { virtualHosts: { [`fe${i}.example.com`]: { forceSSL: true } } } : {}) }]),
      ),
      endpoints: [
        {
          namespace: 'default',
          service: 'fe0',
          slices: [{ metadata: { name: 's' }, addressType: 'IPv4', endpoints: pods.map((p, i) => ({ addresses: [`10.42.0.${i + 1}`], conditions: { ready: p.ready, serving: p.ready || p.terminating, terminating: p.terminating }, targetRef: { kind: 'Pod', name: `pod${i}` } })) }],
        },
      ],
      secrets: { clusterToken: TOKEN, datastorePassword: DB_PASSWORD, ...(withWebhook ? { webhookKey: KEY } : {}) },
    }),
  );

test('identical input gives byte-identical documents, whatever the order of VMs and frontends', () => {
  fc.assert(
    fc.property(rgArb, (rg) => {
      const shuffled = { ...rg, vms: [...rg.vms].reverse(), frontends: Object.fromEntries(Object.entries(rg.frontends).reverse()) };
      const a = computeDesiredState(rg, { apiUrl: 'https://cp.example.com' });
      const b = computeDesiredState(shuffled, { apiUrl: 'https://cp.example.com' });
      expect(canonicalJson(b)).toBe(canonicalJson(a));
      expect(JSON.stringify(b.documents)).toBe(JSON.stringify(a.documents));
    }),
    { numRuns: 150 },
  );
});

test('the cluster token is only in server, agent and webgateway documents; the webhook key only in the server\'s', () => {
  fc.assert(
    fc.property(rgArb, (rg) => {
      const state = computeDesiredState(rg, { apiUrl: 'https://cp.example.com' });
      for (const document of state.documents) {
        const text = JSON.stringify(document);
        const isNode = document.roles.some((role) => NODE_ROLES.includes(role));
        if (!isNode) expect(text).not.toContain(TOKEN);
        if (!document.roles.includes('k3s-server')) expect(text).not.toContain(KEY);
        if (!document.roles.includes('k3s-server')) expect(text).not.toContain(DB_PASSWORD);
        for (const file of document.files) {
          if (file.content.includes(TOKEN) || file.content.includes(KEY) || file.content.includes(DB_PASSWORD)) expect(file).toMatchObject({ secret: true, mode: '0600' });
        }
      }
      expect(JSON.stringify(state.findings)).not.toContain(TOKEN);
    }),
    { numRuns: 200 },
  );
});

test('every VM of the group gets exactly one outcome: a document or a blocking reason', () => {
  fc.assert(
    fc.property(rgArb, (rg) => {
      const state = computeDesiredState(rg);
      const outcomes = [...state.documents.map((d) => d.vm), ...state.blocked.map((b) => b.vm)].sort();
      expect(outcomes).toEqual(rg.vms.map((vm) => vm.name).sort());
      for (const blocked of state.blocked) expect(blocked.reasons.length).toBeGreaterThan(0);
    }),
    { numRuns: 150 },
  );
});
