/**
 * Signed documents end to end, in the local control plane with a clock the test moves: every
 * stored copy is signed with the key `agent-credentials` prints, signed again a day later by
 * the refresh (same generation, new expiry), and an agent refuses a copy that has expired.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { Agent } from '../agent/agent.ts';
import type { LocalControlPlane } from '../local/control-plane.ts';
import { startDemoControlPlane } from './helpers/local-demo.ts';
import { agentCredentials } from '../shared/agent-identity.ts';
import { trustedRoot } from '../shared/contract/document-signing.ts';
import { storeKeys } from '../shared/contract/store-layout.ts';
import { waitFor } from './helpers/control-plane-process.ts';

const HOUR = 3600_000;
const dataDir = mkdtempSync(join(tmpdir(), 'ringmaster-signing-'));
let offset = 0;
const clock = () => new Date(Date.now() + offset);
let cp: LocalControlPlane;

const stored = async (vm: string) => JSON.parse((await cp.store.get(storeKeys.desired('demo', vm)))!.body) as { generation: number; expiresAt: string; signature: { keyId: string; delegation: { keyId: string; rootKeyId: string } } };
function agentFor(vm: string, stateDir: string): Agent {
  const { masterKey } = JSON.parse(readFileSync(join(dataDir, 'cp', 'credentials.json'), 'utf8')) as { masterKey: string };
  return new Agent({
    client: new S3Client({ region: cp.info.region, endpoint: cp.info.s3Endpoint, forcePathStyle: true, credentials: agentCredentials(masterKey, 'demo', vm) }),
    identity: { bucket: cp.info.bucket, resourceGroup: 'demo', vm },
    trustedKeys: cp.info.trustedRoots.map((text) => trustedRoot(text)),
    root: join(dataDir, 'vm-root'),
    stateDir: join(dataDir, stateDir),
    now: clock,
  });
}

beforeAll(async () => {
  cp = await startDemoControlPlane({ dataDir: join(dataDir, 'cp'), apiPort: 0, s3Port: 0, clock });
}, 30_000);

afterAll(async () => {
  await cp.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

test('signed for a week, signed again a day later with the same generation; an expired copy is refused, a renewed one taken', async () => {
  // db01 has no Kubernetes role: its document is empty, so the agent can apply it anywhere.
  const first = await stored('db01');
  expect(first.generation).toBe(1);
  expect(Date.parse(first.expiresAt) - clock().getTime()).toBeGreaterThan(7 * 24 * HOUR - 60_000);
  // Signed by the online key, which the root `agent-credentials` prints delegated.
  expect(first.signature.delegation).toMatchObject({ keyId: first.signature.keyId, rootKeyId: trustedRoot(cp.info.trustedRoots[0]!).keyId });
  const agent = agentFor('db01', 'state-a');
  // An empty document writes nothing: taken as `unchanged`.
  expect(await agent.poll()).toMatchObject({ kind: 'unchanged', generation: 1 });

  // Within a day the refresh changes nothing.
  offset = 2 * HOUR;
  await cp.refresh();
  await new Promise((resolve) => setTimeout(resolve, 500));
  expect((await stored('db01')).expiresAt).toBe(first.expiresAt);

  // A day later it signs every copy again: same content, same generation, a new week.
  offset = 25 * HOUR;
  await cp.refresh();
  const renewed = await waitFor('db01 signed again', async () => {
    const now = await stored('db01');
    return now.expiresAt !== first.expiresAt ? now : undefined;
  });
  expect(renewed.generation).toBe(1);
  expect(Date.parse(renewed.expiresAt) - Date.parse(first.expiresAt)).toBeGreaterThan(24 * HOUR - 60_000);
  expect(await agent.poll()).toMatchObject({ kind: 'unchanged', generation: 1 });
  const status = (await (await fetch(`${cp.info.apiUrl}/v1/resource-groups/demo`, { headers: { authorization: `Bearer ${cp.info.apiToken}` } })).json()) as { documents: Array<{ vm: string; expiresAt?: string; inSync: boolean }> };
  expect(status.documents.find((d) => d.vm === 'db01')).toMatchObject({ expiresAt: renewed.expiresAt, inSync: true });

  // Nobody renewed it for more than a week (the control plane was down): a new agent refuses the stale copy.
  offset = 25 * HOUR + 8 * 24 * HOUR;
  const late = agentFor('db01', 'state-b');
  expect(await late.poll()).toMatchObject({ kind: 'failed', error: expect.stringContaining(`expired at ${renewed.expiresAt}`) });
  // Once the control plane runs again, the refresh renews it and the agent takes it.
  await cp.refresh();
  await waitFor('db01 renewed after the outage', async () => ((await stored('db01')).expiresAt !== renewed.expiresAt ? true : undefined));
  expect(await late.poll()).toMatchObject({ kind: 'unchanged', generation: 1 });
}, 60_000);
