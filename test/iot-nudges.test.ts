/**
 * The reconciler's nudges in AWS go through IoT Core's data plane: checked against moto_server's
 * iot-data (an implementation nobody here wrote) and S3, with the reconciler function itself. A
 * nudge is best effort: one that cannot be published never fails the write or the run.
 */
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import type { SQSEvent } from 'aws-lambda';
import { IotNudgePublisher } from '../adapters/iot-nudge-publisher.ts';
import { S3Store } from '../adapters/s3-store.ts';
import { createReconcilerHandler } from '../functions/reconciler/handler.ts';
import { createLogger } from '../functions/shared/logger.ts';
import { nudgeFanOut } from '../functions/shared/nudge-fan-out.ts';
import { localContext } from '../local/lambda-context.ts';
import { toSqsRecord } from '../local/worker.ts';
import type { NudgePublisher } from '../shared/ports.ts';
import { type RunningServer, startMoto, TEST_CREDENTIALS } from './helpers/servers.ts';
import { TEST_SIGNER } from './helpers/signing.ts';

let moto: RunningServer;
let s3: S3Store;
beforeAll(async () => {
  moto = await startMoto();
  s3 = new S3Store({ bucket: 'nudges', endpoint: moto.endpoint, region: 'us-east-1', credentials: TEST_CREDENTIALS });
  await s3.client.send(new CreateBucketCommand({ Bucket: 'nudges' }));
}, 30_000);
afterAll(async () => {
  await moto?.stop();
});

/** The portal's events of a small group, run through the reconciler function as one SQS batch. */
async function provision(rg: string, nudges: NudgePublisher): Promise<{ failures: number }> {
  const vm = (name: string, roles: string[], address: string) => ({ name, roles, cpu: 2, memoryMiB: 8192, disks: [{ sizeGiB: 30, kind: 'ssd' }], srvAddresses: [address] });
  const events = [
    { type: 'cluster.provisioned', payload: { settings: {} } },
    { type: 'vm.upserted', payload: { vm: vm('kube01', ['k3s-server'], '172.22.0.2') } },
    { type: 'vm.upserted', payload: { vm: vm('kube02', ['k3s-agent'], '172.22.0.3') } },
  ].map((event, i) => ({ id: `${rg}-${i}`, resourceGroup: rg, occurredAt: new Date(Date.UTC(2026, 11, 5, 10, 0, i)).toISOString(), ...event }));
  const handler = createReconcilerHandler({ store: s3, nudges, masterKey: 'k'.repeat(40), signer: async () => TEST_SIGNER, logger: createLogger('test'), deadLetter: async () => undefined });
  const records = events.map((event, i) => toSqsRecord({ id: event.id, group: rg, body: JSON.stringify(event), receipt: `${rg}-r${i}`, receiveCount: 1, sentAt: Date.now() }));
  const result = await handler({ Records: records } as SQSEvent, localContext('reconciler'));
  return { failures: result.batchItemFailures.length };
}

test("each document the reconciler writes is published on its VM's topic (moto accepts it) with the generation stored", async () => {
  const published: Array<{ resourceGroup: string; vm: string; generation: number }> = [];
  const errors: unknown[] = [];
  const iot = new IotNudgePublisher({ endpoint: moto.endpoint, region: 'us-east-1', credentials: TEST_CREDENTIALS });
  expect(await provision('nudged', nudgeFanOut([iot, { publish: (nudge) => void published.push(nudge) }], (error) => errors.push(error)))).toEqual({ failures: 0 });
  await new Promise((resolve) => setTimeout(resolve, 300));
  const documents = (await s3.list('desired/nudged/')).sort();
  expect(documents).toEqual(['desired/nudged/kube01.json', 'desired/nudged/kube02.json']);
  // One nudge per document, none for the state, the status or anything else the run wrote.
  const stored = await Promise.all(documents.map(async (key) => JSON.parse((await s3.get(key))!.body) as { vm: string; generation: number }));
  expect(published.sort((a, b) => a.vm.localeCompare(b.vm))).toEqual(stored.map((document) => ({ resourceGroup: 'nudged', vm: document.vm, generation: document.generation })));
  expect(errors).toEqual([]);
});

test('the IoT endpoint unreachable: the run writes every document all the same and the failure is reported', async () => {
  const errors: unknown[] = [];
  const started = Date.now();
  expect(await provision('unnudged', nudgeFanOut([new IotNudgePublisher({ endpoint: 'http://127.0.0.1:9', region: 'us-east-1', credentials: TEST_CREDENTIALS })], (error) => errors.push(error)))).toEqual({ failures: 0 });
  expect((await s3.list('desired/unnudged/')).sort()).toEqual(['desired/unnudged/kube01.json', 'desired/unnudged/kube02.json']);
  const deadline = started + 10_000;
  while (errors.length < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  expect(errors.map(String)).toEqual([expect.stringMatching(/ECONNREFUSED|connect/), expect.stringMatching(/ECONNREFUSED|connect/)]);
}, 20_000);
