/**
 * End to end over real HTTP against `ringmaster serve`: provision the spec's reference
 * architecture by events, read every VM's document through the S3 protocol, and hold the
 * API to its promises on bad input, duplicates, signatures and poison messages.
 */
import { trustedRoot } from '../shared/contract/document-signing.ts';
import { startingTrust } from '../shared/contract/root-announcement.ts';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { S3Store } from '../adapters/s3-store.ts';
import { SqliteQueue } from '../adapters/sqlite-queue.ts';
import { agentCredentials } from '../shared/agent-identity.ts';
import { verifyStoredDocument } from '../shared/contract/document-envelope.ts';
import { storeKeys } from '../shared/contract/store-layout.ts';
import { signClusterRequest } from '../shared/contract/cluster-request-signing.ts';
import { type ControlPlaneProcess, startControlPlaneProcess, waitFor } from './helpers/control-plane-process.ts';
import { buildAgent } from '../scripts/build-agent.ts';
import { ROOT } from './helpers/fixtures.ts';

const events = parseYaml(readFileSync(`${ROOT}examples/events/reference-architecture.yaml`, 'utf8')) as Array<{ id: string; type: string; payload: any }>;
const dataDir = mkdtempSync(join(tmpdir(), 'ringmaster-local-'));
let cp: ControlPlaneProcess;

async function status(rg = 'demo') {
  const response = await cp.api('GET', `/v1/resource-groups/${rg}`);
  return response.status === 200 ? response.body : undefined;
}

async function documents(rg = 'demo'): Promise<Record<string, any>> {
  const keys = await cp.store.list(`desired/${rg}/`);
  return Object.fromEntries(await Promise.all(keys.map(async (key) => [key.split('/').pop()!.replace('.json', ''), JSON.parse((await cp.store.get(key))!.body)])));
}

beforeAll(async () => {
  cp = await startControlPlaneProcess(dataDir);
  const response = await cp.api('POST', '/v1/events', events);
  expect(response).toEqual({ status: 202, body: { accepted: events.map((e) => e.id) } });
  await waitFor('all six documents', async () => ((await status())?.documents.filter((d: { generation?: number }) => d.generation).length === 6 ? true : undefined));
}, 60000);

afterAll(async () => {
  await cp.kill();
  rmSync(dataDir, { recursive: true, force: true });
});

test("the reference architecture's documents are in the store, valid, and each VM gets its roles' files", async () => {
  const docs = await documents();
  expect(Object.keys(docs).sort()).toEqual(['db01', 'kube01', 'kube02', 'kube03', 'nfs01', 'web01']);
  for (const document of Object.values(docs)) {
    expect(document.generation).toBe(1);
    expect(verifyStoredDocument(JSON.stringify(document), { owner: { resourceGroup: 'demo', vm: document.vm }, trust: startingTrust(cp.info.trustedRoots.map((text) => trustedRoot(text)), undefined), now: new Date() })).toHaveProperty('document');
  }
  expect(docs.web01.files.map((f: { path: string }) => f.path)).toEqual(expect.arrayContaining(['/etc/haproxy/haproxy.cfg', '/etc/nginx/nginx.conf', '/etc/rancher/k3s/config.yaml']));
  expect(docs.kube01.kubernetes.accessUsers).toEqual(['alice']);
  expect(docs.kube01.kubernetes.controlPlane.apiUrl).toBe(cp.info.apiUrl);
  expect(docs.db01.files).toEqual([]);
  const token = docs.kube02.files.find((f: { path: string }) => f.path.endsWith('k3s-token')).content;
  expect(JSON.stringify(docs.db01)).not.toContain(token.trim());
  expect(JSON.stringify(docs.nfs01)).not.toContain(token.trim());
});

test('every event sent three more times changes nothing: same generations, nothing rewritten', async () => {
  const before = await documents();
  for (let i = 0; i < 3; i++) expect((await cp.api('POST', '/v1/events', events)).status).toBe(202);
  await waitFor('the queue to drain', async () => ((await cp.api('GET', '/healthz')).body.queued === 0 ? true : undefined));
  const after = await documents();
  expect(after).toEqual(before);
});

describe('bad requests are refused precisely and change nothing', () => {
  const vmEvent = (id: string, cpu: number) => ({ id, type: 'vm.upserted', resourceGroup: 'demo', occurredAt: '2026-11-24T11:00:00Z', payload: { vm: { name: 'extra', cpu, memoryMiB: 8192, roles: ['k3s-agent'], srvAddresses: ['172.22.48.30'] } } });

  test('no or a wrong token: 401', async () => {
    expect((await cp.api('POST', '/v1/events', events, { authorization: '' })).status).toBe(401);
    expect((await cp.api('POST', '/v1/events', events, { authorization: 'Bearer wrong' })).status).toBe(401);
    expect((await cp.api('GET', '/v1/resource-groups/demo', undefined, { authorization: 'Bearer wrong' })).status).toBe(401);
  });

  test('a batch with one bad event: 400 naming the event, field and reason; the good one is not applied either', async () => {
    const response = await cp.api('POST', '/v1/events', [vmEvent('good-1', 4), vmEvent('bad-1', 0), { id: 'bad-2', type: 'vm.exploded', resourceGroup: 'demo', occurredAt: 'yesterday' }]);
    expect(response.status).toBe(400);
    expect(response.body.errors).toEqual(
      expect.arrayContaining([
        { index: 1, id: 'bad-1', field: '[1].payload.vm.cpu', reason: 'must be at least 1' },
        expect.objectContaining({ index: 2, id: 'bad-2', field: '[2].type', reason: expect.stringContaining('must be one of the event types') }),
      ]),
    );
    await cp.api('POST', '/v1/events', [{ ...vmEvent('probe-1', 4), payload: { vm: { ...vmEvent('x', 4).payload.vm, name: 'probe' } } }]);
    await waitFor('the probe VM', async () => ((await status())?.documents.some((d: { vm: string }) => d.vm === 'probe') ? true : undefined));
    expect((await status()).documents.map((d: { vm: string }) => d.vm)).not.toContain('extra');
  });

  test('a misspelt role: 400 naming the field and the known roles, not a VM that silently gets an empty document', async () => {
    const typo = { ...vmEvent('typo-1', 4), payload: { vm: { ...vmEvent('x', 4).payload.vm, name: 'typo', roles: ['k3s-agnet'] } } };
    const response = await cp.api('POST', '/v1/events', [typo]);
    expect(response.status).toBe(400);
    expect(response.body.errors).toEqual([
      { index: 0, id: 'typo-1', field: '[0].payload.vm.roles[0]', reason: 'unknown Kubernetes role "k3s-agnet" (did you mean "k3s-agent"?): the Kubernetes roles are webgateway, k3s-server, k3s-agent, k3s-nfs' },
    ]);
  });

  test("replacing the k3s server is refused: the status names the event and the spec's reason, and no document changes", async () => {
    const before = await documents();
    const secondServer = { ...vmEvent('second-server-1', 4), payload: { vm: { ...vmEvent('x', 4).payload.vm, name: 'kube09', roles: ['k3s-server'] } } };
    const deleteServer = { id: 'delete-server-1', type: 'vm.deleted', resourceGroup: 'demo', occurredAt: '2026-11-24T12:00:00Z', payload: { name: 'kube01' } };
    expect((await cp.api('POST', '/v1/events', [secondServer, deleteServer])).status).toBe(202);
    const rejections = await waitFor('both rejections', async () => {
      const found = (await status())?.rejections.filter((r: { eventId: string }) => ['second-server-1', 'delete-server-1'].includes(r.eventId));
      return found?.length === 2 ? found : undefined;
    });
    expect(rejections).toEqual([
      expect.objectContaining({ eventId: 'second-server-1', type: 'vm.upserted', reason: expect.stringContaining('kube09 cannot become a k3s-server: kube01 runs the k3s server of this cluster, and changing the VM which runs the k3s server is not supported') }),
      expect.objectContaining({ eventId: 'delete-server-1', type: 'vm.deleted', reason: expect.stringContaining('kube01 cannot be deleted') }),
    ]);
    expect((await status()).documents.map((d: { vm: string }) => d.vm)).not.toContain('kube09');
    expect(await documents()).toEqual(before);
  });

  test('malformed JSON, a wrong content type, an oversized body', async () => {
    const malformed = await cp.api('POST', '/v1/events', '{"id": ', { 'content-type': 'application/json' });
    expect(malformed.status).toBe(400);
    expect(malformed.body.errors[0]).toEqual({ field: 'body', reason: expect.stringContaining('not valid JSON') });
    expect((await cp.api('POST', '/v1/events', 'id=1', { 'content-type': 'application/x-www-form-urlencoded' })).status).toBe(415);
    const huge = [vmEvent('huge', 4)].map((e) => ({ ...e, payload: { vm: { ...e.payload.vm, roles: Array.from({ length: 30000 }, (_, i) => `role-${i}`) } } }));
    const oversized = await cp.api('POST', '/v1/events', huge);
    expect(oversized.status).toBe(413);
    // Far over every limit, on the unauthenticated cluster route too: 413, never a 500, and the server answers the next request.
    const megabytes = `"${'x'.repeat(3 * 1024 * 1024)}"`;
    for (const path of ['/v1/events', '/v1/clusters/demo/endpoints']) expect([path, (await cp.api('POST', path, megabytes, { 'content-type': 'application/json' })).status]).toEqual([path, 413]);
    expect((await cp.api('GET', '/healthz')).status).toBe(200);
    // JSON is UTF-8: another declared charset is refused, not misread.
    const utf16 = await cp.api('POST', '/v1/events', JSON.stringify(events[0]), { 'content-type': 'application/json; charset=utf-16' });
    expect(utf16.status).toBe(415);
    expect(utf16.body.detail).toContain('charset utf-16');
    expect((await cp.api('POST', '/v1/events', JSON.stringify(events[0]), { 'content-type': 'application/json; charset=UTF-8' })).status).toBe(202);
  });

  test('unknown routes and methods', async () => {
    expect((await cp.api('GET', '/v1/nothing')).status).toBe(404);
    expect((await cp.api('DELETE', '/v1/events')).status).toBe(405);
  });
});

describe('the endpoint webhook', () => {
  let key: string;
  const body = (rv: string, ips: string[]) =>
    JSON.stringify({
      changes: [
        {
          type: 'MODIFIED',
          object: {
            metadata: { name: 'myapp-abc', namespace: 'default', resourceVersion: rv, labels: { 'kubernetes.io/service-name': 'myapp' } },
            addressType: 'IPv4',
            ports: [{ name: 'http', port: 8888, protocol: 'TCP' }],
            endpoints: ips.map((ip) => ({ addresses: [ip], conditions: { ready: true, serving: true, terminating: false }, targetRef: { kind: 'Pod', namespace: 'default', name: `myapp-${ip}` } })),
          },
        },
      ],
    });
  const post = (text: string, timestamp: number, signature = signClusterRequest(key, timestamp, text)) =>
    cp.api('POST', '/v1/clusters/demo/endpoints', text, { 'content-type': 'application/json', 'x-ringmaster-timestamp': String(timestamp), 'x-ringmaster-signature': signature, authorization: '' });
  const now = () => Math.floor(Date.now() / 1000);

  beforeAll(async () => {
    key = JSON.parse((await cp.store.get(storeKeys.state('demo')))!.body).description.secrets.webhookKey;
  });

  test('a signed change reaches the webgateway document as pod servers', async () => {
    const response = await post(body('100', ['10.42.2.14', '10.42.3.21']), now());
    expect(response.status).toBe(202);
    const gateway = await waitFor('pods in web01', async () => {
      const doc = (await documents()).web01;
      return doc.haproxy.backends[0].slots.some((s: { address?: string }) => s.address === '10.42.3.21') ? doc : undefined;
    });
    expect(gateway.haproxy.backends[0].slots.filter((s: { address?: string }) => s.address).map((s: { address: string; port: number }) => `${s.address}:${s.port}`)).toEqual(['10.42.2.14:8888', '10.42.3.21:8888']);
  });

  test('a bad signature, a stale timestamp and a replay are refused', async () => {
    const text = body('101', ['10.42.9.9']);
    expect((await post(text, now(), `v1=${'0'.repeat(64)}`)).status).toBe(401);
    const stale = await post(text, now() - 600);
    expect(stale.status).toBe(401);
    expect(stale.body.detail).toContain('more than 300 s');
    const timestamp = now();
    expect((await post(text, timestamp)).status).toBe(202);
    expect((await post(text, timestamp)).status).toBe(409);
  });

  test('an out-of-order (older) resourceVersion is ignored', async () => {
    expect((await post(body('102', ['10.42.5.5']), now())).status).toBe(202);
    expect((await post(body('99', ['10.42.6.6']), now())).status).toBe(202);
    await waitFor('the queue to drain', async () => ((await cp.api('GET', '/healthz')).body.queued === 0 ? true : undefined));
    const slots = (await documents()).web01.haproxy.backends[0].slots.filter((s: { address?: string }) => s.address).map((s: { address: string }) => s.address);
    expect(slots).toEqual(['10.42.5.5']);
  });

  test('an unknown resource group answers like a bad signature', async () => {
    const text = body('1', []);
    const response = await cp.api('POST', '/v1/clusters/nosuchrg/endpoints', text, { 'content-type': 'application/json', 'x-ringmaster-timestamp': String(now()), 'x-ringmaster-signature': signClusterRequest('x'.repeat(32), now(), text) });
    expect(response.status).toBe(401);
  });
});

describe('kubeconfig delivery from the server (signed) and reading by the portal', () => {
  let key: string;
  const kubeconfig = 'apiVersion: v1\nkind: Config\nusers: [{name: alice, user: {token: secret-token-123}}]\n';
  const deliver = (value: unknown, timestamp = Math.floor(Date.now() / 1000)) => {
    const text = JSON.stringify(value);
    return cp.api('POST', '/v1/clusters/demo/kubeconfigs', text, { 'content-type': 'application/json', 'x-ringmaster-timestamp': String(timestamp), 'x-ringmaster-signature': signClusterRequest(key, timestamp, text), authorization: '' });
  };
  const inAnHour = () => new Date(Date.now() + 3_600_000).toISOString();

  beforeAll(async () => {
    key = JSON.parse((await cp.store.get(storeKeys.state('demo')))!.body).description.secrets.webhookKey;
  });

  test('bad deliveries are refused with the field and the reason, and store nothing', async () => {
    const bad = await deliver({ user: 'Alice!', kubeconfig: '', expiresAt: 'tomorrow' });
    expect(bad.status).toBe(400);
    expect(bad.body.errors.map((e: { field: string }) => e.field).sort()).toEqual(['expiresAt', 'kubeconfig', 'user']);
    const past = await deliver({ user: 'alice', kubeconfig, expiresAt: '2020-01-01T00:00:00Z' });
    expect(past.body.errors).toEqual([{ field: 'expiresAt', reason: 'is in the past' }]);
    const text = JSON.stringify({ user: 'alice', kubeconfig, expiresAt: inAnHour() });
    const unsigned = await cp.api('POST', '/v1/clusters/demo/kubeconfigs', text, { 'content-type': 'application/json', 'x-ringmaster-timestamp': String(Math.floor(Date.now() / 1000)), 'x-ringmaster-signature': `v1=${'0'.repeat(64)}`, authorization: '' });
    expect(unsigned.status).toBe(401);
    expect(await cp.store.list('kubeconfigs/demo/')).toEqual([]);
  });

  test('a delivery is stored for the portal, the status says where and until when, and no log or state holds it', async () => {
    const expiresAt = inAnHour();
    const accepted = await deliver({ user: 'alice', kubeconfig, expiresAt });
    expect(accepted).toMatchObject({ status: 202, body: { location: expect.stringMatching(/^kubeconfigs\/demo\/alice\/wh-[0-9a-f]{64}\.yaml$/) } });
    const status = await waitFor('the kubeconfig in the status', async () => (await status_())?.kubeconfigs?.find((k: { user: string }) => k.user === 'alice'));
    expect(status).toMatchObject({ location: accepted.body.location, expiresAt: new Date(expiresAt).toISOString() });
    const read = await fetch(`${cp.info.apiUrl}/v1/resource-groups/demo/kubeconfigs/alice`, { headers: { authorization: `Bearer ${cp.info.apiToken}` } });
    expect(read.status).toBe(200);
    expect(await read.text()).toBe(kubeconfig);
    expect((await cp.api('GET', '/v1/resource-groups/demo/kubeconfigs/bob')).status).toBe(404);
    expect((await cp.api('GET', '/v1/resource-groups/demo/kubeconfigs/Bad!')).status).toBe(400);
    expect((await cp.store.get(storeKeys.state('demo')))!.body).not.toContain('secret-token-123');
    expect(cp.output()).not.toContain('secret-token-123');
  });

  test('a kubeconfig for a user without sudo-srv is refused when its event is applied, and deleted', async () => {
    expect((await deliver({ user: 'bob', kubeconfig, expiresAt: inAnHour() })).status).toBe(202);
    await waitFor('the refusal', async () => ((await status_())?.rejections.some((r: { type: string; reason: string }) => r.type === 'kubeconfig.issued' && r.reason.includes('user bob')) ? true : undefined));
    expect(await cp.store.list('kubeconfigs/demo/bob/')).toEqual([]);
  });
});

test('a VM other than the k3s server cannot report maintenance steps for others', async () => {
  const { masterKey } = JSON.parse(readFileSync(join(dataDir, 'credentials.json'), 'utf8')) as { masterKey: string };
  const web01 = new S3Store({ bucket: cp.info.bucket, endpoint: cp.info.s3Endpoint, region: cp.info.region, credentials: agentCredentials(masterKey, 'demo', 'web01') });
  const forged = {
    resourceGroup: 'demo', vm: 'web01', appliedGeneration: 1, appliedHash: 'sha256:x', outcome: 'applied', at: new Date().toISOString(),
    kubernetes: {
      at: new Date().toISOString(), accessUsers: [], revoked: [], kubeconfigsDelivered: [], endpointWebhook: { calls: 0, failures: 0 }, errors: [],
      drain: [{ node: 'kube02', phase: 'drained', remainingPods: 0, blockedPods: [], safeToTakeDown: true, message: 'forged' }],
    },
  };
  await web01.put(storeKeys.report('demo', 'web01'), JSON.stringify(forged));
  const status = await status_();
  expect(status.documents.find((d: { vm: string }) => d.vm === 'web01').agent.kubernetes.drain[0].message).toBe('forged');
  expect(status.maintenance).toEqual([]);
});

test("ringmaster status lists each TLS host's certificate as the webgateway's agent reports it: valid until when, or failing with why and the next try", async () => {
  const { masterKey } = JSON.parse(readFileSync(join(dataDir, 'credentials.json'), 'utf8')) as { masterKey: string };
  const web01 = new S3Store({ bucket: cp.info.bucket, endpoint: cp.info.s3Endpoint, region: cp.info.region, credentials: agentCredentials(masterKey, 'demo', 'web01') });
  const report = {
    resourceGroup: 'demo', vm: 'web01', appliedGeneration: 1, appliedHash: 'sha256:x', outcome: 'applied', at: new Date().toISOString(),
    certificates: [
      { host: 'myapp.example.com', state: 'valid', notAfter: '2027-03-04T16:01:11Z', renewAt: '2027-02-02T16:01:11Z', orders: 1 },
      { host: 'shop.example.com', state: 'failing', error: 'the directory cannot be reached: ECONNREFUSED', nextTryAt: '2026-12-04T16:22:29Z', orders: 3 },
    ],
  };
  await web01.put(storeKeys.report('demo', 'web01'), JSON.stringify(report));
  const printed = spawnSync(process.execPath, [`${ROOT}cli/ringmaster.ts`, 'status', 'demo', '--wide', '--api-url', cp.info.apiUrl, '--data-dir', dataDir], { encoding: 'utf8' });
  expect(printed.status).toBe(0);
  expect(printed.stdout).toMatch(/Certificates:\nVM\s+HOST\s+STATE\s+DETAIL\n/);
  expect(printed.stdout).toMatch(/web01\s+myapp\.example\.com\s+valid\s+valid until 2027-03-04T16:01:11Z, renewed from 2027-02-02T16:01:11Z/);
  expect(printed.stdout).toMatch(/web01\s+shop\.example\.com\s+failing\s+the directory cannot be reached: ECONNREFUSED; next try 2026-12-04T16:22:29Z/);
  expect(printed.stdout).toMatch(/health: warning \(.*certificate failing: shop\.example\.com on web01 \(next try 2026-12-04T16:22:29Z\)/);
});

async function status_(rg = 'demo') {
  const response = await cp.api('GET', `/v1/resource-groups/${rg}`);
  return response.status === 200 ? response.body : undefined;
}

test('a poison message goes to the dead-letter queue with its reason, and the group goes on', async () => {
  const queue = new SqliteQueue({ path: join(dataDir, 'queue.db') });
  await queue.send([{ id: 'poison-1', group: 'demo', body: '{"id":"poison-1","type":"vm.upserted","resourceGroup":"demo"}' }]);
  queue.close();
  const letters = await waitFor('the dead letter', async () => {
    const response = await cp.api('GET', '/v1/dead-letters');
    return response.body.deadLetters.length > 0 ? response.body.deadLetters : undefined;
  });
  expect(letters).toEqual([expect.objectContaining({ id: 'poison-1', resourceGroup: 'demo', type: 'vm.upserted', reason: expect.stringContaining('not a valid event') })]);
  expect(letters[0].reason).toContain('occurredAt');
  const followUp = { id: 'after-poison', type: 'user.upserted', resourceGroup: 'demo', occurredAt: '2026-11-24T11:00:00Z', payload: { user: { name: 'carol', permissions: ['sudo-srv'] } } };
  expect((await cp.api('POST', '/v1/events', followUp)).status).toBe(202);
  await waitFor('carol', async () => ((await documents()).kube01.kubernetes.accessUsers.includes('carol') ? true : undefined));
});

describe('the operator commands against the running control plane', () => {
  const ringmaster = (...args: string[]) => {
    const result = spawnSync(process.execPath, [`${ROOT}cli/ringmaster.ts`, ...args, '--api-url', cp.info.apiUrl, '--data-dir', dataDir], { encoding: 'utf8' });
    return { status: result.status, stdout: result.stdout, stderr: result.stderr };
  };

  test('event send accepts a YAML file of events, and names the field of a bad one', () => {
    const file = join(dataDir, 'more-events.yaml');
    writeFileSync(file, '- id: cli-1\n  type: user.upserted\n  resourceGroup: demo\n  occurredAt: "2026-11-24T11:30:00Z"\n  payload: { user: { name: dave, permissions: [sudo-srv] } }\n');
    expect(ringmaster('event', 'send', file)).toMatchObject({ status: 0, stdout: 'accepted 1 event(s): cli-1\n' });
    writeFileSync(file, '- id: cli-2\n  type: user.upserted\n  resourceGroup: demo\n  occurredAt: "2026-11-24T11:30:00Z"\n  payload: { user: { name: Dave } }\n');
    const bad = ringmaster('event', 'send', file);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain(`${file}: [0].payload.user.name (event cli-2): must be a login name`);
  });

  test('status prints the documents, the agents and the findings', async () => {
    await waitFor('dave', async () => ((await documents()).kube01.kubernetes.accessUsers.includes('dave') ? true : undefined));
    const result = ringmaster('status', 'demo');
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/VM\s+ROLES\s+GENERATION\s+STORED\s+AGENT\s+IN SYNC\s+BLOCKED BY/);
    expect(result.stdout).toMatch(/kube01\s+k3s-server\s+(\d+)\s+\1 [0-9a-f]{12}\s+no report\s+no/);
    expect(JSON.parse(ringmaster('status', 'demo', '--json').stdout).resourceGroup).toBe('demo');
    expect(ringmaster('status', 'nosuch')).toMatchObject({ status: 2, stderr: expect.stringContaining('404') });
  });

  test('history names the events that produced each generation of a VM, newest first; the API serves it', async () => {
    await waitFor('dave', async () => ((await documents()).kube01.kubernetes.accessUsers.includes('dave') ? true : undefined));
    const history = (await cp.api('GET', '/v1/resource-groups/demo/history')).body;
    const kube01 = history.vms.find((v: { vm: string }) => v.vm === 'kube01').entries;
    // dave's user event (cli-1) made the newest generation of the server's document; the first came from provisioning.
    expect(kube01[0]).toMatchObject({ generation: (await documents()).kube01.generation, events: expect.arrayContaining([expect.objectContaining({ id: 'cli-1', type: 'user.upserted' })]) });
    expect(kube01.at(-1).generation).toBeLessThan(kube01[0].generation);
    expect(kube01.map((e: { generation: number }) => e.generation)).toEqual([...kube01.map((e: { generation: number }) => e.generation)].sort((a, b) => b - a));
    const printed = ringmaster('history', 'demo', 'kube01');
    expect(printed.status).toBe(0);
    expect(printed.stdout).toMatch(/VM\s+GENERATION\s+HASH\s+STORED AT\s+EVENTS\s+AGENT/);
    expect(printed.stdout).toMatch(/kube01\s+\d+\s+[0-9a-f]{12}\s+\S+\s+.*cli-1 \(user\.upserted\)/);
    expect(printed.stdout).not.toMatch(/^web01/m);
    expect(ringmaster('history', 'demo', 'nosuchvm')).toMatchObject({ status: 2, stderr: expect.stringContaining('vm: nosuchvm has no history in demo') });
    const badDepth = spawnSync(process.execPath, [`${ROOT}cli/ringmaster.ts`, 'serve', '--history-depth', '0', '--data-dir', dataDir], { encoding: 'utf8' });
    expect(badDepth.status).not.toBe(0);
    expect(badDepth.stderr).toContain("option '--history-depth <n>' argument '0' is invalid. must be a whole number from 1 to 1000");
  });

  test('dlq list shows the reason and dlq replay sends letters back', async () => {
    const queue = new SqliteQueue({ path: join(dataDir, 'queue.db') });
    await queue.send([{ id: 'cli-poison', group: 'demo', body: '{"nope":1}' }]);
    queue.close();
    await waitFor('the dead letter', async () => ((await cp.api('GET', '/v1/dead-letters')).body.deadLetters.some((d: { id: string }) => d.id === 'cli-poison') ? true : undefined));
    const list = ringmaster('dlq', 'list');
    expect(list.stdout).toMatch(/cli-poison\s+demo\s+\?\s+not a valid event/);
    expect(ringmaster('dlq', 'replay', 'cli-poison')).toMatchObject({ status: 0, stdout: 'replayed 1 dead letter(s)\n' });
  });

  test('a wrong token is refused, and an unreachable control plane is said so', () => {
    const refused = spawnSync(process.execPath, [`${ROOT}cli/ringmaster.ts`, 'status', 'demo', '--api-url', cp.info.apiUrl, '--token', 'wrong'], { encoding: 'utf8' });
    expect(refused.status).toBe(2);
    expect(refused.stderr).toContain('401');
    const unreachable = spawnSync(process.execPath, [`${ROOT}cli/ringmaster.ts`, 'status', 'demo', '--api-url', 'http://127.0.0.1:9', '--token', 'x'], { encoding: 'utf8' });
    expect(unreachable.status).toBe(1);
    expect(unreachable.stderr).toContain('cannot reach the control plane at http://127.0.0.1:9');
  });
});

test("agent-credentials gives a VM a key for its own document and report only", async () => {
  const result = spawnSync(process.execPath, [`${ROOT}cli/ringmaster.ts`, 'agent-credentials', 'demo', 'web01', '--data-dir', dataDir], { encoding: 'utf8' });
  expect(result.status).toBe(0);
  const env = Object.fromEntries(result.stdout.trim().split('\n').map((line) => line.split(/=(.*)/s).slice(0, 2)));
  const agent = new S3Store({ bucket: env.RINGMASTER_BUCKET, endpoint: cp.info.s3Endpoint, region: env.AWS_REGION, credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY } });
  expect(JSON.parse((await agent.get('desired/demo/web01.json'))!.body).vm).toBe('web01');
  await expect(agent.get('desired/demo/kube01.json')).rejects.toThrow(/Access Denied/);
  await expect(agent.get('state/demo.json')).rejects.toThrow(/Access Denied/);
});

test('ringmaster agent --once with its own credentials fetches, applies and reports; the status shows it', async () => {
  const credentials = spawnSync(process.execPath, [`${ROOT}cli/ringmaster.ts`, 'agent-credentials', 'demo', 'db01', '--data-dir', dataDir], { encoding: 'utf8' });
  const env = { ...process.env, ...Object.fromEntries(credentials.stdout.trim().split('\n').map((line) => line.split(/=(.*)/s).slice(0, 2))), RINGMASTER_S3_ENDPOINT: cp.info.s3Endpoint, RINGMASTER_LOG_LEVEL: 'ERROR' };
  const root = mkdtempSync(join(tmpdir(), 'ringmaster-vm-'));
  try {
    const result = spawnSync(process.execPath, [`${ROOT}cli/ringmaster.ts`, 'agent', '--once', '--root', root, '--state-dir', join(root, 'state')], { encoding: 'utf8', env });
    expect(result.stderr).toBe('');
    // db01 has no Kubernetes role: its document is empty, so there is nothing to change.
    expect(JSON.parse(result.stdout)).toMatchObject({ outcome: 'unchanged', generation: 1 });
    // The same with the bundle that ships to VMs, copied where no node_modules can help it.
    await buildAgent(join(root, 'bundle'));
    const bundled = spawnSync(process.execPath, [join(root, 'bundle', 'ringmaster.mjs'), 'agent', '--once', '--root', root, '--state-dir', join(root, 'state-bundle')], { encoding: 'utf8', env, cwd: root });
    expect(bundled.stderr).toBe('');
    expect(JSON.parse(bundled.stdout)).toMatchObject({ outcome: 'unchanged', generation: 1 });
    const db01 = (await status()).documents.find((d: { vm: string }) => d.vm === 'db01');
    expect(db01).toMatchObject({ inSync: true, agent: { appliedGeneration: 1, outcome: 'unchanged' } });
    const bad = spawnSync(process.execPath, [`${ROOT}cli/ringmaster.ts`, 'agent', '--once', '--vm', 'DB01'], { encoding: 'utf8', env });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('--vm (RINGMASTER_VM): must be lower-case letters');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
