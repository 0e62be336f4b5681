/** The embedded S3 endpoint under concurrent reads and writes: a reader never sees half an object. */
import { mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmbeddedS3 } from '../adapters/embedded-s3.ts';
import { S3Store } from '../adapters/s3-store.ts';
import { freePort, TEST_CREDENTIALS } from './helpers/servers.ts';

test('a reader sees the old or the new object whole, never a mix, while it is rewritten', async () => {
  const directory = mkdtempSync(join(tmpdir(), 'ringmaster-embedded-'));
  const s3 = await startEmbeddedS3({ directory: join(directory, 's3'), port: await freePort(), bucket: 'ringmaster', ...TEST_CREDENTIALS });
  const store = new S3Store({ bucket: 'ringmaster', endpoint: s3.endpoint, credentials: TEST_CREDENTIALS });
  try {
    const versions = Array.from({ length: 40 }, (_, i) => JSON.stringify({ version: i, padding: 'x'.repeat(20000 + (i % 7) * 3000) }));
    await store.put('desired/rg/vm.json', versions[0]!);
    let reads = 0;
    let writing = true;
    const reader = (async () => {
      while (writing) {
        const object = await store.get('desired/rg/vm.json');
        expect(versions).toContain(object?.body);
        reads++;
      }
    })();
    for (const version of versions.slice(1)) await store.put('desired/rg/vm.json', version);
    writing = false;
    await reader;
    expect(reads).toBeGreaterThan(5);
    expect((await store.get('desired/rg/vm.json'))?.body).toBe(versions.at(-1));
  } finally {
    await s3.close();
    rmSync(directory, { recursive: true, force: true });
  }
});

test('conditional polls answered 304 leave no file open', async () => {
  const directory = mkdtempSync(join(tmpdir(), 'ringmaster-embedded-'));
  const s3 = await startEmbeddedS3({ directory: join(directory, 's3'), port: await freePort(), bucket: 'ringmaster', ...TEST_CREDENTIALS });
  const store = new S3Store({ bucket: 'ringmaster', endpoint: s3.endpoint, credentials: TEST_CREDENTIALS });
  // Descriptors of this process that point into the object folder (sockets do not count).
  const openFiles = () =>
    readdirSync('/proc/self/fd').filter((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`).startsWith(directory);
      } catch {
        return false;
      }
    }).length;
  try {
    const { etag } = await store.put('desired/rg/vm.json', '{"v":1}');
    const before = openFiles();
    for (let i = 0; i < 300; i++) {
      const response = await fetch(`${s3.endpoint}/ringmaster/desired/rg/vm.json`, { headers: { 'if-none-match': etag } });
      expect(response.status).toBe(403); // unsigned: refused before any file is touched
    }
    const notModified = await Promise.all(Array.from({ length: 300 }, () => store.client.send(new GetObjectCommand({ Bucket: 'ringmaster', Key: 'desired/rg/vm.json', IfNoneMatch: etag })).catch((e: { $metadata?: { httpStatusCode?: number } }) => e.$metadata?.httpStatusCode)));
    expect(new Set(notModified)).toEqual(new Set([304]));
    await new Promise((r) => setTimeout(r, 100));
    expect(openFiles()).toBe(before);
  } finally {
    await s3.close();
    rmSync(directory, { recursive: true, force: true });
  }
});

test('unsigned (anonymous) requests are refused, reads and writes alike', async () => {
  const directory = mkdtempSync(join(tmpdir(), 'ringmaster-embedded-'));
  const s3 = await startEmbeddedS3({ directory: join(directory, 's3'), port: await freePort(), bucket: 'ringmaster', ...TEST_CREDENTIALS });
  try {
    await new S3Store({ bucket: 'ringmaster', endpoint: s3.endpoint, credentials: TEST_CREDENTIALS }).put('state/rg.json', '{"secret":true}');
    expect((await fetch(`${s3.endpoint}/ringmaster/state/rg.json`)).status).toBe(403);
    expect((await fetch(`${s3.endpoint}/ringmaster?list-type=2`)).status).toBe(403);
    expect((await fetch(`${s3.endpoint}/ringmaster/state/rg.json`, { method: 'PUT', body: '{}' })).status).toBe(403);
  } finally {
    await s3.close();
    rmSync(directory, { recursive: true, force: true });
  }
});
