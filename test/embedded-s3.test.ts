/** The embedded S3 endpoint under concurrent reads and writes: a reader never sees half an object. */
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type EmbeddedS3, fullAccess, startEmbeddedS3 } from '../adapters/embedded-s3.ts';
import { S3Store } from '../adapters/s3-store.ts';
import { agentCredentials, agentMay, agentOfAccessKey } from '../shared/agent-identity.ts';
import { freePort, TEST_CREDENTIALS } from './helpers/servers.ts';

const execFileAsync = promisify(execFile);

/** An endpoint in a fresh folder for one test, with a store client signed as its administrator. */
async function withEndpoint(body: (s3: EmbeddedS3, store: S3Store, directory: string) => Promise<void>): Promise<void> {
  const directory = mkdtempSync(join(tmpdir(), 'ringmaster-embedded-'));
  const s3 = await startEmbeddedS3({ directory: join(directory, 's3'), port: await freePort(), bucket: 'ringmaster', principal: fullAccess(TEST_CREDENTIALS.accessKeyId, TEST_CREDENTIALS.secretAccessKey) });
  try {
    await body(s3, new S3Store({ bucket: 'ringmaster', endpoint: s3.endpoint, credentials: TEST_CREDENTIALS }), directory);
  } finally {
    await s3.close();
    rmSync(directory, { recursive: true, force: true });
  }
}

test('a reader sees the old or the new object whole, never a mix, while it is rewritten', () =>
  withEndpoint(async (_s3, store) => {
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
  }));

test("a listing while an object is rewritten never leaves it with another content's ETag (an agent's conditional GET would answer 304 for good)", () =>
  withEndpoint(async (_s3, store) => {
    const key = 'desired/rg/vm.json';
    await store.put(key, JSON.stringify({ generation: 0 }));
    let listing = true;
    let listings = 0;
    // The status API lists reports while the reconciler writes documents.
    const lister = (async () => {
      while (listing) {
        await store.list('desired/rg/');
        listings++;
      }
    })();
    const stale: string[] = [];
    for (let generation = 1; generation <= 60; generation++) {
      const body = JSON.stringify({ generation, padding: 'x'.repeat(5000) });
      const { etag } = await store.put(key, body);
      const md5 = JSON.stringify(createHash('md5').update(body).digest('hex'));
      const read = await store.get(key);
      if (read?.body !== body || read.etag !== md5 || etag !== md5) stale.push(`generation ${generation}: put answered ${etag}, read ${read?.etag} for ${read?.body === body ? 'this' : 'other'} content, its MD5 is ${md5}`);
    }
    listing = false;
    await lister;
    expect(listings).toBeGreaterThan(10);
    expect(stale).toEqual([]);
  }));

test('conditional polls answered 304 leave no file open', () =>
  withEndpoint(async (s3, store, directory) => {
  // Descriptors of this process that point into the object folder (sockets do not count).
  const openFiles = () =>
    readdirSync('/proc/self/fd').filter((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`).startsWith(directory);
      } catch {
        return false;
      }
    }).length;
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
  }));

test('unsigned (anonymous) requests are refused, reads and writes alike', () =>
  withEndpoint(async (s3, store) => {
    await store.put('state/rg.json', '{"secret":true}');
    expect((await fetch(`${s3.endpoint}/ringmaster/state/rg.json`)).status).toBe(403);
    expect((await fetch(`${s3.endpoint}/ringmaster?list-type=2`)).status).toBe(403);
    expect((await fetch(`${s3.endpoint}/ringmaster/state/rg.json`, { method: 'PUT', body: '{}' })).status).toBe(403);
  }));

describe('signatures and permissions', () => {
  let directory: string;
  let s3: Awaited<ReturnType<typeof startEmbeddedS3>>;
  const master = 'master-key-for-agent-credentials-0123456789';
  beforeAll(async () => {
    directory = mkdtempSync(join(tmpdir(), 'ringmaster-embedded-'));
    const admin = fullAccess(TEST_CREDENTIALS.accessKeyId, TEST_CREDENTIALS.secretAccessKey);
    s3 = await startEmbeddedS3({
      directory: join(directory, 's3'),
      port: await freePort(),
      bucket: 'ringmaster',
      principal: (id) => {
        const agent = agentOfAccessKey(id);
        if (!agent) return admin(id);
        return { secretAccessKey: agentCredentials(master, agent.resourceGroup, agent.vm).secretAccessKey, may: (method, key) => agentMay(agent.resourceGroup, agent.vm, method, key) };
      },
    });
    const store = new S3Store({ bucket: 'ringmaster', endpoint: s3.endpoint, credentials: TEST_CREDENTIALS });
    await store.put('desired/rg1/vm1.json', '{"vm":"vm1"}');
    await store.put('desired/rg1/vm2.json', '{"vm":"vm2"}');
    await store.put('state/rg1.json', '{"secrets":"all of them"}');
  });
  afterAll(async () => {
    await s3.close();
    rmSync(directory, { recursive: true, force: true });
  });

  test('the right access key id with a wrong secret is refused', async () => {
    const forged = new S3Store({ bucket: 'ringmaster', endpoint: s3.endpoint, credentials: { accessKeyId: TEST_CREDENTIALS.accessKeyId, secretAccessKey: 'not-the-secret' } });
    await expect(forged.get('state/rg1.json')).rejects.toThrow(/signature we calculated does not match/);
    await expect(forged.put('desired/rg1/vm1.json', '{}')).rejects.toThrow(/signature we calculated does not match/);
  });

  test('awscli, an independent client, signs requests the endpoint accepts', async () => {
    // Asynchronous: the endpoint runs in this process and must keep answering.
    const env = { ...process.env, AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey, AWS_DEFAULT_REGION: 'us-east-1', AWS_MAX_ATTEMPTS: '1' };
    const aws = (args: string[], extraEnv: Record<string, string> = {}) =>
      execFileAsync('aws', ['--endpoint-url', s3.endpoint, 's3api', ...args], { encoding: 'utf8', env: { ...env, ...extraEnv } }).then(
        ({ stdout }) => ({ ok: true, stdout, stderr: '' }),
        (error: { stdout?: string; stderr?: string }) => ({ ok: false, stdout: error.stdout ?? '', stderr: error.stderr ?? '' }),
      );
    writeFileSync(join(directory, 'payload.json'), '{"from":"awscli"}');
    expect(await aws(['put-object', '--bucket', 'ringmaster', '--key', 'reports/rg1/vm9.json', '--body', join(directory, 'payload.json')])).toMatchObject({ ok: true });
    const listed = await aws(['list-objects-v2', '--bucket', 'ringmaster', '--prefix', 'reports/']);
    expect(listed.stdout).toContain('reports/rg1/vm9.json');
    expect(await aws(['get-object', '--bucket', 'ringmaster', '--key', 'reports/rg1/vm9.json', join(directory, 'out.json')])).toMatchObject({ ok: true });
    expect(readFileSync(join(directory, 'out.json'), 'utf8')).toBe('{"from":"awscli"}');
    const wrong = await aws(['list-objects-v2', '--bucket', 'ringmaster'], { AWS_SECRET_ACCESS_KEY: 'wrong' });
    expect(wrong.ok).toBe(false);
    expect(wrong.stderr).toContain('SignatureDoesNotMatch');
  }, 60000);

  test('a key with "." or ".." segments is refused (400) by awscli and the SDK alike, and nothing is written outside the bucket', async () => {
    const env = { ...process.env, AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey, AWS_DEFAULT_REGION: 'us-east-1', AWS_MAX_ATTEMPTS: '1' };
    writeFileSync(join(directory, 'payload.json'), '{"escaped":true}');
    const before = readdirSync(directory).sort();
    for (const key of ['../escaped.json', 'desired/../../escaped.json', 'reports/./rg1.json']) {
      const put = await execFileAsync('aws', ['--endpoint-url', s3.endpoint, 's3api', 'put-object', '--bucket', 'ringmaster', '--key', key, '--body', join(directory, 'payload.json')], { encoding: 'utf8', env }).then(
        () => '',
        (error: { stderr?: string }) => error.stderr ?? 'failed',
      );
      expect([key, put]).toEqual([key, expect.stringContaining('InvalidArgument')]);
    }
    const admin = new S3Store({ bucket: 'ringmaster', endpoint: s3.endpoint, credentials: TEST_CREDENTIALS });
    await expect(admin.put('state/../../x.json', '{}')).rejects.toThrow(/not accepted/);
    await expect(admin.get('../credentials.json')).rejects.toThrow(/not accepted/);
    expect(readdirSync(directory).sort()).toEqual(before);
    expect(readdirSync(join(directory, 's3')).sort()).toEqual(['ringmaster']);
  }, 60000);

  test("an agent reads only its own document and writes only its own report", async () => {
    const agent = new S3Store({ bucket: 'ringmaster', endpoint: s3.endpoint, credentials: agentCredentials(master, 'rg1', 'vm1') });
    expect((await agent.get('desired/rg1/vm1.json'))?.body).toBe('{"vm":"vm1"}');
    await expect(agent.get('desired/rg1/vm2.json')).rejects.toThrow(/Access Denied/);
    await expect(agent.get('state/rg1.json')).rejects.toThrow(/Access Denied/);
    await expect(agent.list('desired/')).rejects.toThrow(/Access Denied/);
    await agent.put('reports/rg1/vm1.json', '{"ok":true}');
    await expect(agent.put('reports/rg1/vm2.json', '{}')).rejects.toThrow(/Access Denied/);
    await expect(agent.put('desired/rg1/vm1.json', '{}')).rejects.toThrow(/Access Denied/);
    const other = new S3Store({ bucket: 'ringmaster', endpoint: s3.endpoint, credentials: { accessKeyId: 'vm.rg1.vm1', secretAccessKey: agentCredentials(master, 'rg1', 'vm2').secretAccessKey } });
    await expect(other.get('desired/rg1/vm1.json')).rejects.toThrow(/signature we calculated does not match/);
  });
});
