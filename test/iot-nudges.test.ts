/**
 * The reconciler's nudges in AWS go through IoT Core's data plane: checked against moto_server's
 * iot-data (an implementation nobody here wrote), through the store wrapper the reconciler
 * writes with. A nudge is best effort: one that cannot be published never fails the write.
 */
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { IotNudgePublisher } from '../adapters/iot-nudge-publisher.ts';
import { S3Store } from '../adapters/s3-store.ts';
import { nudgingStore } from '../functions/shared/nudging-store.ts';
import { type RunningServer, startMoto, TEST_CREDENTIALS } from './helpers/servers.ts';

let moto: RunningServer;
beforeAll(async () => {
  moto = await startMoto();
});
afterAll(async () => {
  await moto?.stop();
});

test('a document written through the store is published on its VM\'s topic (moto accepts it); other objects are not', async () => {
  const s3 = new S3Store({ bucket: 'nudges', endpoint: moto.endpoint, region: 'us-east-1', credentials: TEST_CREDENTIALS });
  await s3.client.send(new CreateBucketCommand({ Bucket: 'nudges' }));
  const published: Array<{ resourceGroup: string; vm: string; generation: number }> = [];
  const iot = new IotNudgePublisher({ endpoint: moto.endpoint, region: 'us-east-1', credentials: TEST_CREDENTIALS });
  const errors: unknown[] = [];
  const store = nudgingStore(s3, [iot, { publish: (nudge) => void published.push(nudge) }], (error) => errors.push(error));
  await store.put('desired/demo/web01.json', JSON.stringify({ generation: 7, vm: 'web01' }));
  await store.put('state/demo.json', JSON.stringify({ generation: 8 }));
  await store.put('reports/demo/web01.json', JSON.stringify({ generation: 9 }));
  await new Promise((resolve) => setTimeout(resolve, 300));
  expect(published).toEqual([{ resourceGroup: 'demo', vm: 'web01', generation: 7 }]);
  expect(errors).toEqual([]);
});

test('the IoT endpoint unreachable: the document is written all the same and the failure is reported', async () => {
  const s3 = new S3Store({ bucket: 'nudges', endpoint: moto.endpoint, region: 'us-east-1', credentials: TEST_CREDENTIALS });
  const errors: unknown[] = [];
  const store = nudgingStore(s3, [new IotNudgePublisher({ endpoint: 'http://127.0.0.1:9', region: 'us-east-1', credentials: TEST_CREDENTIALS })], (error) => errors.push(error));
  await store.put('desired/demo/kube02.json', JSON.stringify({ generation: 3 }));
  expect(JSON.parse((await s3.get('desired/demo/kube02.json'))!.body)).toEqual({ generation: 3 });
  const deadline = Date.now() + 10_000;
  while (errors.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  expect(String(errors[0])).toMatch(/ECONNREFUSED|connect/);
}, 20_000);
