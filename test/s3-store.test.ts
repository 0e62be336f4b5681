/** The S3 store adapter against moto (an independent AWS implementation) and the embedded s3rver. */
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { S3Store } from '../adapters/s3-store.ts';
import { PreconditionFailed } from '../shared/ports.ts';
import { type RunningServer, startMoto, startS3rver, TEST_CREDENTIALS } from './helpers/servers.ts';

const BUCKET = 'ringmaster-test';

describe.each([
  ['moto_server', async () => startMoto(), true],
  ['the embedded S3 endpoint (s3rver, hardened)', async () => startS3rver(BUCKET), false],
] as const)('S3Store on %s', (_name, start, conditional) => {
  let server: RunningServer;
  let store: S3Store;

  beforeAll(async () => {
    server = await start();
    store = new S3Store({ bucket: BUCKET, endpoint: server.endpoint, region: 'us-east-1', credentials: TEST_CREDENTIALS });
    if (conditional) await store.client.send(new CreateBucketCommand({ Bucket: BUCKET }));
  }, 30000);
  afterAll(async () => server.stop());

  test('put, get, list by prefix, delete', async () => {
    await store.put('desired/rg1/vm1.json', '{"a":1}');
    await store.put('desired/rg1/vm2.json', '{"a":2}');
    await store.put('desired/rg2/vm1.json', '{"a":3}');
    expect(await store.get('desired/rg1/vm2.json')).toEqual({ body: '{"a":2}', etag: expect.stringMatching(/.+/) });
    expect((await store.list('desired/rg1/')).sort()).toEqual(['desired/rg1/vm1.json', 'desired/rg1/vm2.json']);
    await store.delete('desired/rg1/vm1.json');
    expect(await store.get('desired/rg1/vm1.json')).toBeUndefined();
    expect(await store.list('desired/rg1/')).toEqual(['desired/rg1/vm2.json']);
  });

  test('a missing object is undefined, not an error', async () => {
    expect(await store.get('state/nothing.json')).toBeUndefined();
  });

  // Plain s3rver ignores conditions (TOOLCHAIN.md); the embedded endpoint adds them.
  test('conditional writes: If-None-Match * and a stale If-Match are refused with 412', async () => {
    const { etag } = await store.put('state/rg9.json', '{"v":1}', { ifNoneMatch: '*' });
    await expect(store.put('state/rg9.json', '{"v":2}', { ifNoneMatch: '*' })).rejects.toBeInstanceOf(PreconditionFailed);
    const { etag: second } = await store.put('state/rg9.json', '{"v":2}', { ifMatch: etag });
    await expect(store.put('state/rg9.json', '{"v":3}', { ifMatch: etag })).rejects.toBeInstanceOf(PreconditionFailed);
    await store.put('state/rg9.json', '{"v":3}', { ifMatch: second });
    expect((await store.get('state/rg9.json'))?.body).toBe('{"v":3}');
  });
});

test('the embedded S3 endpoint refuses requests signed with other credentials', async () => {
  const server = await startS3rver(BUCKET);
  try {
    const wrong = new S3Store({ bucket: BUCKET, endpoint: server.endpoint, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
    await expect(wrong.get('state/x.json')).rejects.toThrow(/Access Key Id you provided does not exist/);
    const right = new S3Store({ bucket: BUCKET, endpoint: server.endpoint, credentials: TEST_CREDENTIALS });
    expect(await right.get('state/x.json')).toBeUndefined();
  } finally {
    await server.stop();
  }
});
