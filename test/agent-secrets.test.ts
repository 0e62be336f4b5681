/**
 * The agent never writes a secret into its log or its report, whatever happens: a good apply,
 * a failed reload whose output quotes a file, a tampered document, another VM's document, the
 * store going away. Self-contained: its own store, agent and k3s server document (the VM with
 * every secret: cluster token, datastore password, cluster key).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { fullAccess, startEmbeddedS3 } from '../adapters/embedded-s3.ts';
import { S3Store } from '../adapters/s3-store.ts';
import { Agent } from '../agent/agent.ts';
import type { CommandRunner } from '../agent/apply.ts';
import { storeKeys } from '../shared/contract/store-layout.ts';
import { computeDesiredState } from '../shared/desired-state.ts';
import { layoutUnder } from '../shared/layout.ts';
import { DATASTORE_PASSWORD, documentOf, example, TOKEN, WEBHOOK_KEY } from './helpers/fixtures.ts';
import { freePort, TEST_CREDENTIALS } from './helpers/servers.ts';
import { signedForTest, TEST_TRUSTED_KEYS } from './helpers/signing.ts';

const SECRETS = [TOKEN, DATASTORE_PASSWORD, WEBHOOK_KEY];
const root = mkdtempSync(join(tmpdir(), 'ringmaster-agent-secrets-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

test('no secret in the log or the report: applied, failed reload quoting a file, tampered, misaddressed, store down', async () => {
  const s3 = await startEmbeddedS3({ directory: join(root, 's3'), port: await freePort(), bucket: 'ringmaster', principal: fullAccess(TEST_CREDENTIALS.accessKeyId, TEST_CREDENTIALS.secretAccessKey) });
  const store = new S3Store({ bucket: 'ringmaster', endpoint: s3.endpoint, credentials: TEST_CREDENTIALS });
  const client = new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: TEST_CREDENTIALS, maxAttempts: 1 });
  const logs: string[] = [];
  const reports: string[] = [];
  // Stands in for systemd and k3s (which cannot run here). While `failing`, every reload fails and,
  // like a daemon that quotes the line it choked on, prints the contents of the files it was given.
  let failing = false;
  const run: CommandRunner = async (argv) => {
    if (!failing || !argv.includes('restart')) return { code: 0, output: '' };
    const quoted = await Promise.all(argv.filter((arg) => arg.startsWith(root)).map((path) => readFile(path, 'utf8').catch(() => '')));
    return { code: 1, output: `failed: ${quoted.join(' ')} ${SECRETS.join(' ')}` };
  };
  const agent = new Agent({ client, identity: { bucket: 'ringmaster', resourceGroup: 'demo', vm: 'kube01' }, trustedKeys: TEST_TRUSTED_KEYS, root: '/', layout: layoutUnder(root), stateDir: join(root, 'state'), run, log: (message, fields) => logs.push(JSON.stringify({ message, ...fields })) });
  const rg = example('reference-architecture');
  const documentFor = (srvAddress: string) => {
    const changed = { ...rg, vms: rg.vms.map((vm) => (vm.name === 'kube01' ? { ...vm, srvAddresses: [srvAddress] } : vm)) };
    return documentOf(computeDesiredState(changed, { layout: layoutUnder(root), apiUrl: 'https://ringmaster.example.com' }).documents, 'kube01');
  };
  const publish = async (document: object) => {
    await store.put(storeKeys.desired('demo', 'kube01'), JSON.stringify(document));
    const outcome = await agent.poll();
    reports.push((await store.get(storeKeys.report('demo', 'kube01')))?.body ?? '');
    return outcome;
  };
  try {
    const good = signedForTest(documentFor('172.22.48.10'), 1);
    expect(JSON.stringify(good)).toContain(DATASTORE_PASSWORD);
    expect(await publish(good)).toMatchObject({ kind: 'applied' });

    failing = true;
    expect(await publish(signedForTest(documentFor('172.22.48.11'), 2))).toMatchObject({ kind: 'failed', error: expect.stringContaining('reload failed') });
    failing = false;

    const tampered = { ...good, generation: 3, files: good.files.map((file) => ({ ...file, content: `${file.content}# ${TOKEN}\n` })) };
    expect(await publish(tampered)).toMatchObject({ kind: 'failed' });
    const { signature: _signature, expiresAt: _expiresAt, ...content } = good;
    expect(await publish(signedForTest({ ...content, vm: 'kube02' }, 4))).toMatchObject({ kind: 'failed', error: expect.stringContaining('not for demo/kube01') });
  } finally {
    await s3.close();
  }
  await expect(agent.poll()).rejects.toThrow();

  expect(logs.length).toBeGreaterThanOrEqual(4);
  expect(reports.filter(Boolean)).toHaveLength(4);
  for (const text of [...logs, ...reports]) for (const secret of SECRETS) expect(text).not.toContain(secret);
});
