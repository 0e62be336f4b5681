/**
 * The pull agent against the embedded S3 endpoint and a real haproxy (Debian's), on
 * 127.0.0.1: documents from the desired-state engine, pods as small HTTP servers on loopback
 * addresses. Endpoint changes go through haproxy's runtime API: the same haproxy process
 * keeps serving, no reload.
 */
import { sha256Hex } from '../shared/hash.ts';
import { S3Client } from '@aws-sdk/client-s3';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fullAccess, startEmbeddedS3 } from '../adapters/embedded-s3.ts';
import { S3Store } from '../adapters/s3-store.ts';
import { Agent } from '../agent/agent.ts';
import { runtimeCommand } from '../agent/haproxy-runtime.ts';
import { computeDesiredState, type DesiredState } from '../shared/desired-state.ts';
import { storeKeys } from '../shared/contract/store-layout.ts';
import type { ResourceGroup } from '../shared/schema/resource-group.ts';
import { documentOf, example } from './helpers/fixtures.ts';
import { newTestRoot, signedForTest, signerUnder, TEST_ROOT, TEST_TRUSTED_KEYS } from './helpers/signing.ts';
import { signDocument } from '../shared/contract/document-envelope.ts';
import { freePort, TEST_CREDENTIALS } from './helpers/servers.ts';
import { vmInFolder } from './helpers/vm-in-a-folder.ts';

const root = mkdtempSync(join(tmpdir(), 'ringmaster-agent-'));
// Ports picked at run time: two runs on one machine must not collide.
let POD_PORT = 0;
/** Where the pods of the port-change test listen. */
let MOVED_PORT = 0;
const pods = new Map<string, Server>();
/** Each pod's open connections, to reset them when it dies. */
const podSockets = new Map<string, Set<Socket>>();
/**
 * Requests for a path under /trap/, as `METHOD path`: the pods that received each, in order.
 * The first one, whichever pod receives it, dies with its pod (no answer, the connection reset).
 */
const trapped = new Map<string, string[]>();
/** Pods that never answer a request for a path under /hold/ (it stays in flight), and the paths they hold. */
const holding = new Map<string, string[]>();
let s3: Awaited<ReturnType<typeof startEmbeddedS3>>;
let s3Port: number;
const startS3 = () => startEmbeddedS3({ directory: join(root, 's3'), port: s3Port, bucket: 'ringmaster', principal: fullAccess(TEST_CREDENTIALS.accessKeyId, TEST_CREDENTIALS.secretAccessKey) });
let store: S3Store;
let agent: Agent;
let agentClient: S3Client;
let bindPort: number;
let generation = 0;
let slots: DesiredState['slots'] = {};

const folder = vmInFolder(root);
const { layout } = folder;

async function startPod(address: string, port = POD_PORT): Promise<void> {
  const server = createServer((request, response) => {
    if (request.url?.startsWith('/trap/')) {
      const key = `${request.method} ${request.url}`;
      const seen = trapped.get(key) ?? [];
      trapped.set(key, [...seen, address]);
      if (seen.length === 0) {
        request.socket.resetAndDestroy();
        return;
      }
    }
    if (request.url?.startsWith('/hold/') && holding.has(address)) {
      holding.get(address)!.push(request.url);
      return;
    }
    response.end(address);
  });
  const sockets = new Set<Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(port, address, resolve));
  pods.set(address, server);
  podSockets.set(address, sockets);
}

/** A pod that stops listening: new connections are refused at once. */
async function stopPod(address: string): Promise<void> {
  const server = pods.get(address)!;
  pods.delete(address);
  // Stops accepting; Node also closes the idle keep-alive connections. Requests in flight finish.
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/**
 * A pod that dies with no warning: it stops listening (connections waiting in the kernel's
 * accept queue are reset, new ones refused) and every open connection is reset, requests in
 * flight included, unanswered.
 */
async function killPod(address: string): Promise<void> {
  const server = pods.get(address)!;
  pods.delete(address);
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  for (const socket of podSockets.get(address) ?? []) socket.resetAndDestroy();
  await closed;
}

/** Resolves once `predicate` holds (polled every 5 ms); the test's timeout bounds it. */
async function until(predicate: () => boolean): Promise<void> {
  while (!predicate()) await new Promise((r) => setTimeout(r, 5));
}

/**
 * One request through haproxy on a connection of its own (node:http with no agent, which never
 * retries by itself): whatever is retried, haproxy retried. Status 0 when the connection failed.
 */
function once(method: string, path: string, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const request = httpRequest({ host: '127.0.0.1', port: bindPort, method, path, agent: false, headers: body === undefined ? {} : { 'content-type': 'text/plain' } }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: text }));
      response.on('error', () => resolve({ status: 0, body: text }));
    });
    request.on('error', () => resolve({ status: 0, body: '' }));
    request.end(body);
  });
}

/** A bounded load loop through haproxy while `during` runs: how many requests, how many failed. */
async function underLoad(during: () => Promise<void>, clients = 4): Promise<{ requests: number; failures: number; failedAt: number[]; answeredBy: Set<string> }> {
  let running = true;
  const failedAt: number[] = [];
  let requests = 0;
  let failures = 0;
  const answeredBy = new Set<string>();
  const loops = Array.from({ length: clients }, async () => {
    const deadline = Date.now() + 60_000;
    while (running && Date.now() < deadline) {
      requests++;
      const startedAt = Date.now();
      const response = await fetch(`http://127.0.0.1:${bindPort}/`).catch(() => undefined);
      if (response?.ok) answeredBy.add(await response.text());
      else {
        failures++;
        failedAt.push(startedAt);
      }
    }
  });
  try {
    await during();
  } finally {
    running = false;
    await Promise.all(loops);
  }
  return { requests, failures, failedAt, answeredBy };
}

let LB_PORT = 0;
const AGENT_ADDRESSES: Record<string, string> = { kube02: '127.0.2.1', kube03: '127.0.2.2' };

function rgWith(podAddresses: string[], frontend: Partial<ResourceGroup['frontends'][string]> = {}, terminating: string[] = [], slicePort = POD_PORT): ResourceGroup {
  const base = example('scenario-1-http');
  return {
    ...base,
    // The agents' load balancers answer on loopback, so the backup servers are real too.
    vms: base.vms.map((vm) => (AGENT_ADDRESSES[vm.name] ? { ...vm, srvAddresses: [AGENT_ADDRESSES[vm.name]!] } : vm)),
    frontends: { myapp: { ...base.frontends.myapp!, bind: undefined, binds: [`127.0.0.1:${bindPort}`], podPort: POD_PORT, lbServicePort: LB_PORT, maxExpectedPods: 3, virtualHosts: {}, ...frontend } },
    endpoints: [
      {
        namespace: 'default',
        service: 'myapp',
        ports: [],
        slices: [
          {
            metadata: { name: 'myapp-1' },
            addressType: 'IPv4',
            ports: [{ name: 'http', port: slicePort, protocol: 'TCP' }],
            endpoints: [...podAddresses, ...terminating].map((address) => ({
              addresses: [address],
              conditions: terminating.includes(address) ? { ready: false, serving: true, terminating: true } : { ready: true },
              targetRef: { kind: 'Pod', namespace: 'default', name: `pod-${address.replaceAll('.', '-')}` },
            })),
          },
        ],
      },
    ],
  };
}

async function publish(rg: ResourceGroup): Promise<void> {
  const state = computeDesiredState(rg, { layout, previousSlots: slots });
  slots = state.slots;
  await store.put(storeKeys.desired('demo', 'web01'), JSON.stringify(signedForTest(documentOf(state.documents, 'web01'), ++generation)));
}

/** Which pods answer through haproxy, over enough requests to see each of them. */
async function answering(requests = 30): Promise<{ pods: string[]; failures: number }> {
  const seen = new Set<string>();
  let failures = 0;
  for (let i = 0; i < requests; i++) {
    const response = await fetch(`http://127.0.0.1:${bindPort}/`).catch(() => undefined);
    if (response?.ok) seen.add(await response.text());
    else failures++;
  }
  return { pods: [...seen].sort(), failures };
}

const haproxyPid = async () => /Pid: (\d+)/.exec(await runtimeCommand(folder.socket, 'show info'))?.[1];

beforeAll(async () => {
  bindPort = await freePort();
  POD_PORT = await freePort();
  MOVED_PORT = await freePort();
  LB_PORT = await freePort();
  for (const address of ['127.0.1.1', '127.0.1.2', '127.0.1.3', '127.0.1.4', '127.0.1.5', '127.0.1.6', '127.0.1.7']) await startPod(address);
  for (const address of Object.values(AGENT_ADDRESSES)) await startPod(address, LB_PORT);
  for (const address of ['127.0.1.8', '127.0.1.9']) await startPod(address, MOVED_PORT);
  s3Port = await freePort();
  s3 = await startS3();
  store = new S3Store({ bucket: 'ringmaster', endpoint: s3.endpoint, credentials: TEST_CREDENTIALS });
  const client = new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: TEST_CREDENTIALS });
  agentClient = client;
  // The documents are rendered under the test folder already (layoutUnder), so the agent writes
  // them where they say, and its sandbox runs the daemons.
  agent = new Agent({ client, identity: { bucket: 'ringmaster', resourceGroup: 'demo', vm: 'web01' }, trustedKeys: TEST_TRUSTED_KEYS, root: '/', layout, stateDir: join(root, 'agent-state'), services: folder.services });
}, 30000);

afterAll(async () => {
  try {
    await folder.stopHaproxy();
  } finally {
    for (const server of pods.values()) server.close();
    await s3.close();
    rmSync(root, { recursive: true, force: true });
  }
});

test('applies the gateway document, starts haproxy on it, and requests reach the pods', async () => {
  await publish(rgWith(['127.0.1.1', '127.0.1.2']));
  const outcome = await agent.poll();
  expect(outcome.error).toBeUndefined();
  expect(outcome).toMatchObject({ kind: 'applied', generation: 1 });
  expect(outcome.result?.reloaded).toContain('haproxy');
  expect(await answering()).toEqual({ pods: ['127.0.1.1', '127.0.1.2'], failures: 0 });
  expect(await agent.poll()).toEqual({ kind: 'not-modified' });
  const report = JSON.parse((await store.get(storeKeys.report('demo', 'web01')))!.body);
  expect(report).toMatchObject({ appliedGeneration: 1, outcome: 'applied' });
});

test('a pod replaced: the runtime API moves the slot, the same haproxy keeps serving (no reload)', async () => {
  const pid = await haproxyPid();
  await publish(rgWith(['127.0.1.1', '127.0.1.3']));
  const outcome = await agent.poll();
  expect(outcome).toMatchObject({ kind: 'applied', generation: 2 });
  expect(outcome.result?.reloaded).toEqual([]);
  expect(outcome.result?.runtimeCommands).toBeGreaterThan(0);
  expect(await answering()).toEqual({ pods: ['127.0.1.1', '127.0.1.3'], failures: 0 });
  expect(await haproxyPid()).toBe(pid);
  // The file on disk follows too, so a later reload starts from the same servers.
  expect(readFileSync(`${root}/etc/haproxy/haproxy.cfg`, 'utf8')).toContain(`server pod2 127.0.1.3:${POD_PORT}`);
});

test('more pods than maxExpectedPods: all get traffic, servers added at run time, no reload', async () => {
  const pid = await haproxyPid();
  await publish(rgWith(['127.0.1.1', '127.0.1.3', '127.0.1.4', '127.0.1.5']));
  const outcome = await agent.poll();
  expect(outcome.result).toMatchObject({ reloaded: [], extraServers: { myapp: 1 } });
  expect(await answering(40)).toEqual({ pods: ['127.0.1.1', '127.0.1.3', '127.0.1.4', '127.0.1.5'], failures: 0 });
  expect(await haproxyPid()).toBe(pid);
  const report = JSON.parse((await store.get(storeKeys.report('demo', 'web01')))!.body);
  expect(report.extraServers).toEqual({ myapp: 1 });
});

test('a config haproxy rejects changes nothing: files restored, haproxy keeps serving, the report says why', async () => {
  const running = readFileSync(`${root}/etc/haproxy/haproxy.cfg`, 'utf8');
  await publish(rgWith(['127.0.1.1', '127.0.1.3', '127.0.1.4', '127.0.1.5'], { extraPodTemplateOptions: 'no-such-keyword 1' }));
  const outcome = await agent.poll();
  expect(outcome).toMatchObject({ kind: 'failed', generation: 4 });
  expect(outcome.error).toContain('haproxy: validation failed');
  expect(readFileSync(`${root}/etc/haproxy/haproxy.cfg`, 'utf8')).toBe(running);
  expect((await answering()).failures).toBe(0);
  const report = JSON.parse((await store.get(storeKeys.report('demo', 'web01')))!.body);
  expect(report).toMatchObject({ outcome: 'failed', appliedGeneration: 3, attemptedGeneration: 4 });
  expect(report.error).toContain('no-such-keyword');
});

test('a document the control plane did not sign as it stands, or asking for more than its role needs, is refused with the reason, and nothing changes', async () => {
  // The document running now (generation 3), as the control plane stored it.
  const good = signedForTest(agent.applied!, agent.applied!.generation);
  const { signature: _signature, expiresAt: _expiresAt, ...content } = good;
  const running = readFileSync(`${root}/etc/haproxy/haproxy.cfg`, 'utf8');
  const pid = await haproxyPid();
  const stranger = signerUnder(newTestRoot());
  const sshKey = { path: '/root/.ssh/authorized_keys', mode: '0600', owner: 'root', group: 'root', secret: false, content: 'ssh-ed25519 AAAA attacker\n', sha256: `sha256:${sha256Hex('ssh-ed25519 AAAA attacker\n')}` };
  const readIfPresent = (path: string) => (existsSync(path) ? readFileSync(path, 'utf8') : undefined);
  const refused: Array<[string, object, string]> = [
    ['changed after signing', { ...good, generation: 9, pollIntervalSeconds: 7 }, 'hash'],
    ["another VM's", signedForTest({ ...content, vm: 'kube02' }, 10), 'not for demo/web01'],
    // What a bucket writer can make: a valid SHA-256, but no signature at all.
    ['unsigned', { ...content, generation: 11, expiresAt: good.expiresAt }, 'signature'],
    ['signed under a root the agent does not trust', signDocument({ ...content, generation: 12, expiresAt: good.expiresAt }, stranger), 'which this agent does not trust'],
    ['signed under a delegation that expired', signedForTest(content, 19, good.expiresAt, signerUnder(TEST_ROOT, { notBefore: new Date(Date.now() - 9 * 86_400_000), notAfter: new Date(Date.now() - 86_400_000) })), 'the delegation of key'],
    ['signed by another key than its delegation certifies', signedForTest(content, 20, good.expiresAt, signerUnder(TEST_ROOT, { certifyOther: true })), 'but its delegation is for key'],
    ['a signature moved to another generation', { ...good, generation: 13 }, 'does not verify'],
    ['an older generation replayed (rollback)', signedForTest(content, 2), 'rollback'],
    ['expired (a stale copy served for ever)', signedForTest(content, 14, new Date(Date.now() - 1000).toISOString()), 'expired'],
    // Validly signed, and still refused: what the webgateway role never needs.
    ['signed, but writing /root/.ssh/authorized_keys', signedForTest({ ...content, files: [...content.files, sshKey] }, 15), 'outside the folders its roles (webgateway) own'],
    ['signed, but escaping its folder with ..', signedForTest({ ...content, files: [...content.files, { ...sshKey, path: `${layout.haproxyConfig}/../../../escaped` }] }, 16), 'outside the folders'],
    ['signed, but naming a service its roles do not run', signedForTest({ ...content, services: [...content.services, { name: 'postgresql', files: [] }] }, 17), 'postgresql, which its roles (webgateway) do not run'],
    ['signed, but carrying a command to run', signedForTest({ ...content, services: content.services.map((service) => ({ ...service, reload: ['sh', '-c', 'touch /tmp/ringmaster-pwned'] })) } as never, 18), 'does not match the schema'],
  ];
  const sshBefore = readIfPresent('/root/.ssh/authorized_keys');
  for (const [what, document, reason] of refused) {
    await store.put(storeKeys.desired('demo', 'web01'), JSON.stringify(document));
    expect([what, await agent.poll()]).toEqual([what, expect.objectContaining({ kind: 'failed', error: expect.stringContaining(reason) })]);
    const report = JSON.parse((await store.get(storeKeys.report('demo', 'web01')))!.body);
    expect([what, report]).toEqual([what, expect.objectContaining({ outcome: 'failed', appliedGeneration: 3, error: expect.stringContaining(reason) })]);
  }
  expect(agent.applied?.generation).toBe(3);
  expect(readIfPresent('/root/.ssh/authorized_keys')).toBe(sshBefore);
  expect(existsSync('/tmp/ringmaster-pwned')).toBe(false);
  expect(existsSync(`${root}/escaped`)).toBe(false);
  expect(readFileSync(`${root}/etc/haproxy/haproxy.cfg`, 'utf8')).toBe(running);
  expect(await haproxyPid()).toBe(pid);
  expect((await answering()).failures).toBe(0);
  // The good document, re-signed later with the same generation (as the control plane does daily), is taken again.
  await store.put(storeKeys.desired('demo', 'web01'), JSON.stringify(signedForTest(content, 3)));
  expect(await agent.poll()).toEqual(expect.objectContaining({ kind: 'unchanged', generation: 3 }));
});

describe('under load, every change takes effect and no request fails', () => {
  const settle = () => new Promise((r) => setTimeout(r, 300));

  test('a rolling update: old pods drain while serving, new pods take over, old ones go', async () => {
    const pid = await haproxyPid();
    await publish(rgWith(['127.0.1.1', '127.0.1.3']));
    await agent.poll();
    const result = await underLoad(async () => {
      await settle();
      // The old pods turn terminating but keep serving; new pods become ready.
      await publish(rgWith(['127.0.1.6', '127.0.1.7'], {}, ['127.0.1.1', '127.0.1.3']));
      expect((await agent.poll()).result?.reloaded).toEqual([]);
      await settle();
      // They stop listening, and disappear from the slice.
      await stopPod('127.0.1.1');
      await stopPod('127.0.1.3');
      await publish(rgWith(['127.0.1.6', '127.0.1.7']));
      await agent.poll();
      await settle();
    });
    expect(result.failures).toBe(0);
    expect(result.requests).toBeGreaterThan(50);
    expect(await answering()).toEqual({ pods: ['127.0.1.6', '127.0.1.7'], failures: 0 });
    expect(await haproxyPid()).toBe(pid);
  }, 60000);

  test('a pod that stops listening with no warning: no GET fails, each is retried on another server', async () => {
    await publish(rgWith(['127.0.1.6', '127.0.1.7']));
    await agent.poll();
    // Besides whatever the load has in flight at the instant of the kill, one GET surely is:
    // the dying pod holds it unanswered (the other one answers such paths at once).
    holding.set('127.0.1.7', []);
    let held: Promise<{ status: number; body: string }> | undefined;
    const result = await underLoad(async () => {
      await settle();
      for (let i = 0; !held && i < 50; i++) {
        let answered = false;
        const response = once('GET', `/hold/${i}`).finally(() => (answered = true));
        await until(() => answered || holding.get('127.0.1.7')!.includes(`/hold/${i}`));
        if (!answered) held = response;
      }
      await killPod('127.0.1.7');
      await settle();
      await settle();
    });
    // New connections to the dead pod are refused, and retried on the other pod. The GETs it
    // had accepted (or the kernel had, for it) are reset unanswered: haproxy sends them again,
    // to the other pod, as they are idempotent and their response never started.
    expect(held).toBeDefined();
    expect(await held).toEqual({ status: 200, body: '127.0.1.6' });
    expect(result.failures).toBe(0);
    expect(result.requests).toBeGreaterThan(50);
    expect(result.answeredBy.has('127.0.1.6')).toBe(true);
  }, 60000);

  test('all pods gone: traffic goes to the backup load-balancer entries on the agents, every one of them', async () => {
    const result = await underLoad(async () => {
      await publish(rgWith([]));
      await agent.poll();
      await settle();
    });
    expect(result.failures).toBe(0);
    // `option allbackups`: both agents' load balancers answer, not only the first backup.
    expect(await answering()).toEqual({ pods: Object.values(AGENT_ADDRESSES).sort(), failures: 0 });
  }, 60000);

  test('the store away for 30 s: the last good state keeps serving, and a change made once it is back serves within 2 s', async () => {
    await publish(rgWith(['127.0.1.6']));
    await agent.poll();
    const pid = await haproxyPid();
    // The same agent as a VM runs it: its own poll loop, logging as the CLI does.
    const logs: Array<{ message: string; level: string; fields: Record<string, unknown>; at: number }> = [];
    const looping = new Agent({ client: agentClient, identity: { bucket: 'ringmaster', resourceGroup: 'demo', vm: 'web01' }, trustedKeys: TEST_TRUSTED_KEYS, root: '/', layout, stateDir: join(root, 'agent-state'), services: folder.services, log: (message, fields = {}, level = 'info') => logs.push({ message, level, fields, at: Date.now() }) });
    const stop = new AbortController();
    const running = looping.run(stop.signal);
    let recoveryMs = Number.NaN;
    try {
      const result = await underLoad(async () => {
        await s3.close();
        await new Promise((r) => setTimeout(r, 30_000));
        s3 = await startS3();
        const back = Date.now();
        await publish(rgWith(['127.0.1.6', '127.0.1.5']));
        const deadline = Date.now() + 20_000;
        while (Date.now() < deadline && (await answering(10)).pods.length < 2) await new Promise((r) => setTimeout(r, 50));
        recoveryMs = Date.now() - back;
      });
      process.stdout.write(`store away 30 s: serving the change ${recoveryMs} ms after the store was back; ${result.requests} requests, ${result.failures} failed\n`);
      expect(result.failures).toBe(0);
      expect(recoveryMs).toBeLessThanOrEqual(2000);
      expect(await answering()).toEqual({ pods: ['127.0.1.5', '127.0.1.6'], failures: 0 });
      expect(await haproxyPid()).toBe(pid);
      // Each failure is a warning with its attempt and next retry (a gateway keeps its 1 s poll); the end of the outage is said once.
      const warnings = logs.filter((l) => l.level === 'warn');
      expect(warnings.length).toBeGreaterThanOrEqual(20);
      expect(warnings.at(-1)!.fields).toMatchObject({ attempt: warnings.length, nextRetryAt: expect.any(String) });
      // However long the outage lasts, the next try is never more than a second away (no growing backoff).
      expect(Math.max(...warnings.map((w) => Date.parse(w.fields.nextRetryAt as string) - w.at))).toBeLessThanOrEqual(1000);
      const recovered = logs.filter((l) => l.message === 'store reachable again');
      expect(recovered).toHaveLength(1);
      expect(recovered[0]!.fields.outageSeconds).toBeGreaterThanOrEqual(29);
      // The report follows the apply that haproxy already serves: under load it may land a moment later.
      const readReport = async () => JSON.parse((await store.get(storeKeys.report('demo', 'web01')))!.body);
      let report = await readReport();
      for (const deadline = Date.now() + 5000; !report.lastOutage && Date.now() < deadline; report = await readReport()) await new Promise((r) => setTimeout(r, 100));
      expect(report).toMatchObject({ lastContact: expect.any(String), lastOutage: { seconds: expect.any(Number) } });
      expect(report.lastOutage.seconds).toBeGreaterThanOrEqual(29);
      // Routine 304 polls say nothing.
      expect(logs.filter((l) => l.level === 'info' && l.message !== 'store reachable again' && l.message !== 'applied' && l.message !== 'unchanged')).toEqual([]);
    } finally {
      stop.abort();
      await running;
      // The loop's agent applied the last documents; the file's agent takes them as they are.
      await agent.poll();
    }
  }, 90_000);

  test('the pods move to another port: the gateway follows them (a limitation of the spec, lifted)', async () => {
    const pid = await haproxyPid();
    await publish(rgWith(['127.0.1.6', '127.0.1.5']));
    await agent.poll();
    const result = await underLoad(async () => {
      await publish(rgWith(['127.0.1.8', '127.0.1.9'], {}, [], MOVED_PORT));
      expect((await agent.poll()).result?.reloaded).toEqual([]);
    });
    expect(result.failures).toBe(0);
    expect(await answering()).toEqual({ pods: ['127.0.1.8', '127.0.1.9'], failures: 0 });
    expect(await haproxyPid()).toBe(pid);
  }, 60000);
});

describe('a pod dies with a request in flight: only an idempotent one is sent again', () => {
  // Whichever of the two pods receives a trapped request first dies with it: no answer, the
  // connection reset. Which one does not matter, so nothing here depends on timing.
  beforeAll(async () => {
    await publish(rgWith(['127.0.1.8', '127.0.1.9'], {}, [], MOVED_PORT));
    await agent.poll();
    expect(await answering()).toEqual({ pods: ['127.0.1.8', '127.0.1.9'], failures: 0 });
  });

  test.each(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE'])('%s (idempotent) is retried on the other pod and succeeds', async (method) => {
    const path = `/trap/${method.toLowerCase()}`;
    const response = await once(method, path, method === 'PUT' ? 'the same state again' : undefined);
    expect(response.status).toBe(200);
    const seenBy = trapped.get(`${method} ${path}`)!;
    expect(seenBy).toHaveLength(2);
    expect(new Set(seenBy).size).toBe(2);
    if (method !== 'HEAD') expect(response.body).toBe(seenBy[1]);
  });

  test.each(['POST', 'PATCH'])('%s (not idempotent) is sent once, and the client gets a 502 rather than a second delivery', async (method) => {
    const path = `/trap/${method.toLowerCase()}`;
    const response = await once(method, path, 'charge the card');
    expect(response.status).toBe(502);
    // Give a (wrong) retry every chance to show up before counting.
    await new Promise((r) => setTimeout(r, 300));
    expect(trapped.get(`${method} ${path}`)).toHaveLength(1);
  });

  test('the next POST, not trapped, succeeds: the failed one cost no server', async () => {
    expect((await once('POST', '/after', 'hello')).status).toBe(200);
    expect(await answering()).toEqual({ pods: ['127.0.1.8', '127.0.1.9'], failures: 0 });
  });
});

test('jitter spreads polls by at least ±10 % around the interval', async () => {
  const { jittered } = await import('../agent/agent.ts');
  expect(jittered(1, () => 0)).toBeCloseTo(0.9);
  expect(jittered(1, () => 1)).toBeCloseTo(1.1);
  expect(jittered(30, () => 0.5)).toBeCloseTo(30);
});
