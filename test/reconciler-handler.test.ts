/**
 * The reconciler function with the S3 store on moto_server (an independent S3): FIFO partial
 * batch failures per group, and crashes between its writes that the next run repairs, whatever
 * batch that next run is.
 */
import { TEST_SIGNER } from './helpers/signing.ts';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import type { SQSEvent, SQSRecord } from 'aws-lambda';
import { S3Store } from '../adapters/s3-store.ts';
import { createReconcilerHandler } from '../functions/reconciler/handler.ts';
import { createLogger } from '../functions/shared/logger.ts';
import { localContext } from '../local/lambda-context.ts';
import { storeKeys } from '../shared/contract/store-layout.ts';
import type { ObjectStore, OutgoingMessage, PutOptions } from '../shared/ports.ts';
import { type RunningServer, startMoto, TEST_CREDENTIALS } from './helpers/servers.ts';

let moto: RunningServer;
let s3: S3Store;
beforeAll(async () => {
  moto = await startMoto();
  s3 = new S3Store({ bucket: 'reconciler', endpoint: moto.endpoint, credentials: TEST_CREDENTIALS });
  await s3.client.send(new CreateBucketCommand({ Bucket: 'reconciler' }));
}, 30000);
afterAll(async () => moto.stop());

/** Fails `failures` writes whose key matches, after letting `skip` of them through: a crash or an outage at that point. */
class FaultyStore implements ObjectStore {
  failures: number;
  skip: number;
  readonly pattern: RegExp;
  readonly inner: ObjectStore;
  constructor(inner: ObjectStore, pattern: RegExp, failures: number, skip = 0) {
    this.inner = inner;
    this.pattern = pattern;
    this.failures = failures;
    this.skip = skip;
  }
  get(key: string) {
    return this.inner.get(key);
  }
  async put(key: string, body: string, options?: PutOptions) {
    if (this.pattern.test(key) && this.skip-- <= 0 && this.failures > 0) {
      this.failures--;
      throw new Error(`injected failure writing ${key}`);
    }
    return this.inner.put(key, body, options);
  }
  delete(key: string) {
    return this.inner.delete(key);
  }
  list(prefix: string) {
    return this.inner.list(prefix);
  }
}

let serial = 0;
function record(group: string, body: unknown): SQSRecord {
  const id = `m${++serial}`;
  return {
    messageId: id,
    receiptHandle: id,
    body: typeof body === 'string' ? body : JSON.stringify(body),
    attributes: { ApproximateReceiveCount: '1', SentTimestamp: '0', SenderId: 'test', ApproximateFirstReceiveTimestamp: '0', MessageGroupId: group, MessageDeduplicationId: id },
    messageAttributes: {},
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:q.fifo',
    awsRegion: 'us-east-1',
  };
}

const at = (i: number) => new Date(Date.UTC(2026, 10, 24, 10, 0, i)).toISOString();
const provisionRecords = (rg: string) => [
  record(rg, { id: `${rg}-p`, type: 'cluster.provisioned', resourceGroup: rg, occurredAt: at(0), payload: { settings: {} } }),
  record(rg, { id: `${rg}-s`, type: 'vm.upserted', resourceGroup: rg, occurredAt: at(1), payload: { vm: { name: 'srv', roles: ['k3s-server'], cpu: 2, memoryMiB: 8192, disks: [{ sizeGiB: 30, kind: 'ssd' }], srvAddresses: ['172.22.0.2'] } } }),
  record(rg, { id: `${rg}-a`, type: 'vm.upserted', resourceGroup: rg, occurredAt: at(2), payload: { vm: { name: 'agent', roles: ['k3s-agent'], cpu: 4, memoryMiB: 8192, disks: [{ sizeGiB: 30, kind: 'hdd' }], srvAddresses: ['172.22.0.3'] } } }),
];

function handlerWith(store: ObjectStore, deadLetters: Array<[OutgoingMessage, string]> = [], maxReceives?: number) {
  const masterKey = 'k'.repeat(40);
  // A fixed clock: a batch run again signs the very same bytes (Ed25519 is deterministic).
  return createReconcilerHandler({
    store,
    masterKey,
    signer: async () => TEST_SIGNER,
    now: () => new Date('2026-12-02T10:00:00Z'),
    logger: createLogger('test'),
    deadLetter: async (m, reason) => void deadLetters.push([m, reason]),
    ...(maxReceives ? { maxReceives } : {}),
  });
}
const invoke = (handler: ReturnType<typeof handlerWith>, records: SQSRecord[]) => handler({ Records: records } as SQSEvent, localContext('reconciler'));

test('a failing group reports all of its messages, in order; the other group goes through', async () => {
  const store = new FaultyStore(s3, /^state\/rg-a\.json$/, 1);
  const a = provisionRecords('rg-a');
  const b = provisionRecords('rg-b');
  const result = await invoke(handlerWith(store), [a[0]!, b[0]!, a[1]!, b[1]!, a[2]!, b[2]!]);
  expect(result.batchItemFailures.map((f) => f.itemIdentifier)).toEqual(a.map((r) => r.messageId));
  expect(await s3.get(storeKeys.state('rg-b'))).toBeDefined();
  expect(await s3.get(storeKeys.state('rg-a'))).toBeUndefined();
});

test('a crash between the document writes and the status (the run\'s commit mark): the retry converges to the same documents', async () => {
  // The state write (the intent) and the documents land, the status fails.
  const store = new FaultyStore(s3, /^status\/rg-c\.json$/, 1);
  const handler = handlerWith(store);
  const records = provisionRecords('rg-c');
  expect((await invoke(handler, records)).batchItemFailures).toHaveLength(3);
  const afterCrash = await s3.get(storeKeys.desired('rg-c', 'agent'));
  expect(afterCrash).toBeDefined();
  expect((await invoke(handler, records)).batchItemFailures).toEqual([]);
  const afterRetry = await s3.get(storeKeys.desired('rg-c', 'agent'));
  expect(afterRetry!.body).toBe(afterCrash!.body);
  expect(JSON.parse(afterRetry!.body).generation).toBe(1);
  // Delivered once more (the queue may do that): nothing is rewritten.
  expect((await invoke(handler, records)).batchItemFailures).toEqual([]);
  expect((await s3.get(storeKeys.desired('rg-c', 'agent')))!.etag).toBe(afterRetry!.etag);
});

test('a change to one document costs three writes (intent, document, status: the status finishes the run), and the next run reads the status instead of repairing', async () => {
  const calls: string[] = [];
  const counting: ObjectStore = {
    get: (key) => (calls.push(`GET ${key}`), s3.get(key)),
    put: (key, body, options) => (calls.push(`PUT ${key}`), s3.put(key, body, options)),
    delete: (key) => (calls.push(`DELETE ${key}`), s3.delete(key)),
    list: (prefix) => (calls.push(`LIST ${prefix}`), s3.list(prefix)),
  };
  const rg = 'rg-g';
  expect((await invoke(handlerWith(s3), provisionRecords(rg))).batchItemFailures).toEqual([]);
  // A sudo-srv user: only the server's document changes (its kubeconfig users).
  const user = record(rg, { id: `${rg}-u`, type: 'user.upserted', resourceGroup: rg, occurredAt: at(5), payload: { user: { name: 'alice', permissions: ['sudo-srv'] } } });
  expect((await invoke(handlerWith(counting), [user])).batchItemFailures).toEqual([]);
  expect(calls).toEqual([`GET ${storeKeys.state(rg)}`, `GET ${storeKeys.status(rg)}`, `PUT ${storeKeys.state(rg)}`, `PUT ${storeKeys.desired(rg, 'srv')}`, `PUT ${storeKeys.status(rg)}`]);
  const state = JSON.parse((await s3.get(storeKeys.state(rg)))!.body);
  expect(state.pendingWrite.run).toBe(JSON.parse((await s3.get(storeKeys.status(rg)))!.body).run);
});

test('a message that is not an event is dead-lettered with its reason; the rest of its group is applied', async () => {
  const deadLetters: Array<[OutgoingMessage, string]> = [];
  const records = provisionRecords('rg-d');
  const poison = record('rg-d', 'not json at all');
  const wrongGroup = record('rg-d', { id: 'x', type: 'cluster.decommissioned', resourceGroup: 'rg-zzz', occurredAt: at(5), payload: {} });
  const result = await invoke(handlerWith(s3, deadLetters), [records[0]!, poison, wrongGroup, records[1]!, records[2]!]);
  expect(result.batchItemFailures).toEqual([]);
  expect(deadLetters.map(([m, reason]) => [m.body.slice(0, 15), reason])).toEqual([
    ['not json at all', expect.stringContaining('not valid JSON')],
    [expect.any(String), 'resourceGroup rg-zzz differs from the message group rg-d'],
  ]);
  expect(JSON.parse((await s3.get(storeKeys.status('rg-d')))!.body).documents.map((d: { vm: string }) => d.vm)).toEqual(['agent', 'srv']);
});

/** Every object under `desired/<rg>/`, key → content without the envelope's copy fields (which may differ between runs). */
async function storedContent(store: ObjectStore, rg: string): Promise<Record<string, unknown>> {
  const keys = await store.list(storeKeys.desiredOf(rg));
  const entries = await Promise.all(
    keys.map(async (key) => {
      const body = (await store.get(key))!.body;
      if (!key.endsWith('.json')) return [key, body] as const;
      const { generation: _g, expiresAt: _e, signature: _s, ...content } = JSON.parse(body);
      return [key, content] as const;
    }),
  );
  return Object.fromEntries(entries);
}

test('killed after writing documents, then a different batch whose net change is nothing: the store equals a clean run (no orphan, no stale document)', async () => {
  const rg = 'rg-e';
  const provision = provisionRecords(rg);
  const extra = record(rg, { id: `${rg}-x`, type: 'vm.upserted', resourceGroup: rg, occurredAt: at(3), payload: { vm: { name: 'extra', roles: ['k3s-agent'], cpu: 2, memoryMiB: 4096, disks: [{ sizeGiB: 30, kind: 'hdd' }], srvAddresses: ['172.22.0.4'] } } });
  const removeExtra = record(rg, { id: `${rg}-y`, type: 'vm.deleted', resourceGroup: rg, occurredAt: at(4), payload: { name: 'extra' } });
  expect((await invoke(handlerWith(s3), provision)).batchItemFailures).toEqual([]);
  const before = await storedContent(s3, rg);

  // The batch adding `extra` writes its documents (the server's now lists a third node), then dies
  // before its status, which would have finished it.
  const crashing = new FaultyStore(s3, new RegExp(`^status/${rg}\\.json$`), 1);
  expect((await invoke(handlerWith(crashing), [extra])).batchItemFailures).toHaveLength(1);
  expect(Object.keys(await storedContent(s3, rg))).toContain(storeKeys.desired(rg, 'extra'));
  const generationAfterCrash = async (vm: string) => JSON.parse((await s3.get(storeKeys.desired(rg, vm)))!.body).generation as number;
  const crashed = { srv: await generationAfterCrash('srv'), agent: await generationAfterCrash('agent') };

  // Redelivered together with the deletion: net, nothing changed since the provisioning.
  expect((await invoke(handlerWith(s3), [extra, removeExtra])).batchItemFailures).toEqual([]);
  expect(await storedContent(s3, rg)).toEqual(before);
  const state = JSON.parse((await s3.get(storeKeys.state(rg)))!.body);
  // Finished: the status names the run of the intent (no second state write).
  expect(state.pendingWrite.run).toBe(JSON.parse((await s3.get(storeKeys.status(rg)))!.body).run);
  // Generations only go up: an agent that applied the crashed run's document accepts the repair.
  for (const vm of ['srv', 'agent']) {
    const stored = JSON.parse((await s3.get(storeKeys.desired(rg, vm)))!.body);
    expect(stored.generation).toBe(state.documents[vm].generation);
    expect(stored.hash).toBe(state.documents[vm].hash);
    expect(stored.generation).toBeGreaterThanOrEqual(crashed[vm as keyof typeof crashed]);
  }

  // A stray object under the group's prefix (no document) goes with the next repair too.
  await s3.put(`${storeKeys.desiredOf(rg)}notes.txt`, 'left by hand');
  const again = (id: string, type: 'vm.upserted' | 'vm.deleted', i: number) =>
    record(rg, { id, type, resourceGroup: rg, occurredAt: at(i), payload: type === 'vm.deleted' ? { name: 'other' } : { vm: { name: 'other', roles: ['k3s-agent'], cpu: 2, memoryMiB: 4096, disks: [{ sizeGiB: 30, kind: 'hdd' }], srvAddresses: ['172.22.0.5'] } } });
  const crashAgain = new FaultyStore(s3, new RegExp(`^status/${rg}\\.json$`), 1);
  expect((await invoke(handlerWith(crashAgain), [again(`${rg}-o`, 'vm.upserted', 6)])).batchItemFailures).toHaveLength(1);
  expect((await invoke(handlerWith(s3), [again(`${rg}-o`, 'vm.upserted', 6), again(`${rg}-od`, 'vm.deleted', 7)])).batchItemFailures).toEqual([]);
  expect(await storedContent(s3, rg)).toEqual(before);
});

test('on its last receive a message that keeps failing is dead-lettered with the real reason; earlier receives are retried', async () => {
  const deadLetters: Array<[OutgoingMessage, string]> = [];
  const down = new FaultyStore(s3, /^state\/rg-f\.json$/, 100);
  const [first, second] = provisionRecords('rg-f');
  const onReceive = (r: SQSRecord, count: number) => ({ ...r, attributes: { ...r.attributes, ApproximateReceiveCount: String(count) } });
  const result = await invoke(handlerWith(down, deadLetters, 5), [onReceive(first!, 5), onReceive(second!, 4)]);
  expect(result.batchItemFailures).toEqual([{ itemIdentifier: second!.messageId }]);
  expect(deadLetters).toEqual([[expect.objectContaining({ body: first!.body, group: 'rg-f' }), 'failed 5 times; last: injected failure writing state/rg-f.json']]);
  // Without the limit configured, only the queue's redrive gives up.
  expect((await invoke(handlerWith(down, deadLetters), [onReceive(first!, 50)])).batchItemFailures).toHaveLength(1);
});
