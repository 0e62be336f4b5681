/**
 * The spec's dashboard "can optionally run OpenVPN and limit dashboard access to VPN users": with
 * `vpnOnly`, the k3s server's nginx answers the dashboard only to the configured VPN networks and
 * 403 to everyone else. Real nginx on loopback addresses: 127.0.0.2 stands in for a VPN client,
 * 127.0.0.3 for a public one. The server's document is applied by the agent's own apply into an
 * empty folder (the certificate is the agent's placeholder, as on a fresh VM); the dashboard
 * itself (a pod behind a NodePort, which needs k3s) is stood in for by a small HTTPS server on
 * its NodePort. PostgreSQL and k3s are stood in for too (their commands succeed without running).
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpsServer, request, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyDocument, type CommandRunner } from '../agent/apply.ts';
import { runCommand } from '../agent/agent.ts';
import { placeholderCertificate } from '../agent/certificates/placeholder.ts';
import { computeDesiredState } from '../shared/desired-state.ts';
import { DASHBOARD_NODE_PORT } from '../shared/render/manifests.ts';
import type { ResourceGroup } from '../shared/schema/resource-group.ts';
import { documentOf, example } from './helpers/fixtures.ts';
import { loopbackAddress } from './helpers/tls-gateway.ts';
import { type FolderVm, vmInFolder } from './helpers/vm-in-a-folder.ts';

const HOST = 'kube01.demo.example.com';
const roots: string[] = [];
const folders: FolderVm[] = [];
let dashboard: Server;

/** The reference architecture, its server's public address on loopback, the dashboard VPN-only for `vpnNetworks`. */
function group(address: string, vpnNetworks: string[]): ResourceGroup {
  const rg = example('reference-architecture');
  return {
    ...rg,
    cluster: { ...rg.cluster!, dashboard: { ...rg.cluster!.dashboard, vpnOnly: true, vpnNetworks } },
    vms: rg.vms.map((vm) => (vm.name === 'kube01' ? { ...vm, publicAddresses: [address] } : vm)),
  };
}

/** Applies the server's first document into an empty folder, with real nginx; returns the findings. */
async function serverWithDashboard(address: string, vpnNetworks: string[]): Promise<string[]> {
  const root = mkdtempSync(join(tmpdir(), 'ringmaster-vpn-'));
  chmodSync(root, 0o755);
  roots.push(root);
  const folder = vmInFolder(root, { nginx: true });
  folders.push(folder);
  const state = computeDesiredState(group(address, vpnNetworks), { layout: folder.layout });
  const document = { ...documentOf(state.documents, 'kube01'), generation: 1 };
  // PostgreSQL's preparation (psql as postgres) stood in for; nginx, nft and the rest run for real.
  const run: CommandRunner = (argv, stdinFile) => (argv[0] === 'runuser' ? Promise.resolve({ code: 0, output: '' }) : runCommand(argv, stdinFile));
  const result = await applyDocument(document, undefined, { root: '/', run, layout: folder.layout });
  expect(result).toMatchObject({ outcome: 'applied' });
  return state.findings.map((finding) => finding.code);
}

/** GET https://HOST/ at `address`, sent from `from`: the status nginx answers. */
function statusFrom(address: string, from: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const call = request({ host: address, port: 443, path: '/', servername: HOST, headers: { host: HOST }, localAddress: from, rejectUnauthorized: false, timeout: 10_000 }, (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    call.on('error', reject);
    call.end();
  });
}

beforeAll(async () => {
  const { key, certificate } = await placeholderCertificate('dashboard.stand-in', new Date());
  dashboard = createHttpsServer({ key, cert: certificate }, (_request, response) => response.end('kubernetes dashboard (stand-in)'));
  await new Promise<void>((resolve, reject) => dashboard.once('error', reject).listen(DASHBOARD_NODE_PORT, '127.0.0.1', resolve));
});

afterAll(async () => {
  for (const folder of folders) folder.stopNginx();
  await new Promise((resolve) => dashboard?.close(resolve));
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

test('VPN-only: a client from the VPN network gets the dashboard (200), a public one 403', async () => {
  const address = loopbackAddress(41);
  expect(await serverWithDashboard(address, ['127.0.0.2/32'])).not.toContain('dashboard.no-vpn-networks');
  expect(await statusFrom(address, '127.0.0.2')).toBe(200);
  expect(await statusFrom(address, '127.0.0.3')).toBe(403);
}, 60_000);

test('VPN-only with no VPN network configured fails closed (403 to everyone) and the findings say so', async () => {
  const address = loopbackAddress(42);
  expect(await serverWithDashboard(address, [])).toContain('dashboard.no-vpn-networks');
  expect(await statusFrom(address, '127.0.0.2')).toBe(403);
  expect(await statusFrom(address, '127.0.0.3')).toBe(403);
}, 60_000);
