/**
 * `cdk synth` offline (esbuild, no Docker), then every function bundle loaded in a fresh Node
 * and invoked with a sample event, against moto_server standing in for S3, SQS and Secrets
 * Manager: the bundles start and do their job.
 */
import { type PathParameters, type RouteId, routeKey, routePath, routes } from '../shared/contract/routes.ts';
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { CreateSecretCommand, GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { CreateKeyCommand, GetPublicKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { CreateQueueCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { spawn, spawnSync } from 'node:child_process';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './helpers/fixtures.ts';
import { Agent } from '../agent/agent.ts';
import { verifyStoredDocument } from '../shared/contract/document-envelope.ts';
import { trustedRoot } from '../shared/contract/document-signing.ts';
import { startingTrust } from '../shared/contract/root-announcement.ts';
import { readSigningCredentials } from '../shared/contract/signing-credentials.ts';
import { storeKeys } from '../shared/contract/store-layout.ts';
import { type RunningServer, startMoto, TEST_CREDENTIALS } from './helpers/servers.ts';

const out = mkdtempSync(join(tmpdir(), 'ringmaster-cdk-'));
let moto: RunningServer;
const bundles = new Map<string, string>();
let env: Record<string, string>;
/** The root's public key as an operator reads it (`aws kms get-public-key … --query PublicKey`): what agents trust. */
let rootPublicKey: string;
/** What the last bundle printed (its logs and CloudWatch embedded metrics). */
let lastOutput = '';

beforeAll(async () => {
  const synth = spawnSync('npx', ['cdk', 'synth', '--no-notices', '-q', '-o', out], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, CDK_DISABLE_CLI_TELEMETRY: 'true' }, timeout: 180_000 });
  if (synth.status !== 0) throw new Error(`cdk synth failed:\n${synth.stderr}`);
  const template = JSON.parse(readFileSync(join(out, 'Ringmaster-dev.template.json'), 'utf8'));
  for (const [id, resource] of Object.entries<{ Type: string; Metadata?: Record<string, string> }>(template.Resources)) {
    // Ours only: CDK's own custom-resource provider (it runs the deploy-time trigger) is not bundled from this code.
    if (resource.Type === 'AWS::Lambda::Function' && !id.startsWith('AWSCDK')) bundles.set(id.replace(/[0-9A-F]{8}$/, ''), join(out, resource.Metadata!['aws:asset:path']!, 'index.mjs'));
  }
  moto = await startMoto();
  const clients = { region: 'us-east-1', endpoint: moto.endpoint, credentials: TEST_CREDENTIALS };
  await new S3Client({ ...clients, forcePathStyle: true }).send(new CreateBucketCommand({ Bucket: 'ringmaster-store' }));
  const sqs = new SQSClient(clients);
  const dlq = await sqs.send(new CreateQueueCommand({ QueueName: 'dlq.fifo', Attributes: { FifoQueue: 'true' } }));
  const queue = await sqs.send(new CreateQueueCommand({ QueueName: 'events.fifo', Attributes: { FifoQueue: 'true' } }));
  await new SecretsManagerClient(clients).send(new CreateSecretCommand({ Name: 'ringmaster-master-key', SecretString: 'm'.repeat(64) }));
  // As the stack makes them: an ECC_NIST_P256 signing key, and the signing secret with a generated placeholder.
  const kms = new KMSClient(clients);
  const root = await kms.send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY', Description: 'Ringmaster document root' }));
  rootPublicKey = Buffer.from((await kms.send(new GetPublicKeyCommand({ KeyId: root.KeyMetadata!.Arn! }))).PublicKey!).toString('base64');
  await new SecretsManagerClient(clients).send(new CreateSecretCommand({ Name: 'ringmaster-signing', SecretString: 'generated-placeholder-0123456789' }));
  env = {
    PATH: process.env.PATH ?? '',
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
    AWS_ENDPOINT_URL: moto.endpoint,
    RINGMASTER_S3_FORCE_PATH_STYLE: 'true',
    RINGMASTER_BUCKET: 'ringmaster-store',
    RINGMASTER_QUEUE_URL: queue.QueueUrl!,
    RINGMASTER_DLQ_URL: dlq.QueueUrl!,
    RINGMASTER_MASTER_KEY_SECRET: 'ringmaster-master-key',
    RINGMASTER_SIGNING_SECRET: 'ringmaster-signing',
    RINGMASTER_ROOT_KEY_IDS: root.KeyMetadata!.Arn!,
    POWERTOOLS_LOG_LEVEL: 'ERROR',
  };
}, 240_000);

afterAll(async () => {
  await moto?.stop();
  rmSync(out, { recursive: true, force: true });
});

/** Loads a bundle in a fresh Node (as Lambda's runtime would) and calls its handler once. */
function invoke(name: string, event: unknown): any {
  const runner = join(out, `run-${name}.mjs`);
  writeFileSync(runner, `const { handler } = await import(${JSON.stringify(bundles.get(name))});\nconst result = await handler(JSON.parse(process.argv[2]), { awsRequestId: 'test', getRemainingTimeInMillis: () => 10000 });\nprocess.stdout.write('\\nRESULT ' + JSON.stringify(result) + '\\n');\n`);
  const run = spawnSync(process.execPath, [runner, JSON.stringify(event)], { encoding: 'utf8', env });
  if (run.status !== 0) throw new Error(`${name} failed:\n${run.stderr}`);
  lastOutput = run.stdout;
  return JSON.parse(run.stdout.split('\n').find((line) => line.startsWith('RESULT '))!.slice('RESULT '.length));
}

/** An HTTP API (payload 2.0) event as API Gateway sends it for a route of the table: route key, path, parameters. */
const http = <K extends RouteId>(id: K, parameters: PathParameters<K>, body?: unknown, iam = true) => {
  const path = routePath(id, parameters);
  return {
    version: '2.0',
    routeKey: routeKey(id),
    rawPath: path,
    rawQueryString: '',
    headers: { 'content-type': 'application/json' },
    pathParameters: parameters,
    isBase64Encoded: false,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    requestContext: { http: { method: routes[id].method, path }, requestId: 'r', routeKey: routeKey(id), ...(iam ? { authorizer: { iam: { accessKey: 'AKIA', userArn: 'arn:aws:iam::1:user/portal' } } } : {}) },
  };
};
const signedByNobody = { 'content-type': 'application/json', 'x-ringmaster-timestamp': '1', 'x-ringmaster-signature': `v1=${'0'.repeat(64)}` };

test('synth bundles every function for Node.js 24', () => {
  expect([...bundles.keys()].sort()).toEqual(['ClusterApi', 'DeadLettersApi', 'IngestApi', 'Reconciler', 'Refresh', 'Renewer', 'StatusApi']);
});

test("renewer: a new online key, delegated by the root KMS key (moto's KMS signs it), written to the signing secret", async () => {
  const secrets = new SecretsManagerClient({ region: 'us-east-1', endpoint: moto.endpoint, credentials: TEST_CREDENTIALS });
  const read = async () => readSigningCredentials((await secrets.send(new GetSecretValueCommand({ SecretId: 'ringmaster-signing' }))).SecretString);
  const result = invoke('Renewer', { source: 'aws.events', 'detail-type': 'Scheduled Event', detail: {} });
  const root = trustedRoot(rootPublicKey);
  expect(result).toMatchObject({ rootKeyId: root.keyId, announcements: 0 });
  const first = await read();
  expect(first?.delegation).toMatchObject({ keyId: result.keyId, rootKeyId: root.keyId });
  expect(Date.parse(first!.delegation.notAfter) - Date.now()).toBeGreaterThan(7 * 24 * 3600_000);
  expect(lastOutput).not.toContain('PRIVATE KEY');
  // The next day's run: another online key (a stolen one is worth nothing after its delegation).
  const again = invoke('Renewer', { source: 'aws.events', 'detail-type': 'Scheduled Event', detail: {} });
  expect(again.keyId).not.toBe(result.keyId);
  expect((await read())?.delegation.keyId).toBe(again.keyId);
});

test('ingest: an IAM-signed portal event is queued; an unsigned call is refused', () => {
  const event = { id: 'e1', type: 'cluster.provisioned', resourceGroup: 'rg1', occurredAt: '2026-11-24T10:00:00Z', payload: { settings: {} } };
  expect(invoke('IngestApi', http('postEvents', {}, event))).toMatchObject({ statusCode: 202 });
  expect(invoke('IngestApi', http('postEvents', {}, event, false))).toMatchObject({ statusCode: 401 });
});

test('reconciler: queued events become state, signed documents and status in the bucket', async () => {
  const events = [
    { id: 'e1', type: 'cluster.provisioned', resourceGroup: 'rg1', occurredAt: '2026-11-24T10:00:00Z', payload: { settings: {} } },
    { id: 'e2', type: 'vm.upserted', resourceGroup: 'rg1', occurredAt: '2026-11-24T10:00:01Z', payload: { vm: { name: 'kube01', roles: ['k3s-server'], cpu: 2, memoryMiB: 8192, disks: [{ sizeGiB: 30, kind: 'ssd' }], srvAddresses: ['172.22.0.2'] } } },
  ];
  const records = events.map((event, i) => ({ messageId: `m${i}`, receiptHandle: 'r', body: JSON.stringify(event), attributes: { MessageGroupId: 'rg1', MessageDeduplicationId: event.id, ApproximateReceiveCount: '1' }, messageAttributes: {}, md5OfBody: '', eventSource: 'aws:sqs', eventSourceARN: 'arn', awsRegion: 'us-east-1' }));
  const result = invoke('Reconciler', { Records: records });
  expect(result).toEqual({ batchItemFailures: [] });
  expect(lastOutput).toMatch(/"EventsApplied":2/);
  const s3 = new S3Client({ region: 'us-east-1', endpoint: moto.endpoint, credentials: TEST_CREDENTIALS, forcePathStyle: true });
  const state = JSON.parse(await (await s3.send(new GetObjectCommand({ Bucket: 'ringmaster-store', Key: 'state/rg1.json' }))).Body!.transformToString());
  expect(state.description.cluster).toBeDefined();
  expect(state.description.secrets.clusterToken).toMatch(/^[0-9a-f]{64}$/);
  // Signed with the online key the renewer left in the secret, under the KMS root: what an agent trusting the root's public key verifies.
  const body = await (await s3.send(new GetObjectCommand({ Bucket: 'ringmaster-store', Key: storeKeys.desired('rg1', 'kube01') }))).Body!.transformToString();
  const verified = verifyStoredDocument(body, { owner: { resourceGroup: 'rg1', vm: 'kube01' }, trust: startingTrust([trustedRoot(rootPublicKey)], undefined), now: new Date() });
  expect(verified).toHaveProperty('document');
  expect(JSON.parse(body).signature.delegation.rootKeyId).toBe(trustedRoot(rootPublicKey).keyId);
});

test("an agent trusting only the KMS root (its public key as `aws kms get-public-key` prints it) applies the reconciler's document; under another root it refuses it (the k3s server's service commands stood in for: no k3s here)", async () => {
  const vmRoot = mkdtempSync(join(tmpdir(), 'ringmaster-kms-agent-'));
  try {
    const agentOf = (rootKey: string, stateDir: string) =>
      new Agent({
        client: new S3Client({ region: 'us-east-1', endpoint: moto.endpoint, credentials: TEST_CREDENTIALS, forcePathStyle: true }),
        identity: { bucket: 'ringmaster-store', resourceGroup: 'rg1', vm: 'kube01' },
        trustedKeys: [trustedRoot(rootKey)],
        root: vmRoot,
        stateDir: join(vmRoot, stateDir),
        run: async () => ({ code: 0, output: '' }),
      });
    const { generateKeyPairSync } = await import('node:crypto');
    const stranger = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
    expect(await agentOf(stranger, 'stranger').poll()).toMatchObject({ kind: 'failed', error: expect.stringContaining('which this agent does not trust') });
    expect(await agentOf(rootPublicKey, 'state').poll()).toMatchObject({ kind: 'applied', generation: 1 });
    expect(readFileSync(join(vmRoot, 'etc/rancher/k3s/config.yaml'), 'utf8')).toContain('172.22.0.2');
  } finally {
    rmSync(vmRoot, { recursive: true, force: true });
  }
});

test('status, cluster and dead-letter functions answer their routes of the table, and 404 to any other', () => {
  expect(invoke('StatusApi', http('getResourceGroup', { rg: 'rg1' }))).toMatchObject({ statusCode: 200 });
  expect(invoke('StatusApi', http('getResourceGroup', { rg: 'nosuch' }))).toMatchObject({ statusCode: 404 });
  expect(invoke('StatusApi', http('getResourceGroup', { rg: 'Not_A_Name' }))).toMatchObject({ statusCode: 400 });
  expect(invoke('ClusterApi', { ...http('postClusterEndpoints', { rg: 'rg1' }, { changes: [] }, false), headers: signedByNobody })).toMatchObject({ statusCode: 401 });
  expect(invoke('ClusterApi', { ...http('postClusterKubeconfig', { rg: 'rg1' }, { user: 'alice' }, false), headers: signedByNobody })).toMatchObject({ statusCode: 401 });
  expect(invoke('StatusApi', http('getKubeconfig', { rg: 'rg1', user: 'alice' }))).toMatchObject({ statusCode: 404 });
  expect(invoke('StatusApi', http('getOpenApi', {}, undefined, false))).toMatchObject({ statusCode: 200 });
  // A route of another function (API Gateway would never send it here) is not served.
  expect(invoke('StatusApi', http('listDeadLetters', {}))).toMatchObject({ statusCode: 404 });
  expect(invoke('DeadLettersApi', http('listDeadLetters', {}))).toMatchObject({ statusCode: 200 });
});

test('refresh: the scheduled function queues a documents.refresh event for every group with a state', async () => {
  expect(invoke('Refresh', { source: 'aws.events', 'detail-type': 'Scheduled Event', detail: {} })).toEqual({ refreshed: 1 });
  const sqs = new SQSClient({ region: 'us-east-1', endpoint: moto.endpoint, credentials: TEST_CREDENTIALS });
  const received = await sqs.send(new ReceiveMessageCommand({ QueueUrl: env.RINGMASTER_QUEUE_URL, MaxNumberOfMessages: 10, MessageSystemAttributeNames: ['MessageGroupId'] }));
  const refreshes = (received.Messages ?? []).map((m) => JSON.parse(m.Body!)).filter((e: { type: string }) => e.type === 'documents.refresh');
  expect(refreshes).toEqual([expect.objectContaining({ type: 'documents.refresh', resourceGroup: 'rg1' })]);
});

/**
 * Stands in for Lambda's timeout (the runtime is stopped wherever the code is): a pass-through
 * proxy to moto that SIGKILLs the bundle's process once it has written its first document.
 */
async function invokeKilledAfterFirstDocument(name: string, event: unknown): Promise<{ killed: boolean }> {
  let child: ReturnType<typeof spawn> | undefined;
  let killed = false;
  const target = new URL(moto.endpoint);
  const proxy = createServer((request, response) => {
    const upstream = httpRequest({ host: target.hostname, port: target.port, method: request.method, path: request.url, headers: request.headers }, (answer) => {
      response.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(response);
      answer.on('end', () => {
        if (request.method === 'PUT' && /\/desired\//.test(request.url ?? '') && !killed) {
          killed = true;
          child?.kill('SIGKILL');
        }
      });
    });
    request.pipe(upstream);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const runner = join(out, `run-${name}.mjs`);
  const { port } = proxy.address() as AddressInfo;
  child = spawn(process.execPath, [runner, JSON.stringify(event)], { env: { ...env, AWS_ENDPOINT_URL: `http://127.0.0.1:${port}` }, stdio: 'ignore' });
  await new Promise((resolve) => child!.once('exit', resolve));
  proxy.closeAllConnections();
  await new Promise((resolve) => proxy.close(resolve));
  return { killed };
}

test('reconciler: stopped by a timeout between its document writes, then run on another batch, it leaves exactly the state’s documents', async () => {
  const s3 = new S3Client({ region: 'us-east-1', endpoint: moto.endpoint, credentials: TEST_CREDENTIALS, forcePathStyle: true });
  const read = async (key: string) => (await s3.send(new GetObjectCommand({ Bucket: 'ringmaster-store', Key: key }))).Body!.transformToString();
  const vm = (name: string, roles: string[], address: string) => ({ vm: { name, roles, cpu: 2, memoryMiB: 8192, disks: [{ sizeGiB: 30, kind: 'ssd' }], srvAddresses: [address] } });
  const event = (id: string, type: string, second: number, payload: unknown) => ({ id, type, resourceGroup: 'rg2', occurredAt: `2026-11-24T10:00:${String(second).padStart(2, '0')}Z`, payload });
  const records = (events: unknown[]) => ({
    Records: events.map((body, i) => ({ messageId: `m${i}`, receiptHandle: 'r', body: JSON.stringify(body), attributes: { MessageGroupId: 'rg2', MessageDeduplicationId: `d${i}`, ApproximateReceiveCount: '1' }, messageAttributes: {}, md5OfBody: '', eventSource: 'aws:sqs', eventSourceARN: 'arn', awsRegion: 'us-east-1' })),
  });
  expect(invoke('Reconciler', records([event('p1', 'cluster.provisioned', 0, { settings: {} }), event('p2', 'vm.upserted', 1, vm('kube01', ['k3s-server'], '172.22.0.2')), event('p3', 'vm.upserted', 2, vm('kube02', ['k3s-agent'], '172.22.0.3'))]))).toEqual({ batchItemFailures: [] });
  const listDesired = async () => ((await s3.send(new ListObjectsV2Command({ Bucket: 'ringmaster-store', Prefix: storeKeys.desiredOf('rg2') }))).Contents ?? []).map((o) => o.Key).sort();
  const before = await listDesired();

  const added = event('a1', 'vm.upserted', 3, vm('kube03', ['k3s-agent'], '172.22.0.4'));
  expect(await invokeKilledAfterFirstDocument('Reconciler', records([added]))).toEqual({ killed: true });
  expect(JSON.parse(await read(storeKeys.state('rg2'))).pendingWrite).toBeDefined();

  // SQS delivers the message again, now with the deletion: net, the group is as before.
  expect(invoke('Reconciler', records([added, event('a2', 'vm.deleted', 4, { name: 'kube03' })]))).toEqual({ batchItemFailures: [] });
  expect(await listDesired()).toEqual(before);
  const state = JSON.parse(await read(storeKeys.state('rg2')));
  // Finished: the status, written last, names the run of the intent.
  expect(state.pendingWrite.run).toBe(JSON.parse(await read(storeKeys.status('rg2'))).run);
  for (const vmName of ['kube01', 'kube02']) {
    // The state also notes the copy's signing epoch (its own bookkeeping, not in the document).
    const { epoch: _epoch, ...copy } = state.documents[vmName];
    expect(JSON.parse(await read(storeKeys.desired('rg2', vmName)))).toMatchObject(copy);
  }
});
