/**
 * Before applying, the agent looks for what the document's services need on the VM (programs
 * and systemd units) and reports what is missing by name. Here the VM's program folders are
 * this machine's (Debian's haproxy is installed, k3s is not) and its unit folder is a temp
 * folder; systemd is stood in for (its reloads are `true`).
 */
import { S3Client } from '@aws-sdk/client-s3';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fullAccess, startEmbeddedS3 } from '../adapters/embedded-s3.ts';
import { S3Store } from '../adapters/s3-store.ts';
import { Agent } from '../agent/agent.ts';
import { storeKeys } from '../shared/contract/store-layout.ts';
import { computeDesiredState } from '../shared/desired-state.ts';
import { layoutUnder } from '../shared/layout.ts';
import { documentOf, example } from './helpers/fixtures.ts';
import { freePort, TEST_CREDENTIALS } from './helpers/servers.ts';
import { signedForTest, TEST_TRUSTED_KEYS } from './helpers/signing.ts';

const root = mkdtempSync(join(tmpdir(), 'ringmaster-prerequisites-'));
let s3: Awaited<ReturnType<typeof startEmbeddedS3>>;

beforeAll(async () => {
  s3 = await startEmbeddedS3({ directory: join(root, 's3'), port: await freePort(), bucket: 'ringmaster', principal: fullAccess(TEST_CREDENTIALS.accessKeyId, TEST_CREDENTIALS.secretAccessKey) });
});

afterAll(async () => {
  await s3.close();
  rmSync(root, { recursive: true, force: true });
});

test('a webgateway VM without k3s and the systemd units is told what is missing by name, nothing is written; once installed, the same document applies', async () => {
  const vm = join(root, 'vm');
  const layout = layoutUnder(vm, () => ['true']);
  // What the VM's administrator installs (not the agent): k3s in its own program folder, the units in the unit folder.
  const localBin = join(root, 'usr-local-bin');
  const units = join(root, 'units');
  const store = new S3Store({ bucket: 'ringmaster', endpoint: s3.endpoint, credentials: TEST_CREDENTIALS });
  // Scenario 2 has no virtual host: the gateway runs k3s and haproxy, no nginx.
  const document = documentOf(computeDesiredState(example('scenario-2-tcp'), { layout }).documents, 'web01');
  await store.put(storeKeys.desired('demo', 'web01'), JSON.stringify(signedForTest(document, 1)));
  let clockAheadMs = 0;
  const agent = new Agent({
    client: new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: TEST_CREDENTIALS }),
    identity: { bucket: 'ringmaster', resourceGroup: 'demo', vm: 'web01' },
    trustedKeys: TEST_TRUSTED_KEYS,
    root: '/',
    layout,
    stateDir: join(root, 'state'),
    prerequisites: { programFolders: [localBin, '/usr/sbin', '/usr/bin', '/bin'], unitFolders: [units] },
    now: () => new Date(Date.now() + clockAheadMs),
  });

  const outcome = await agent.poll();
  expect(outcome).toMatchObject({ kind: 'failed', generation: 1 });
  const reason = 'this VM lacks what its roles need: the k3s binary, the k3s systemd unit (k3s.service), the haproxy systemd unit (haproxy.service)';
  expect(outcome.error).toContain(reason);
  const report = JSON.parse((await store.get(storeKeys.report('demo', 'web01')))!.body);
  expect(report).toMatchObject({ outcome: 'failed', attemptedGeneration: 1, error: expect.stringContaining(reason) });
  expect(existsSync(vm)).toBe(false);

  mkdirSync(localBin);
  writeFileSync(join(localBin, 'k3s'), '#!/bin/sh\n');
  chmodSync(join(localBin, 'k3s'), 0o755);
  mkdirSync(units);
  for (const unit of ['k3s.service', 'haproxy.service']) writeFileSync(join(units, unit), '[Service]\n');
  clockAheadMs = 301_000;
  expect(await agent.poll()).toMatchObject({ kind: 'applied', generation: 1, result: { reloaded: ['nftables', 'k3s', 'haproxy'] } });
});
