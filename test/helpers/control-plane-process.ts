/** The local control plane as a user runs it: `ringmaster serve` in its own process. */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { S3Store } from '../../adapters/s3-store.ts';
import type { ConnectionInfo } from '../../local/control-plane.ts';
import { ROOT } from './fixtures.ts';

export interface ControlPlaneProcess {
  readonly info: ConnectionInfo;
  readonly child: ChildProcess;
  readonly store: S3Store;
  readonly output: () => string;
  api(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any }>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export async function startControlPlaneProcess(dataDir: string, ports: { api?: number; s3?: number } = {}): Promise<ControlPlaneProcess> {
  const readyFile = join(dataDir, `ready-${Date.now()}.json`);
  const child = spawn(
    process.execPath,
    [`${ROOT}cli/ringmaster.ts`, 'serve', '--data-dir', dataDir, '--api-port', String(ports.api ?? 0), '--s3-port', String(ports.s3 ?? 0), '--ready-file', readyFile],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RINGMASTER_LOG_LEVEL: 'ERROR' } },
  );
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const deadline = Date.now() + 20000;
  while (!existsSync(readyFile)) {
    if (child.exitCode !== null) throw new Error(`ringmaster serve exited with ${child.exitCode}:\n${output}`);
    if (Date.now() > deadline) throw new Error(`ringmaster serve did not become ready:\n${output}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const info = JSON.parse(readFileSync(readyFile, 'utf8')) as ConnectionInfo;
  rmSync(readyFile);
  const store = new S3Store({ bucket: info.bucket, endpoint: info.s3Endpoint, region: info.region, credentials: { accessKeyId: info.accessKeyId, secretAccessKey: info.secretAccessKey } });
  return {
    info,
    child,
    store,
    output: () => output,
    api: async (method, path, body, headers = {}) => {
      const response = await fetch(`${info.apiUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${info.apiToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
        ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
      });
      const text = await response.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // keep text
      }
      return { status: response.status, body: parsed };
    },
    kill: (signal = 'SIGTERM') =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill(signal);
      }),
  };
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 15000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
