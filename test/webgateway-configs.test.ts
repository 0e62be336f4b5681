/**
 * The spec's scenario 1, scenario 2 and configuration-reference example, rendered and checked
 * by the real Debian haproxy (`haproxy -c`) and nginx (`nginx -t`), through the very
 * validate commands the documents carry.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { computeDesiredState } from '../shared/desired-state.ts';
import { layoutUnder } from '../shared/layout.ts';
import { type ServiceName, serviceCommands } from '../shared/services.ts';
import type { ResourceGroup } from '../shared/schema/resource-group.ts';
import type { VmDocument } from '../shared/schema/document.ts';
import { documentOf, example, fileOf } from './helpers/fixtures.ts';
import { materialize } from './helpers/materialize.ts';
import { run } from './helpers/tools.ts';
import { placePlaceholders } from '../agent/certificates/placeholder.ts';

const roots: string[] = [];
afterAll(() => roots.forEach((root) => rmSync(root, { recursive: true, force: true })));

/** nginx -t binds its listen addresses, so the gateway's public addresses become loopback ones. */
function onLoopback(rg: ResourceGroup, addresses: Record<string, string>): ResourceGroup {
  return {
    ...rg,
    vms: rg.vms.map((vm) => ({ ...vm, publicAddresses: vm.publicAddresses.map((a) => addresses[a] ?? a) })),
  };
}

function renderGateway(rg: ResourceGroup): { document: VmDocument; root: string } {
  const root = mkdtempSync(join(tmpdir(), 'ringmaster-gw-'));
  roots.push(root);
  const state = computeDesiredState(rg, { layout: layoutUnder(root) });
  expect(state.blocked).toEqual([]);
  const document = documentOf(state.documents, 'web01');
  materialize(document, root);
  return { document, root };
}

/** Runs the agent's own validation of a service the document has (the document names it; the agent owns the command). */
function validate(document: VmDocument, service: ServiceName, root: string): void {
  expect(document.services.map((s) => s.name)).toContain(service);
  const command = serviceCommands(layoutUnder(root))[service].validate!;
  const result = run([...command]);
  if (result.status !== 0) throw new Error(`${command.join(' ')} failed:\n${result.output}`);
  expect(result.output).not.toMatch(/ALERT|emerg/);
}

const backendSection = (config: string, backend: string) => config.split(/\n(?=backend |frontend )/).find((part) => part.startsWith(`backend ${backend}\n`)) ?? '';

const serverLines = (config: string, backend: string) => backendSection(config, backend).split('\n').filter((line) => line.trim().startsWith('server '));

/** tcp backends retry failed connections only (the defaults): no L7 retries, no http-request rules. */
function expectConnectionRetriesOnly(config: string, backend: string): void {
  const section = backendSection(config, backend);
  expect(section).toMatch(/\n {4}mode tcp\n/);
  expect(section).not.toMatch(/retry-on|disable-l7-retry|http-/);
  expect(config).toMatch(/\n {4}retry-on conn-failure\n/);
}

describe('scenario 1: HTTP/s using the platform-managed nginx', () => {
  const rg = onLoopback(example('scenario-1-http'), { '192.0.2.10': '127.0.10.1' });
  const { document, root } = renderGateway(rg);
  const haproxy = fileOf(document, 'haproxy.cfg');

  test('haproxy -c accepts the generated config', () => validate(document, 'haproxy', root));

  test('haproxy listens where the spec binds it, in http mode', () => {
    expect(haproxy).toMatch(/frontend fe_myapp\n {4}mode http\n {4}option httplog\n {4}bind 127\.0\.0\.1:8080\n/);
    expect(haproxy).toMatch(/backend be_myapp\n {4}mode http\n/);
  });

  test('the pods are servers at podPort in maxExpectedPods slots; the agents are backups at lbServicePort', () => {
    const lines = serverLines(haproxy, 'be_myapp');
    const pods = lines.filter((l) => / pod\d+ /.test(l));
    expect(pods).toHaveLength(10);
    expect(pods.filter((l) => !l.includes('disabled')).map((l) => l.trim().split(/\s+/)[2]).sort()).toEqual(['10.42.2.14:8888', '10.42.2.15:8888', '10.42.3.21:8888']);
    expect(pods.filter((l) => l.includes('disabled'))).toHaveLength(7);
    const backups = lines.filter((l) => l.includes(' backup'));
    expect(backups.map((l) => l.trim().split(/\s+/).slice(1, 3).join(' '))).toEqual(['lb-kube02 172.22.48.12:7654', 'lb-kube03 172.22.48.13:7654']);
  });

  test('when no pod is up, traffic is spread over every agent\'s load balancer, not only the first backup', () => {
    const section = backendSection(haproxy, 'be_myapp');
    expect(section).toMatch(/\n {4}option allbackups\n/);
    // The option sits before the servers it governs, and haproxy -c (above) accepts it there.
    expect(section.indexOf('option allbackups')).toBeLessThan(section.indexOf('\n    server '));
  });

  test('a failed connection is retried on another server; so is an idempotent request whose response never started, and no other', () => {
    expect(haproxy).toMatch(/\ndefaults\n(?: {4}.*\n)* {4}retries 3\n {4}option redispatch 1\n {4}retry-on conn-failure\n/);
    expect(backendSection(haproxy, 'be_myapp')).toContain(
      [
        '    option http-server-close',
        '    # Idempotent requests whose response never started are retried on another server; other methods are never sent twice.',
        '    retry-on conn-failure empty-response',
        '    http-request disable-l7-retry unless METH_GET || METH_HEAD || METH_OPTIONS || METH_PUT || METH_DELETE || METH_TRACE',
      ].join('\n'),
    );
  });

  test('nginx -t accepts the virtual host, which forces SSL and passes to haproxy, once the agent put the placeholder certificate the document asks for', async () => {
    expect(document.certificates).toEqual([{ host: 'myapp.example.com', certificateFile: `${root}/var/lib/acme/myapp.example.com/fullchain.pem`, keyFile: `${root}/var/lib/acme/myapp.example.com/key.pem` }]);
    await placePlaceholders('/', document.certificates ?? [], new Date());
    validate(document, 'nginx', root);
    const nginx = fileOf(document, 'nginx.conf');
    expect(nginx).toContain('server_name myapp.example.com;');
    expect(nginx).toContain('listen 127.0.10.1:443 ssl;');
    expect(nginx).toContain('return 301 https://$host$request_uri;');
    expect(nginx).toContain('proxy_pass http://localhost:8080;');
  });
});

describe('scenario 2: TCP passed to an internal ingress controller', () => {
  const { document, root } = renderGateway(example('scenario-2-tcp'));
  const haproxy = fileOf(document, 'haproxy.cfg');

  test('haproxy -c accepts the generated config', () => validate(document, 'haproxy', root));

  test('haproxy listens on the public address in tcp mode', () => {
    expect(haproxy).toMatch(/frontend fe_myapp\n {4}mode tcp\n {4}option tcplog\n {4}bind 192\.0\.124\.96:443\n/);
    expect(haproxy).toMatch(/backend be_myapp\n {4}mode tcp\n/);
  });

  test('ingress pods at 8443, the ingress load balancer at 8888 as backup', () => {
    const lines = serverLines(haproxy, 'be_myapp');
    expect(lines.filter((l) => !l.includes('disabled') && / pod\d+ /.test(l)).map((l) => l.trim().split(/\s+/)[2])).toEqual(['10.42.2.30:8443', '10.42.3.31:8443']);
    expect(lines.filter((l) => l.includes('backup')).map((l) => l.trim().split(/\s+/)[2])).toEqual(['172.22.48.12:8888', '172.22.48.13:8888']);
  });

  test('tcp backends retry failed connections only', () => expectConnectionRetriesOnly(haproxy, 'be_myapp'));

  test('all ingress pods down: every ingress load balancer shares the traffic (option allbackups)', () => {
    expect(backendSection(haproxy, 'be_myapp')).toMatch(/\n {4}option allbackups\n/);
  });

  test('no nginx is configured when no frontend asks for a virtual host', () => {
    expect(document.services.map((s) => s.name).sort()).toEqual(['haproxy', 'k3s', 'nftables']);
  });
});

describe('configuration reference: every option', () => {
  const { document, root } = renderGateway(example('configuration-reference'));
  const haproxy = fileOf(document, 'haproxy.cfg');
  const lines = serverLines(haproxy, 'be_myapp');

  test('haproxy -c accepts the generated config', () => validate(document, 'haproxy', root));

  test('binds, tcp mode and the pods of serviceName in namespace', () => {
    expect(haproxy).toMatch(/frontend fe_myapp\n {4}mode tcp\n {4}option tcplog\n {4}bind 127\.0\.0\.1:8080\n/);
    expect(lines.filter((l) => !l.includes('disabled') && / pod\d+ /.test(l))).toEqual([expect.stringContaining('10.42.2.40:8443')]);
    expect(lines.find((l) => l.includes('10.42.2.40'))).toContain('Pod/kube-system/traefik-');
  });

  test('maxExpectedPods sets the slot count', () => {
    expect(lines.filter((l) => / pod\d+ /.test(l))).toHaveLength(5);
  });

  test('haproxyExtraConfig is added to every generated server entry', () => {
    expect(lines.length).toBe(7);
    for (const line of lines) expect(line).toMatch(/ check .*maxconn 5/);
  });

  test('tcp backends retry failed connections only', () => expectConnectionRetriesOnly(haproxy, 'be_myapp'));

  test('lbServicePort 80 on every agent as backup', () => {
    expect(lines.filter((l) => l.includes('backup')).map((l) => l.trim().split(/\s+/)[2])).toEqual(['172.22.48.12:80', '172.22.48.13:80']);
  });
});

describe('a frontend without podPort: the load balancers are the servers', () => {
  const base = example('scenario-1-http');
  const { podPort: _podPort, ...frontend } = base.frontends.myapp!;
  const { document, root } = renderGateway(onLoopback({ ...base, frontends: { myapp: frontend } }, { '192.0.2.10': '127.0.10.2' }));
  const haproxy = fileOf(document, 'haproxy.cfg');

  test('haproxy -c accepts the generated config', () => validate(document, 'haproxy', root));

  test('every agent is a server (no backups, so no allbackups)', () => {
    const lines = serverLines(haproxy, 'be_myapp');
    expect(lines.map((l) => l.trim().split(/\s+/).slice(1, 3).join(' '))).toEqual(['lb-kube02 172.22.48.12:7654', 'lb-kube03 172.22.48.13:7654']);
    expect(backendSection(haproxy, 'be_myapp')).not.toMatch(/backup/);
  });
});
