/**
 * "All traffic from outside the resource group must pass through the webgateway": the server and
 * the webgateway (the VMs with public addresses) refuse connections from outside the srv network
 * that k3s would forward into the cluster (ServiceLB host ports, NodePorts). Checked with the
 * real nft: the rules pass the agent's own validation and load, twice over, into a fresh network
 * namespace (this machine has no veth devices, so no packet is sent through them here). After a
 * reboot the kernel has forgotten them: the agent loads them again when it starts.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyDocument, type CommandRunner, reloadOnStart } from '../agent/apply.ts';
import type { VersionedDocument } from '../shared/contract/document-envelope.ts';
import { computeDesiredState } from '../shared/desired-state.ts';
import { DEFAULT_LAYOUT, layoutUnder } from '../shared/layout.ts';
import { FIREWALL_TABLE } from '../shared/render/firewall.ts';
import { serviceCommands } from '../shared/services.ts';
import { documentOf, example, fileOf } from './helpers/fixtures.ts';
import { run } from './helpers/tools.ts';

const roots: string[] = [];
afterAll(() => roots.forEach((root) => rmSync(root, { recursive: true, force: true })));
const rg = example('reference-architecture');
const srvInterface = rg.cluster!.network.srvInterface;

describe('the host firewall of the VMs with public addresses', () => {
  const root = mkdtempSync(join(tmpdir(), 'ringmaster-firewall-'));
  roots.push(root);
  const layout = layoutUnder(root, () => ['true']);
  const documents = computeDesiredState(rg, { layout }).documents;

  test('the server and the webgateway carry it, loaded before k3s; agents and the NFS VM (no public address) do not', () => {
    for (const vm of ['kube01', 'web01']) {
      const services = documentOf(documents, vm).services.map((s) => s.name);
      expect(services).toContain('nftables');
      expect(services.indexOf('nftables')).toBeLessThan(services.indexOf('k3s'));
    }
    for (const vm of ['kube02', 'kube03', 'nfs01']) expect(documentOf(documents, vm).services.map((s) => s.name)).not.toContain('nftables');
  });

  test('it drops forwarded (DNATed) connections unless they come from the srv network, loopback or the cluster itself', () => {
    const rules = fileOf(documentOf(documents, 'web01'), 'ringmaster-k3s.nft');
    expect(rules).toContain(`ct status dnat iifname != { "lo", "${srvInterface}" } iifname != "cni0" iifname != "flannel*" counter drop`);
    expect(rules).toMatch(/type filter hook forward priority filter - 10; policy accept;/);
  });

  test('the real nft accepts it (the agent\'s own validation) and loads it as one transaction, again and again', async () => {
    const ran: string[][] = [];
    const runner: CommandRunner = async (argv) => {
      ran.push([...argv]);
      const result = run([...argv]);
      return { code: result.status ?? 1, output: result.output };
    };
    const document: VersionedDocument = { ...documentOf(documents, 'web01'), generation: 1 };
    // Only the firewall's validation runs for real here; the other services are stood in for by `true`.
    const result = await applyDocument(document, undefined, { root: '/', run: runner, layout });
    expect(result).toMatchObject({ outcome: 'applied' });
    const file = layout.firewallRules;
    expect(ran).toContainEqual(['nft', '-c', '-f', file]);
    // Loading it twice into a fresh network namespace leaves one table with one rule: a reload replaces it.
    const listed = execFileSync('unshare', ['-n', 'sh', '-c', `nft -f ${file} && nft -f ${file} && nft list table inet ${FIREWALL_TABLE}`], { encoding: 'utf8' });
    expect(listed.match(/counter packets \d+ bytes \d+ drop/g)).toHaveLength(1);
    expect(listed).toContain(`iifname != { "lo", "${srvInterface}" }`);
  });

  test('a VM that booted again gets the rules back when its agent starts (the kernel forgot them)', async () => {
    const ran: string[][] = [];
    const runner: CommandRunner = async (argv) => {
      ran.push([...argv]);
      return { code: 0, output: '' };
    };
    const applied: VersionedDocument = { ...documentOf(computeDesiredState(rg).documents, 'kube01'), generation: 3 };
    expect(await reloadOnStart(applied, { root: '/', run: runner, layout: DEFAULT_LAYOUT })).toEqual([]);
    expect(ran).toEqual([serviceCommands(DEFAULT_LAYOUT).nftables.reload]);
    expect(ran[0]).toEqual(['nft', '-f', '/etc/nftables.d/ringmaster-k3s.nft']);
    const failing: CommandRunner = async () => ({ code: 1, output: 'Error: Could not process rule' });
    expect(await reloadOnStart(applied, { root: '/', run: failing, layout: DEFAULT_LAYOUT })).toEqual([expect.stringMatching(/^reloading nftables at start failed: Error: Could not process rule/)]);
  });
});
