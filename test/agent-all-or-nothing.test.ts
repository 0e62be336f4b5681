/**
 * An apply is all or nothing, with the real haproxy and nginx (Debian's) serving a webgateway
 * that lives in a folder: whichever step fails (a write, a validation, the first or the second
 * reload), the old config is on disk and serving afterwards, the report names the step, and
 * the same document is tried again, backing off, until it applies. Only systemd is stood in
 * for (test/helpers/vm-in-a-folder.ts starts and reloads the daemons); the tests that make its
 * reload fail say so.
 */
import { S3Client } from '@aws-sdk/client-s3';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fullAccess, startEmbeddedS3 } from '../adapters/embedded-s3.ts';
import { S3Store } from '../adapters/s3-store.ts';
import { Agent } from '../agent/agent.ts';
import { runtimeCommand } from '../agent/haproxy-runtime.ts';
import { storeKeys } from '../shared/contract/store-layout.ts';
import { computeDesiredState, type DesiredState } from '../shared/desired-state.ts';
import type { ServiceManager } from '../agent/service-manager/service-manager.ts';
import type { ServiceName } from '../shared/services.ts';
import type { ResourceGroup } from '../shared/schema/resource-group.ts';
import { documentOf, example } from './helpers/fixtures.ts';
import { freePort, TEST_CREDENTIALS } from './helpers/servers.ts';
import { signedForTest, TEST_TRUSTED_KEYS } from './helpers/signing.ts';
import { vmInFolder } from './helpers/vm-in-a-folder.ts';

const root = mkdtempSync(join(tmpdir(), 'ringmaster-all-or-nothing-'));
const folder = vmInFolder(root, { nginx: true });
const { layout } = folder;
/** The gateway's public address, where nginx listens on port 80: a loopback one of this run's own. */
const PUBLIC = `127.88.${process.pid % 250}.1`;
const PODS = { alpha: '127.0.4.1', beta: '127.0.4.2' } as const;
let podPort = 0;
let lbPort = 0;
let alphaBind = 0;
let betaBind = 0;
const pods: Server[] = [];
let s3: Awaited<ReturnType<typeof startEmbeddedS3>>;
let store: S3Store;
let agent: Agent;
let generation = 0;
let slots: DesiredState['slots'] = {};
/** How far the agent's clock is ahead: moved on to reach a failed document's next try. */
let clockAheadMs = 0;

/** The sandbox's services, except that the reload of the daemon named here fails once, as `systemctl reload` does when a unit's reload fails. */
let failingReload: ServiceName | undefined;
const services: ServiceManager = {
  kind: folder.services.kind,
  validate: (service) => folder.services.validate(service),
  notices: (names) => folder.services.notices(names),
  resume: (names) => folder.services.resume(names),
  stop: () => folder.services.stop(),
  reload: async (service) => {
    if (failingReload !== service) return folder.services.reload(service);
    failingReload = undefined;
    return { command: `systemctl reload ${service}.service`, code: 1, output: `Job for ${service}.service failed because the control process exited with error code.` };
  },
};

/**
 * The gateway with frontend alpha, and with `beta` frontend beta too: its own haproxy bind
 * and its own nginx virtual host (`broken`: one whose upstream nginx -t refuses).
 */
function gateway(beta: 'none' | 'working' | 'broken'): ResourceGroup {
  const base = example('scenario-1-http');
  const frontend = (name: keyof typeof PODS, bind: number, proxyPass?: string) => ({
    ...base.frontends.myapp!,
    serviceName: name,
    binds: [`127.0.0.1:${bind}`],
    podPort,
    lbServicePort: lbPort,
    maxExpectedPods: 2,
    virtualHosts: { [`${name}.test`]: { forceSSL: false, ...(proxyPass ? { locations: { '/': { proxyPass } } } : {}) } },
  });
  const slice = (name: keyof typeof PODS) => ({
    namespace: 'default',
    service: name,
    ports: [],
    slices: [
      {
        metadata: { name: `${name}-1` },
        addressType: 'IPv4' as const,
        ports: [{ name: 'http', port: podPort, protocol: 'TCP' as const }],
        endpoints: [{ addresses: [PODS[name]], conditions: { ready: true }, targetRef: { kind: 'Pod', namespace: 'default', name: `${name}-pod` } }],
      },
    ],
  });
  return {
    ...base,
    vms: base.vms.map((vm) => (vm.name === 'web01' ? { ...vm, publicAddresses: [PUBLIC] } : vm)),
    frontends: {
      alpha: frontend('alpha', alphaBind),
      ...(beta === 'none' ? {} : { beta: frontend('beta', betaBind, beta === 'broken' ? 'http://127.0.0.1:99999' : undefined) }),
    },
    endpoints: [slice('alpha'), slice('beta')],
  };
}

async function publish(rg: ResourceGroup): Promise<number> {
  const state = computeDesiredState(rg, { layout, previousSlots: slots });
  slots = state.slots;
  await store.put(storeKeys.desired('demo', 'web01'), JSON.stringify(signedForTest(documentOf(state.documents, 'web01'), ++generation)));
  return generation;
}

/** One GET on a connection of its own: the body, or "refused" when nothing listens. */
function get(address: string, port: number, host?: string): Promise<string> {
  return new Promise((resolve) => {
    const sent = request({ host: address, port, path: '/', agent: false, ...(host ? { headers: { host } } : {}) }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve(response.statusCode === 200 ? body : `HTTP ${response.statusCode}`));
    });
    sent.on('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED' ? 'refused' : error.message));
    sent.end();
  });
}

/** What a user sees: haproxy's two binds, and nginx answering for beta.test (its default server, alpha, when it has no such host). */
async function serving(): Promise<{ alpha: string; beta: string; betaThroughNginx: string }> {
  return { alpha: await get('127.0.0.1', alphaBind), beta: await get('127.0.0.1', betaBind), betaThroughNginx: await get(PUBLIC, 80, 'beta.test') };
}
const OLD = { alpha: 'alpha', beta: 'refused', betaThroughNginx: 'alpha' };
const NEW = { alpha: 'alpha', beta: 'beta', betaThroughNginx: 'beta' };

/** Reloads take effect a moment after the command returns: waits until `expected` serves and keeps serving for half a second. */
async function servesSteadily(expected: typeof OLD, extra: () => Promise<boolean> = async () => true): Promise<void> {
  const deadline = Date.now() + 10_000;
  let steadySince: number | undefined;
  let seen = await serving();
  while (Date.now() < deadline) {
    seen = await serving();
    const matches = JSON.stringify(seen) === JSON.stringify(expected) && (await extra());
    steadySince = matches ? (steadySince ?? Date.now()) : undefined;
    if (steadySince !== undefined && Date.now() - steadySince >= 500) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  expect(seen).toEqual(expected);
}

const onDisk = () => ({ haproxy: readFileSync(layout.haproxyConfig, 'utf8'), nginx: readFileSync(layout.nginxConfig, 'utf8') });
const haproxyWorker = async () => /Pid: (\d+)/.exec(await runtimeCommand(folder.socket, 'show info'))?.[1];
const nginxMaster = () => readFileSync(`${layout.nginxRunDir}/nginx.pid`, 'utf8').trim();
const report = async () => JSON.parse((await store.get(storeKeys.report('demo', 'web01')))!.body);

/** The same document, at its next try: the agent's clock moved past the backoff. */
async function atNextTry() {
  clockAheadMs += 301_000;
  return agent.poll();
}

/** Each test starts from the old config: the gateway with alpha only, applied and serving. */
async function backToOld(): Promise<void> {
  const wanted = await publish(gateway('none'));
  // Unchanged when the previous test ended on the old config already.
  expect(await agent.poll()).toMatchObject({ kind: expect.stringMatching(/^(applied|unchanged)$/), generation: wanted });
  await servesSteadily(OLD);
}

beforeAll(async () => {
  podPort = await freePort();
  lbPort = await freePort();
  alphaBind = await freePort();
  betaBind = await freePort();
  for (const [name, address] of Object.entries(PODS)) {
    const pod = createServer((_request, response) => response.end(name));
    await new Promise<void>((resolve) => pod.listen(podPort, address, resolve));
    pods.push(pod);
  }
  s3 = await startEmbeddedS3({ directory: join(root, 's3'), port: await freePort(), bucket: 'ringmaster', principal: fullAccess(TEST_CREDENTIALS.accessKeyId, TEST_CREDENTIALS.secretAccessKey) });
  store = new S3Store({ bucket: 'ringmaster', endpoint: s3.endpoint, credentials: TEST_CREDENTIALS });
  const client = new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: TEST_CREDENTIALS });
  agent = new Agent({ client, identity: { bucket: 'ringmaster', resourceGroup: 'demo', vm: 'web01' }, trustedKeys: TEST_TRUSTED_KEYS, root: '/', layout, stateDir: join(root, 'agent-state'), services, now: () => new Date(Date.now() + clockAheadMs) });
  // The first document, on a folder with nothing prepared: haproxy and nginx start on it.
  await backToOld();
}, 30_000);

afterAll(async () => {
  try {
    execFileSync('chattr', ['-i', `${root}/etc/nginx`], { stdio: 'ignore' });
  } catch {
    // Never made immutable (the test failed earlier).
  }
  try {
    await folder.stopNginx();
    await folder.stopHaproxy();
  } finally {
    for (const pod of pods) pod.close();
    await s3.close();
    rmSync(root, { recursive: true, force: true });
  }
});

test('a write error (the nginx folder immutable, as `chattr +i` makes it): nothing changes, the report names the step and the file, and the same document applies at its next try once it can', async () => {
  const before = onDisk();
  const worker = await haproxyWorker();
  execFileSync('chattr', ['+i', `${root}/etc/nginx`]);
  const wanted = await publish(gateway('working'));
  const outcome = await agent.poll();
  expect(outcome).toMatchObject({ kind: 'failed', generation: wanted, error: expect.stringContaining(`apply failed at write: writing ${layout.nginxConfig}: EPERM`) });
  // haproxy.cfg, written before nginx.conf failed, is back; no temp file is left next to it.
  expect(onDisk()).toEqual(before);
  expect(readdirSync(`${root}/etc/haproxy`)).toEqual(['haproxy.cfg']);
  await servesSteadily(OLD);
  expect(await haproxyWorker()).toBe(worker);
  expect(await report()).toMatchObject({ outcome: 'failed', appliedGeneration: wanted - 1, attemptedGeneration: wanted, error: expect.stringContaining('apply failed at write') });

  execFileSync('chattr', ['-i', `${root}/etc/nginx`]);
  // Before its next try, the store is only asked whether the document changed.
  expect(await agent.poll()).toEqual({ kind: 'not-modified' });
  expect(await atNextTry()).toMatchObject({ kind: 'applied', generation: wanted });
  await servesSteadily(NEW);
  expect(await report()).toMatchObject({ outcome: 'applied', appliedGeneration: wanted });
}, 60_000);

test('nginx refuses the new config (nginx -t): both files are put back, no daemon is reloaded, the report names the step', async () => {
  await backToOld();
  const before = onDisk();
  const worker = await haproxyWorker();
  const master = nginxMaster();
  const wanted = await publish(gateway('broken'));
  const outcome = await agent.poll();
  expect(outcome).toMatchObject({ kind: 'failed', generation: wanted, error: expect.stringContaining('apply failed at validate: nginx: validation failed') });
  expect(outcome.error).toContain('invalid port');
  expect(outcome.result?.reloaded).toEqual([]);
  expect(onDisk()).toEqual(before);
  await servesSteadily(OLD);
  expect(await haproxyWorker()).toBe(worker);
  expect(nginxMaster()).toBe(master);
  expect(await report()).toMatchObject({ outcome: 'failed', attemptedGeneration: wanted, error: expect.stringContaining('validate') });
  // Tried again at its next try, and refused again with the same reason: it never half-applies.
  expect(await atNextTry()).toMatchObject({ kind: 'failed', error: expect.stringContaining('apply failed at validate') });
  expect(onDisk()).toEqual(before);
}, 60_000);

test('systemd stood in for, its haproxy reload failing (the first of two reloads): the files are put back, haproxy reloaded on them, nginx untouched; the old config serves', async () => {
  await backToOld();
  const before = onDisk();
  failingReload = 'haproxy';
  const wanted = await publish(gateway('working'));
  const outcome = await agent.poll();
  expect(outcome).toMatchObject({ kind: 'failed', generation: wanted, error: expect.stringContaining('apply failed at reload: haproxy: reload failed') });
  expect(outcome.error).toContain('Job for haproxy.service failed');
  expect(outcome.result?.reloaded).toEqual([]);
  expect(onDisk()).toEqual(before);
  await servesSteadily(OLD);
  expect(await report()).toMatchObject({ outcome: 'failed', attemptedGeneration: wanted, error: expect.stringContaining('haproxy: reload failed') });
  // The reload works again: the same document applies at its next try.
  expect(await atNextTry()).toMatchObject({ kind: 'applied', generation: wanted });
  await servesSteadily(NEW);
}, 60_000);

test('systemd stood in for, its nginx reload failing after haproxy took the new config: the files are put back and haproxy reloaded again on them; the old config serves', async () => {
  await backToOld();
  const before = onDisk();
  const worker = await haproxyWorker();
  failingReload = 'nginx';
  const wanted = await publish(gateway('working'));
  const outcome = await agent.poll();
  expect(outcome).toMatchObject({ kind: 'failed', generation: wanted, error: expect.stringContaining('apply failed at reload: nginx: reload failed') });
  // haproxy had taken the new files (its beta bind) before nginx failed.
  expect(outcome.result?.reloaded).toEqual(['haproxy']);
  expect(onDisk()).toEqual(before);
  // A new haproxy worker (it was reloaded), on the old config: beta's bind is gone again.
  await servesSteadily(OLD, async () => (await haproxyWorker()) !== worker);
  expect(await report()).toMatchObject({ outcome: 'failed', attemptedGeneration: wanted, error: expect.stringContaining('nginx: reload failed') });
}, 60_000);
