/**
 * Two webgateways of one resource group, sandboxed side by side on this machine: the real
 * agent (`--service-manager sandbox`) of each runs the real haproxy under its own folder, with a
 * loopback address of its own. The group's frontend binds every address (`*:<port>`): each
 * gateway's haproxy answers on its own address only (counted by its runtime API), never on
 * another's and never on the machine's 127.0.0.1, and a port two sandboxed gateways both bind
 * fails loudly on the second (no SO_REUSEPORT sharing) while its last good config serves on.
 * Stood in for: systemd (the sandbox service manager), k3s' service load balancer on the
 * k3s-agent (an HTTP server at its address and lbServicePort). A real VM's rendering is unchanged.
 */
import { computeDesiredState } from '../shared/desired-state.ts';
import { layoutUnder, sandboxLayouts } from '../shared/layout.ts';
import { documentOf, example, fileOf } from './helpers/fixtures.ts';
import { reportOf, type SandboxedGroup, startSandboxedGateways } from './helpers/sandboxed-gateways.ts';
import { freePort } from './helpers/servers.ts';

let group: SandboxedGroup;
let port: number;
let lbPort: number;

/** What answers at address:port (the body), or the connection's error code. */
async function get(address: string, at = port): Promise<string> {
  try {
    return await (await fetch(`http://${address}:${at}/`, { signal: AbortSignal.timeout(3000) })).text();
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause;
    return cause?.code ?? (error as Error).message;
  }
}

const inSync = (view: { inSync: boolean }) => view.inSync;

beforeAll(async () => {
  port = await freePort();
  lbPort = await freePort();
  // Every change to both gateways at once: this test is about binds, not staged rollouts (test/staged-rollout.test.ts).
  group = await startSandboxedGateways({ count: 2, frontends: { myapp: { binds: [`*:${port}`], lbServicePort: lbPort } }, gatewayRollout: 'all-at-once' });
  for (const gateway of group.gateways) await group.waitForVm(gateway.vm, inSync, 'its first document applied');
}, 90_000);

afterAll(async () => {
  await group?.stop();
}, 60_000);

test('a real VM keeps "every address": its haproxy binds *:8080 (nginx reaches it on 127.0.0.1) and may share ports as haproxy does by default; a sandboxed VM binds its own addresses and shares none', () => {
  const rg = example('scenario-1-http');
  const twoGateways = {
    ...rg,
    vms: [...rg.vms, { ...rg.vms.find((vm) => vm.name === 'web01')!, name: 'web02', srvAddresses: ['172.22.48.15'], publicAddresses: ['192.0.2.15'] }],
    // The virtual host without a proxyPass: nginx goes to the frontend's first bind.
    frontends: Object.fromEntries(Object.entries(rg.frontends).map(([name, frontend]) => [name, { ...frontend, binds: ['*:8080'], virtualHosts: { 'myapp.example.com': { forceSSL: true } } }])),
  };
  const real = computeDesiredState(twoGateways, { layout: layoutUnder('/') });
  for (const vm of ['web01', 'web02']) {
    const config = fileOf(documentOf(real.documents, vm), 'haproxy.cfg');
    expect(config).toContain('    bind *:8080\n');
    expect(config).not.toContain('noreuseport');
    expect(fileOf(documentOf(real.documents, vm), 'nginx.conf')).toContain('proxy_pass http://127.0.0.1:8080;');
  }
  const sandboxed = computeDesiredState(twoGateways, { layout: sandboxLayouts('/srv/sandbox') });
  const web02 = fileOf(documentOf(sandboxed.documents, 'web02'), 'haproxy.cfg');
  expect(web02).toMatch(/^ {4}noreuseport$/m);
  // Its nginx reaches its haproxy on its own address: the machine's 127.0.0.1 is no sandboxed VM's.
  expect(fileOf(documentOf(sandboxed.documents, 'web02'), 'nginx.conf')).toContain('proxy_pass http://172.22.48.15:8080;');
  expect(web02.match(/^ {4}bind .*$/gm)).toEqual(['    bind 172.22.48.15:8080  # *:8080: this sandboxed VM\'s own address', '    bind 192.0.2.15:8080  # *:8080: this sandboxed VM\'s own address']);
});

test('each sandboxed gateway answers on its own address only: requests to web01 are counted by web01\'s haproxy, none by web02\'s, and the reverse', async () => {
  const [web01, web02] = group.gateways as [SandboxedGroup['gateways'][0], SandboxedGroup['gateways'][0]];
  const before = { web01: await web01.requests('myapp'), web02: await web02.requests('myapp') };
  for (let i = 0; i < 5; i++) expect(await get(web01.address)).toBe(`lb kube02 (${group.loadBalancer}:${lbPort})\n`);
  expect(await web01.requests('myapp')).toBe(before.web01 + 5);
  expect(await web02.requests('myapp')).toBe(before.web02);
  for (let i = 0; i < 3; i++) expect(await get(web02.address)).toBe(`lb kube02 (${group.loadBalancer}:${lbPort})\n`);
  expect(await web02.requests('myapp')).toBe(before.web02 + 3);
  expect(await web01.requests('myapp')).toBe(before.web01 + 5);
  // "Every address" of a sandboxed VM is not every address of the machine.
  expect(await get('127.0.0.1')).toBe('ECONNREFUSED');
}, 30_000);

test('a port two sandboxed gateways both bind fails loudly on the second: its agent reports haproxy\'s "Address already in use" and keeps serving its last good config', async () => {
  const shared = await freePort();
  const before = await group.status();
  const generation = (vm: string) => before.documents.find((d) => d.vm === vm)!.generation!;
  // 127.0.0.1 is every gateway's loopback: allowed on each, and the same port on one machine.
  await group.send([{ type: 'frontend.upserted', payload: { name: 'clash', frontend: { binds: [`127.0.0.1:${shared}`], lbServicePort: lbPort } } }]);
  const views = await Promise.all(
    group.gateways.map((gateway) =>
      group.waitForVm(gateway.vm, (view) => (reportOf(view)?.attemptedGeneration ?? reportOf(view)?.appliedGeneration ?? 0) > generation(gateway.vm) || (reportOf(view)?.appliedGeneration ?? 0) > generation(gateway.vm), 'an outcome for the clashing frontend'),
    ),
  );
  const outcomes = views.map((view) => reportOf(view)!);
  const failed = outcomes.filter((report) => report.outcome === 'failed');
  expect(failed).toHaveLength(1);
  expect(failed[0]!.error).toMatch(/cannot bind socket \(Address already in use\) for \[127\.0\.0\.1:\d+\]/);
  // The one that bound it serves it; the other keeps its last good config, on its own address.
  expect(await get('127.0.0.1', shared)).toBe(`lb kube02 (${group.loadBalancer}:${lbPort})\n`);
  const loser = group.gateways.find((gateway) => gateway.vm === failed[0]!.vm)!;
  expect(await get(loser.address)).toBe(`lb kube02 (${group.loadBalancer}:${lbPort})\n`);
  // Taking the clash away brings both back in sync.
  await group.send([{ type: 'frontend.deleted', payload: { name: 'clash' } }]);
  for (const gateway of group.gateways) await group.waitForVm(gateway.vm, inSync, 'in sync again without the clash', 60_000);
}, 120_000);
