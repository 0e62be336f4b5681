/** Automatic role assignment: follows the spec's minimums, explains itself, never changes a given role. */
import { assignRoles } from '../shared/role-assignment.ts';
import { computeDesiredState } from '../shared/desired-state.ts';
import { resourceGroupSchema } from '../shared/schema/resource-group.ts';
import type { VmInput } from '../shared/schema/vm.ts';
import { TOKEN } from './helpers/fixtures.ts';

let n = 0;
const vm = (name: string, cpu: number, memGiB: number, disk: [number, 'ssd' | 'hdd'], extra: Partial<VmInput> = {}): VmInput => ({
  name,
  cpu,
  memoryMiB: memGiB * 1024,
  disks: [{ sizeGiB: disk[0], kind: disk[1] }],
  srvAddresses: [`172.22.0.${++n}`],
  ...extra,
});

const rg = (vms: VmInput[], nfs = false, roleAssignment: 'automatic' | 'manual' = 'automatic') =>
  resourceGroupSchema.parse({ name: 'auto', cluster: { roleAssignment, nfs }, vms, secrets: { clusterToken: TOKEN, datastorePassword: 'datastore-password-0123456789' } });

const roleMap = (vms: ReadonlyArray<{ name: string; roles: string[] }>) => Object.fromEntries(vms.map((v) => [v.name, v.roles.join(',')]));

test('the reference architecture is assigned from bare VMs, each choice explained', () => {
  const result = assignRoles(
    rg(
      [
        vm('vm01', 1, 4, [30, 'hdd'], { publicAddresses: ['192.0.2.1'] }),
        vm('vm02', 2, 8, [30, 'ssd'], { publicAddresses: ['192.0.2.2'] }),
        vm('vm03', 4, 8, [30, 'hdd']),
        vm('vm04', 4, 16, [30, 'hdd']),
        vm('vm05', 1, 8, [50, 'ssd']),
      ],
      true,
    ),
  );
  expect(roleMap(result.vms)).toEqual({ vm01: 'webgateway', vm02: 'k3s-server', vm03: 'k3s-agent', vm04: 'k3s-agent', vm05: 'k3s-nfs' });
  const explained = result.findings.filter((f) => f.code === 'roles.assigned').map((f) => f.message);
  expect(explained).toContain('vm02 became k3s-server: it meets the k3s-server minimum (2 CPU, 8 GiB RAM, 30 GiB SSD) and has a public address for the dashboard.');
  expect(explained).toContain('vm01 became webgateway: it has a public address and meets the webgateway minimum (1 CPU, 4 GiB RAM, 30 GiB disk).');
  expect(explained).toHaveLength(5);
});

test('a role a VM already has is never changed, and VMs with other roles are left alone', () => {
  const result = assignRoles(
    rg([
      vm('srv', 2, 8, [30, 'hdd'], { roles: ['k3s-server'] }),
      vm('big', 16, 64, [500, 'ssd']),
      vm('db', 8, 32, [100, 'ssd'], { roles: ['postgresql'] }),
    ]),
  );
  expect(roleMap(result.vms)).toEqual({ srv: 'k3s-server', big: 'k3s-agent', db: 'postgresql' });
});

test('the server needs an SSD; when no VM fits, the finding says why for each VM', () => {
  const result = assignRoles(rg([vm('vm1', 4, 8, [100, 'hdd']), vm('vm2', 1, 2, [10, 'ssd'])]));
  const finding = result.findings.find((f) => f.code === 'roles.no-candidate' && f.message.includes('k3s-server'));
  expect(finding?.message).toBe(
    'No VM without roles can take the k3s-server role (2 CPU, 8 GiB RAM, 30 GiB SSD): vm1 has 0 GiB SSD (needs 30); vm2 has 1 CPU (needs 2), 2 GiB RAM (needs 8 GiB), 10 GiB SSD (needs 30).',
  );
  expect(roleMap(result.vms).vm1).toBe('k3s-agent');
});

test('agents never get public addresses; a VM with one and no other use stays unassigned, with a reason', () => {
  const result = assignRoles(
    rg([vm('gw', 1, 4, [30, 'hdd'], { publicAddresses: ['192.0.2.1'] }), vm('srv', 2, 8, [30, 'ssd']), vm('pub', 8, 16, [100, 'hdd'], { publicAddresses: ['192.0.2.2'] })]),
  );
  expect(roleMap(result.vms).pub).toBe('');
  expect(result.findings.find((f) => f.subject.name === 'pub')?.message).toBe('pub was given no role: it has a public address and k3s agents never get one.');
});

test('manual assignment assigns nothing', () => {
  const result = assignRoles(rg([vm('vm1', 4, 8, [100, 'ssd'])], false, 'manual'));
  expect(result.assignments).toEqual([]);
  expect(roleMap(result.vms).vm1).toBe('');
});

test('assigned roles reach the desired state and are reported for persisting', () => {
  const state = computeDesiredState(
    rg([vm('vm01', 1, 4, [30, 'hdd'], { publicAddresses: ['192.0.2.1'] }), vm('vm02', 2, 8, [30, 'ssd']), vm('vm03', 4, 8, [30, 'hdd'])]),
  );
  expect(state.assignments.map((a) => `${a.vm}=${a.role}`)).toEqual(['vm02=k3s-server', 'vm01=webgateway', 'vm03=k3s-agent']);
  expect(state.documents.map((d) => `${d.vm}:${d.roles.join(',')}`)).toEqual(['vm01:webgateway', 'vm02:k3s-server', 'vm03:k3s-agent']);
  expect(state.blocked).toEqual([]);
});
