/**
 * A nudge ends a backoff at once (issue 21): an agent that is not a gateway backs off to a minute
 * while the store is away; when its push channel comes back (the channel's own tests are
 * push-nudges and mqtt-nudges; here the test stands in for it and says when it connects), the
 * agent polls at once instead of a minute later. The store is a real embedded S3 endpoint,
 * stopped and started on the same port; the daemons' commands are stood in for.
 */
import { S3Client } from '@aws-sdk/client-s3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fullAccess, startEmbeddedS3 } from '../adapters/embedded-s3.ts';
import { S3Store } from '../adapters/s3-store.ts';
import { Agent } from '../agent/agent.ts';
import { storeKeys } from '../shared/contract/store-layout.ts';
import { computeDesiredState } from '../shared/desired-state.ts';
import { documentOf, example } from './helpers/fixtures.ts';
import { waitFor } from './helpers/control-plane-process.ts';
import { freePort, TEST_CREDENTIALS } from './helpers/servers.ts';
import { signedForTest, TEST_TRUSTED_KEYS } from './helpers/signing.ts';

const root = mkdtempSync(join(tmpdir(), 'ringmaster-nudge-backoff-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

test('an agent backing off a minute while the store is away polls as soon as its push channel is back', async () => {
  const port = await freePort();
  const start = () => startEmbeddedS3({ directory: join(root, 's3'), port, bucket: 'ringmaster', principal: fullAccess(TEST_CREDENTIALS.accessKeyId, TEST_CREDENTIALS.secretAccessKey) });
  let s3 = await start();
  const store = new S3Store({ bucket: 'ringmaster', endpoint: s3.endpoint, credentials: TEST_CREDENTIALS });
  await store.put(storeKeys.desired('demo', 'kube02'), JSON.stringify(signedForTest(documentOf(computeDesiredState(example('reference-architecture')).documents, 'kube02'), 1)));
  const logs: Array<{ message: string; fields: Record<string, unknown>; at: number }> = [];
  let channel: { onNudge: (n: { resourceGroup: string; vm: string; generation: number }) => void; onConnected: (connected: boolean) => void } | undefined;
  const agent = new Agent({
    client: new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: TEST_CREDENTIALS, maxAttempts: 1 }),
    identity: { bucket: 'ringmaster', resourceGroup: 'demo', vm: 'kube02' },
    trustedKeys: TEST_TRUSTED_KEYS,
    root: join(root, 'vm'),
    stateDir: join(root, 'state'),
    run: async () => ({ code: 0, output: '' }),
    log: (message, fields = {}) => logs.push({ message, fields, at: Date.now() }),
    // The push channel stood in for: the test says when it is connected.
    push: { listen: (handlers, signal) => ((channel = handlers), new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }))) },
  });
  const stop = new AbortController();
  const running = agent.run(stop.signal);
  try {
    await waitFor('the document applied', async () => (agent.applied ? true : undefined), 15_000);
    channel!.onConnected(true);
    await s3.close();
    // Cut off: the agent polls at once (the store is away), and backs off a minute (not a gateway).
    channel!.onConnected(false);
    const failed = await waitFor('the agent backing off', async () => logs.find((l) => l.message.startsWith('poll failed')), 10_000);
    expect(Date.parse(String(failed.fields.nextRetryAt)) - failed.at).toBeGreaterThan(50_000);
    s3 = await start();
    const backAt = Date.now();
    channel!.onConnected(true);
    const reached = await waitFor('the store reached again', async () => logs.find((l) => l.message === 'store reachable again'), 10_000);
    // At once, not at the end of the minute's backoff.
    expect(reached.at - backAt).toBeLessThan(3_000);
  } finally {
    stop.abort();
    await running;
    await s3.close();
  }
}, 60_000);

test('an agent stopped while a poll is in flight ends at once (it does not sleep out the interval)', async () => {
  const port = await freePort();
  const s3 = await startEmbeddedS3({ directory: join(root, 's3-stop'), port, bucket: 'ringmaster', principal: fullAccess(TEST_CREDENTIALS.accessKeyId, TEST_CREDENTIALS.secretAccessKey) });
  try {
    const store = new S3Store({ bucket: 'ringmaster', endpoint: s3.endpoint, credentials: TEST_CREDENTIALS });
    await store.put(storeKeys.desired('demo', 'kube03'), JSON.stringify(signedForTest(documentOf(computeDesiredState(example('reference-architecture')).documents, 'kube03'), 1)));
    const agent = new Agent({
      client: new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: TEST_CREDENTIALS }),
      identity: { bucket: 'ringmaster', resourceGroup: 'demo', vm: 'kube03' },
      trustedKeys: TEST_TRUSTED_KEYS,
      root: join(root, 'vm-stop'),
      stateDir: join(root, 'state-stop'),
      run: async () => ({ code: 0, output: '' }),
      push: { listen: (_handlers, signal) => new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true })) },
    });
    const stop = new AbortController();
    const startedAt = Date.now();
    const running = agent.run(stop.signal);
    // The first poll (fetch, verify, apply) is under way: stop now.
    setImmediate(() => stop.abort());
    await running;
    // Not the document's 30 s interval.
    expect(Date.now() - startedAt).toBeLessThan(5_000);
  } finally {
    await s3.close();
  }
}, 60_000);
