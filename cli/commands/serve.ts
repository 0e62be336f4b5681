/**
 * `ringmaster serve`: the local control plane in the foreground. It prints where everything
 * is; the secrets stay in the data folder's credentials file (mode 0600) unless asked for.
 */
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type ConnectionInfo, startLocalControlPlane } from '../../local/control-plane.ts';

export interface ServeOptions {
  readonly dataDir: string;
  readonly apiPort: number;
  readonly s3Port: number;
  readonly publicUrl?: string;
  readonly readyFile?: string;
  readonly showCredentials?: boolean;
}

export function describeConnection(info: ConnectionInfo, showCredentials: boolean): string {
  const credentialsFile = join(resolve(info.dataDir), 'credentials.json');
  const secret = (value: string) => (showCredentials ? value : `(in ${credentialsFile})`);
  return [
    `Ringmaster control plane (local) is running. Data: ${resolve(info.dataDir)}`,
    '',
    `  API           ${info.apiUrl}   (OpenAPI: ${info.apiUrl}/v1/openapi.json)`,
    `  API token     ${secret(info.apiToken)}`,
    `  S3 endpoint   ${info.s3Endpoint}   bucket ${info.bucket}, region ${info.region}, path-style`,
    `  S3 key        ${info.accessKeyId} / ${secret(info.secretAccessKey)}`,
    '',
    'Try:',
    '  npx ringmaster event send examples/events/reference-architecture.yaml',
    '  npx ringmaster status demo',
    `  AWS_ACCESS_KEY_ID=${info.accessKeyId} AWS_SECRET_ACCESS_KEY=... aws --endpoint-url ${info.s3Endpoint} s3api list-objects-v2 --bucket ${info.bucket}`,
    '',
    'Stop with Ctrl-C; accepted events are kept and applied after a restart.',
  ].join('\n');
}

export async function serve(options: ServeOptions): Promise<void> {
  const controlPlane = await startLocalControlPlane({
    dataDir: options.dataDir,
    apiPort: options.apiPort,
    s3Port: options.s3Port,
    ...(options.publicUrl ? { publicUrl: options.publicUrl } : {}),
  });
  if (options.readyFile) writeFileSync(options.readyFile, `${JSON.stringify(controlPlane.info)}\n`, { mode: 0o600 });
  process.stdout.write(`${describeConnection(controlPlane.info, options.showCredentials ?? false)}\n`);
  await new Promise<void>((done) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      void controlPlane.stop().then(done);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
