/**
 * Independent peers for tests, on 127.0.0.1 only: moto_server (Python, an implementation of
 * the AWS APIs that is not ours) and s3rver (the embedded S3 endpoint of the local mode).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fullAccess, startEmbeddedS3 } from '../../adapters/embedded-s3.ts';

export const TEST_CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' };

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

async function waitForHttp(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await fetch(url);
      return;
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`${url} did not answer within ${timeoutMs} ms: ${(error as Error).message}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

export interface RunningServer {
  readonly endpoint: string;
  stop(): Promise<void>;
}

export async function startMoto(): Promise<RunningServer> {
  const port = await freePort();
  const child: ChildProcess = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  const endpoint = `http://127.0.0.1:${port}`;
  await waitForHttp(`${endpoint}/moto-api/`, 15000);
  return {
    endpoint,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

export async function startS3rver(bucket: string): Promise<RunningServer> {
  const directory = mkdtempSync(join(tmpdir(), 'ringmaster-s3rver-'));
  const server = await startEmbeddedS3({ directory, port: await freePort(), bucket, principal: fullAccess(TEST_CREDENTIALS.accessKeyId, TEST_CREDENTIALS.secretAccessKey) });
  return {
    endpoint: server.endpoint,
    stop: async () => {
      await server.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}
