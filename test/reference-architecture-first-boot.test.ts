/**
 * The spec's reference architecture as the portal provisions it (examples/events/
 * reference-architecture.yaml, folded by the reconciler as the control plane does), first
 * boot of every role: the real agent applies each VM's first signed document to an empty
 * folder with nothing prepared (no certificate, no database role, no folder), with the real
 * haproxy and nginx serving, the real PostgreSQL taking the datastore SQL, and Pebble issuing
 * the TLS certificates of the webgateway's virtual host and the server's dashboard. Stood in
 * for, and only these: systemd, by the sandbox service manager (test/helpers/vm-in-a-folder.ts:
 * the agent starts and reloads haproxy and nginx itself), which does not run k3s (it cannot run
 * here), loads no firewall and only checks the exports file (the NFS server is not installed).
 * Each VM's public address is a loopback one of this run.
 */
import { S3Client } from '@aws-sdk/client-s3';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { fullAccess, startEmbeddedS3 } from '../adapters/embedded-s3.ts';
import { S3Store } from '../adapters/s3-store.ts';
import { Agent } from '../agent/agent.ts';
import { type ServiceManager, systemdServices } from '../agent/service-manager/service-manager.ts';
import { agentReportSchema } from '../shared/contract/agent-report.ts';
import { storeKeys } from '../shared/contract/store-layout.ts';
import { controlPlaneEventSchema } from '../shared/events/control-plane-event.ts';
import { reconcile } from '../shared/state/reconcile.ts';
import { emptyState } from '../shared/state/rg-state.ts';
import { ROOT } from './helpers/fixtures.ts';
import { startPebble, type Pebble } from './helpers/pebble.ts';
import { type Postgres, startPostgres } from './helpers/postgres.ts';
import { freePort, TEST_CREDENTIALS } from './helpers/servers.ts';
import { signedForTest, TEST_TRUSTED_KEYS } from './helpers/signing.ts';
import { chainsTo, loopbackAddress } from './helpers/tls-gateway.ts';
import { type FolderVm, vmInFolder } from './helpers/vm-in-a-folder.ts';

const MASTER_KEY = 'reference-architecture-first-boot-master-key-0123456789';
const VMS = ['web01', 'kube01', 'kube02', 'kube03', 'nfs01'] as const;
const PUBLIC = { web01: loopbackAddress(5), kube01: loopbackAddress(6) } as const;
const DASHBOARD = 'kube01.demo.example.com';

let pebble: Pebble;
let postgres: Postgres;
let s3: Awaited<ReturnType<typeof startEmbeddedS3>>;
const folders = new Map<string, { root: string; vm: FolderVm; agent: Agent }>();
const work = mkdtempSync(join(tmpdir(), 'ringmaster-first-boot-'));
// Each VM's folder below stands for its "/", which nginx's workers pass through to the challenge webroot.
chmodSync(work, 0o755);

/** The portal's events, with the VMs' public addresses on loopback and haproxy's bind on a free port. */
function events(haproxyPort: number): unknown[] {
  const raw = parseYaml(readFileSync(join(ROOT, 'examples/events/reference-architecture.yaml'), 'utf8')) as Array<{ type: string; payload: Record<string, any> }>;
  return raw.map((event) => {
    const payload = structuredClone(event.payload);
    if (event.type === 'vm.upserted' && payload.vm.name in PUBLIC) payload.vm.publicAddresses = [PUBLIC[payload.vm.name as keyof typeof PUBLIC]];
    if (event.type === 'frontend.upserted') {
      payload.frontend.bind = [`127.0.0.1:${haproxyPort}`];
      payload.frontend.virtualHosts['myapp.example.com'].locations['/'].proxyPass = `http://127.0.0.1:${haproxyPort}`;
    }
    return { ...event, payload };
  });
}

/**
 * The VM's sandbox runs haproxy and nginx; the datastore SQL goes, as systemd's psql command
 * does on a VM, to this test's throw-away PostgreSQL (its socket and port in the runner's
 * environment), where the test logs in afterwards.
 */
function withTestPostgres(vm: FolderVm): ServiceManager {
  const psql = systemdServices(vm.layout, postgres.agentRun);
  const pick = (service: Parameters<ServiceManager['reload']>[0]) => (service === 'postgresql' ? psql : vm.services);
  return {
    kind: vm.services.kind,
    validate: (service) => pick(service).validate(service),
    reload: (service) => pick(service).reload(service),
    notices: (services) => vm.services.notices(services),
    resume: (services) => vm.services.resume(services.filter((service) => service !== 'postgresql')),
    stop: () => vm.services.stop(),
  };
}

beforeAll(async () => {
  pebble = await startPebble({ address: PUBLIC.web01 });
  await pebble.resolve(DASHBOARD, PUBLIC.kube01);
  postgres = startPostgres();
  s3 = await startEmbeddedS3({ directory: join(work, 's3'), port: await freePort(), bucket: 'ringmaster', principal: fullAccess(TEST_CREDENTIALS.accessKeyId, TEST_CREDENTIALS.secretAccessKey) });
  const store = new S3Store({ bucket: 'ringmaster', endpoint: s3.endpoint, credentials: TEST_CREDENTIALS });
  const client = new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: TEST_CREDENTIALS });
  const portalEvents = events(await freePort()).map((event) => controlPlaneEventSchema.parse(event));
  for (const name of VMS) {
    const vmRoot = join(work, name);
    mkdirSync(vmRoot, { mode: 0o755 });
    const vm = vmInFolder(vmRoot, { nginx: true });
    // The control plane's reconcile of the portal's events, rendered for this VM's folder.
    const plan = reconcile(emptyState('demo'), portalEvents, { masterKey: MASTER_KEY, now: new Date().toISOString(), layout: vm.layout, acme: { directoryUrl: pebble.directoryUrl } });
    const document = plan.writes.find((write) => write.vm === name);
    if (!document) throw new Error(`no document for ${name}: ${JSON.stringify(plan.desired.blocked)}`);
    await store.put(storeKeys.desired('demo', name), JSON.stringify(signedForTest(document, document.generation)));
    const agent = new Agent({
      client,
      identity: { bucket: 'ringmaster', resourceGroup: 'demo', vm: name },
      trustedKeys: TEST_TRUSTED_KEYS,
      root: '/',
      layout: vm.layout,
      stateDir: join(vmRoot, 'var/lib/ringmaster-agent'),
      services: withTestPostgres(vm),
      certificates: { trustedCertificates: pebble.ca, requestAttempts: 0 },
    });
    folders.set(name, { root: vmRoot, vm, agent });
  }
}, 120_000);

afterAll(async () => {
  // The daemons the webgateway and the server started (the others run none).
  await folders.get('web01')?.vm.stopHaproxy();
  for (const name of ['web01', 'kube01']) await folders.get(name)?.vm.stopNginx();
  await s3?.close();
  postgres?.stop();
  await pebble?.close();
  rmSync(work, { recursive: true, force: true });
});

test.each(VMS)('%s: the real agent applies its first document to an empty folder and reports "applied"', async (name) => {
  const { agent } = folders.get(name)!;
  const outcome = await agent.poll();
  expect(outcome.error).toBeUndefined();
  expect(outcome.kind).toBe('applied');
  const report = agentReportSchema.parse(JSON.parse((await new S3Store({ bucket: 'ringmaster', endpoint: s3.endpoint, credentials: TEST_CREDENTIALS }).get(storeKeys.report('demo', name)))!.body));
  expect(report).toMatchObject({ outcome: 'applied', appliedGeneration: outcome.generation });
}, 60_000);

test('the server took the datastore SQL: the k3s datastore role logs in to the real PostgreSQL', () => {
  const config = readFileSync(folders.get('kube01')!.vm.layout.k3sConfig, 'utf8');
  const endpoint = new URL(/datastore-endpoint: (\S+)/.exec(config)![1]!.replace(/^['"]|['"]$/g, ''));
  const login = postgres.run(['psql', '-h', '127.0.0.1', '-p', postgres.port, '-U', endpoint.username, '-d', endpoint.pathname.slice(1), '-tAc', 'select current_user'], { PGPASSWORD: decodeURIComponent(endpoint.password) });
  expect(login).toEqual({ status: 0, output: `${endpoint.username}\n` });
});

test("then the webgateway's virtual host and the server's dashboard get Pebble-issued certificates nginx serves", async () => {
  const root = await pebble.root();
  for (const [name, host, address] of [['web01', 'myapp.example.com', PUBLIC.web01], ['kube01', DASHBOARD, PUBLIC.kube01]] as const) {
    const statuses = await folders.get(name)!.agent.certificateRound();
    expect(statuses).toEqual([expect.objectContaining({ host, state: 'valid', orders: 1 })]);
    const deadline = Date.now() + 5000;
    let served = await chainsTo(address, host, root);
    while (!served.authorized && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      served = await chainsTo(address, host, root);
    }
    expect([name, served]).toEqual([name, { authorized: true }]);
  }
}, 60_000);
