/**
 * Hostile input at every route of the real `ringmaster serve`, over real HTTP: 1,200 generated
 * requests (fast-check) with broken, mutated, deeply nested, oversized or wrongly declared
 * bodies and odd path parameters, authenticated as the portal or signed with the cluster's
 * real key so they reach validation. Every answer is a 4xx problem naming a reason, never a
 * 5xx; the process stays up; not one stored object changes and nothing is queued.
 */
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { agentRequestHeaders } from '../agent/canary-reporter.ts';
import { agentCredentials } from '../shared/agent-identity.ts';
import { clusterRequestHeaders } from '../shared/contract/cluster-request-signing.ts';
import { MAX_QUEUED_BODY_BYTES, type RouteId, routes } from '../shared/contract/routes.ts';
import { storeKeys } from '../shared/contract/store-layout.ts';
import { dnsLabel } from '../shared/schema/primitives.ts';
import { type ControlPlaneProcess, startControlPlaneProcess, waitFor } from './helpers/control-plane-process.ts';

const RG = 'hostile';
const dataDir = mkdtempSync(join(tmpdir(), 'ringmaster-hostile-'));
let cp: ControlPlaneProcess;
let clusterKey: string;
let masterKey: string;

const at = (second: number) => `2026-12-04T10:00:${String(second).padStart(2, '0')}Z`;
const validEvent = { id: 'h-vm', type: 'vm.upserted', resourceGroup: RG, occurredAt: at(5), payload: { vm: { name: 'kube02', roles: ['k3s-agent'], cpu: 2, memoryMiB: 4096, disks: [{ sizeGiB: 30, kind: 'hdd' }], srvAddresses: ['172.22.0.3'] } } };

beforeAll(async () => {
  cp = await startControlPlaneProcess(dataDir);
  ({ masterKey } = JSON.parse(readFileSync(join(dataDir, 'credentials.json'), 'utf8')) as { masterKey: string });
  const provision = [
    { id: 'h-p', type: 'cluster.provisioned', resourceGroup: RG, occurredAt: at(0), payload: { settings: {} } },
    { id: 'h-s', type: 'vm.upserted', resourceGroup: RG, occurredAt: at(1), payload: { vm: { name: 'kube01', roles: ['k3s-server'], cpu: 2, memoryMiB: 8192, disks: [{ sizeGiB: 30, kind: 'ssd' }], srvAddresses: ['172.22.0.2'] } } },
  ];
  expect((await cp.api('POST', '/v1/events', provision)).status).toBe(202);
  clusterKey = await waitFor('the cluster key', async () => {
    const object = await cp.store.get(storeKeys.clusterAuth(RG));
    return object ? (JSON.parse(object.body).key as string) : undefined;
  });
  await waitFor('the queue to drain', async () => ((await cp.api('GET', '/healthz')).body.queued === 0 ? true : undefined));
}, 60000);

afterAll(async () => {
  await cp?.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

/** Every stored object and its ETag. */
async function snapshot(): Promise<Map<string, string>> {
  const keys = await cp.store.list('');
  return new Map(await Promise.all(keys.map(async (key) => [key, (await cp.store.get(key))?.etag ?? 'gone'] as const)));
}

/** A JSON value with some of what attackers like in it. */
const nasty = fc.oneof(
  fc.jsonValue(),
  fc.constantFrom('__proto__', 'constructor', '../../etc/passwd', 'a'.repeat(70_000), '\u0000', '\ud800', '1e999', '-0', 'NaN'),
  fc.dictionary(fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty'), fc.jsonValue()),
);

/** A valid event with one field (top level or in the payload) replaced, or an unknown one added. */
const mutatedEvent = fc
  .tuple(fc.constantFrom('id', 'type', 'resourceGroup', 'occurredAt', 'payload', 'payload.vm', 'payload.vm.name', 'payload.vm.roles', 'payload.vm.srvAddresses', 'extra'), nasty)
  .map(([field, value]) => {
    const event = structuredClone(validEvent) as Record<string, any>;
    const path = field.split('.');
    let target = event;
    for (const step of path.slice(0, -1)) target = target[step];
    target[path.at(-1)!] = value;
    return event;
  });

const body = fc.oneof(
  fc.jsonValue().map((value) => JSON.stringify(value)),
  mutatedEvent.map((event) => JSON.stringify(event)),
  mutatedEvent.map((event) => JSON.stringify([validEvent, event])),
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.constantFrom(
    '',
    '[',
    '[]',
    '{}',
    'null',
    '{"__proto__":{"polluted":true}}',
    '['.repeat(20_000) + ']'.repeat(20_000),
    '{"a":'.repeat(5_000) + '1' + '}'.repeat(5_000),
    JSON.stringify(Array.from({ length: 101 }, () => validEvent)),
    JSON.stringify({ changes: [{ namespace: 'x'.repeat(500) }] }),
    JSON.stringify({ user: '../../root' }),
    JSON.stringify({ ids: ['a'.repeat(1000)] }),
    `{"pad":"${'x'.repeat(MAX_QUEUED_BODY_BYTES)}"}`,
  ),
);

const contentType = fc.constantFrom('application/json', 'application/json; charset=utf-8', 'application/json; charset=utf-16', 'text/plain', 'application/x-www-form-urlencoded', undefined);

/** A path parameter: now and then a valid one, mostly not. */
const parameter = fc.oneof(fc.constant(RG), fc.string({ maxLength: 80 }), fc.constantFrom('..', '.', '%2e%2e', 'HOSTILE', 'a'.repeat(64), 'state', 'x\ny', ' '));

type Auth = 'right' | 'none' | 'wrong';
function isValidBody(schema: { safeParse(value: unknown): { success: boolean } }, text: string): boolean {
  try {
    return schema.safeParse(JSON.parse(text)).success;
  } catch {
    return false;
  }
}
/** Run first, whatever the seed draws: a body one past the limit, so the 413 is always among the answers. */
const oversized: [RouteId, string, string | undefined, string, string, Auth] = ['postEvents', `{"pad":"${'x'.repeat(MAX_QUEUED_BODY_BYTES)}"}`, 'application/json', RG, RG, 'right'];
const routesWithInput = (Object.keys(routes) as RouteId[]).filter((id) => 'body' in routes[id] || routes[id].path.includes('{'));

test('1,200 hostile requests to every route: each a 4xx with a reason, never a 5xx; nothing stored or queued changes', async () => {
  expect(routesWithInput.sort()).toEqual(['getKubeconfig', 'getResourceGroup', 'getResourceGroupHistory', 'getResourceGroupPage', 'postCanaryReport', 'postClusterCa', 'postClusterEndpoints', 'postClusterKubeconfig', 'postEvents', 'replayDeadLetters']);
  const before = await snapshot();
  const answers = new Map<number, number>();
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...routesWithInput), body, contentType, parameter, parameter, fc.constantFrom<Auth>('right', 'right', 'right', 'none', 'wrong'), async (id, text, type, rg, user, auth) => {
      const route = routes[id];
      const path = route.path.replace('{rg}', encodeURIComponent(rg)).replace('{user}', encodeURIComponent(user)).replace('{vm}', encodeURIComponent(user));
      const sendsBody = route.method !== 'GET';
      // A GET with both parameters valid is a legitimate read: not hostile.
      fc.pre(sendsBody || rg !== RG);
      // A mutation can land on a valid event (an id of `__proto__` is a valid id): not hostile.
      fc.pre(!('body' in route) || !isValidBody(route.body.schema, text));
      // The page holds no data: it is served for any well-formed group name (its reads then 404), so only bad names are hostile there.
      fc.pre(id !== 'getResourceGroupPage' || !dnsLabel.safeParse(rg).success);
      // A name of "" or ".." leaves a path (as the URL resolves it) that is a legitimate read too: the list of groups, the page's overview.
      const landsOn = new URL(path, cp.info.apiUrl).pathname;
      fc.pre(sendsBody || ![routes.getStatusPage.path, `${routes.listResourceGroups.path}/`].includes(landsOn));
      const headers: Record<string, string> = {};
      if (route.auth === 'portal' && auth !== 'none') headers.authorization = auth === 'right' ? `Bearer ${cp.info.apiToken}` : 'Bearer not-the-token';
      if (route.auth === 'cluster' && auth !== 'none') Object.assign(headers, clusterRequestHeaders(auth === 'right' ? clusterKey : 'w'.repeat(32), Math.floor(Date.now() / 1000), text));
      if (route.auth === 'agent' && auth !== 'none') {
        // Signed by the VM the path names (or, for 'wrong', by another VM): SigV4 over the exact body.
        // (A name no VM can have cannot go in a key id either: a real VM's key is used for it.)
        const [keyRg, keyVm] = dnsLabel.safeParse(rg).success && dnsLabel.safeParse(user).success ? [rg, user] : [RG, 'kube01'];
        const credentials = agentCredentials(masterKey, keyRg, auth === 'right' ? keyVm : `${keyVm}-other`);
        Object.assign(headers, await agentRequestHeaders(`${cp.info.apiUrl}${path}`, text, { credentials, region: cp.info.region }));
      }
      if (sendsBody && type) headers['content-type'] = type;
      else delete headers['content-type'];
      const response = await fetch(`${cp.info.apiUrl}${path}`, { method: route.method, headers, ...(sendsBody ? { body: text } : {}) });
      const answer = await response.text();
      answers.set(response.status, (answers.get(response.status) ?? 0) + 1);
      expect({ id, status: response.status }).toEqual({ id, status: expect.any(Number) });
      if (response.status < 400 || response.status >= 500) throw new Error(`${route.method} ${path} (${type}, ${text.slice(0, 80)}) answered ${response.status}: ${answer.slice(0, 200)}`);
      const problem = JSON.parse(answer) as { title?: string; detail?: string };
      expect(typeof (problem.detail ?? problem.title)).toBe('string');
    }),
    { numRuns: 1200, seed: 20261204, examples: [oversized] },
  );
  expect((await cp.api('GET', '/healthz')).body).toEqual({ ok: true, queued: 0 });
  expect(await snapshot()).toEqual(before);
  console.log(`hostile requests: answers by status ${JSON.stringify(Object.fromEntries(answers))}`);
  expect([...answers.keys()].sort()).toEqual(expect.arrayContaining([400, 401, 404, 413, 415]));
}, 300000);
