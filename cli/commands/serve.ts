/**
 * `ringmaster serve`: the local control plane in the foreground. It prints where everything
 * is; the secrets stay in the data folder's credentials file (mode 0600) unless asked for.
 */
import { routeUrl } from '../../shared/contract/routes.ts';
import { existsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type ConnectionInfo, LOCAL_BUCKET, LOCAL_REGION, startLocalControlPlane } from '../../local/control-plane.ts';
import { loadOrCreateCredentials } from '../../local/credentials.ts';
import { agentCredentials } from '../../shared/agent-identity.ts';
import { documentPublicKey } from '../../functions/shared/document-signer.ts';
import { dnsLabel } from '../../shared/schema/primitives.ts';
import { acmeSettingsFrom, InputError } from '../input.ts';

export interface ServeOptions {
  readonly historyDepth?: number;
  readonly dataDir: string;
  readonly apiPort: number;
  readonly s3Port: number;
  readonly publicUrl?: string;
  readonly readyFile?: string;
  readonly showCredentials?: boolean;
  /** Where VMs order TLS certificates (else $RINGMASTER_ACME_DIRECTORY / $RINGMASTER_ACME_EMAIL, else Let's Encrypt production). */
  readonly acmeDirectory?: string;
  readonly acmeEmail?: string;
}

export function describeConnection(info: ConnectionInfo, showCredentials: boolean): string {
  const credentialsFile = join(resolve(info.dataDir), 'credentials.json');
  const secret = (value: string) => (showCredentials ? value : `(in ${credentialsFile})`);
  return [
    `Ringmaster control plane (local) is running. Data: ${resolve(info.dataDir)}`,
    '',
    `  API           ${info.apiUrl}   (OpenAPI: ${routeUrl(info.apiUrl, 'getOpenApi', {})})`,
    `  API token     ${secret(info.apiToken)}`,
    `  S3 endpoint   ${info.s3Endpoint}   bucket ${info.bucket}, region ${info.region}, path-style`,
    `  S3 key        ${info.accessKeyId} / ${secret(info.secretAccessKey)}`,
    ...(info.acme ? [`  ACME          ${info.acme.directoryUrl}${info.acme.email ? `   account ${info.acme.email}` : ''}   (VMs order their TLS certificates here)`] : []),
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
  const acme = acmeSettingsFrom(options);
  const controlPlane = await startLocalControlPlane({
    acme,
    dataDir: options.dataDir,
    apiPort: options.apiPort,
    s3Port: options.s3Port,
    ...(options.publicUrl ? { publicUrl: options.publicUrl } : {}),
    ...(options.historyDepth ? { historyDepth: options.historyDepth } : {}),
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

/** Prints the environment a VM's agent needs, with credentials good for that VM only. */
export function printAgentCredentials(rg: string, vm: string, dataDir: string): number {
  for (const [what, value] of [['resource group', rg], ['VM', vm]] as const) {
    const valid = dnsLabel.safeParse(value);
    if (!valid.success) throw new InputError(what, [`"${value}" ${valid.error.issues[0]?.message ?? 'is invalid'}`]);
  }
  const file = join(dataDir, 'credentials.json');
  if (!existsSync(file)) throw new InputError(file, ['no local control plane data here: start it once with `npx ringmaster serve`']);
  const { masterKey } = loadOrCreateCredentials(file);
  const { accessKeyId, secretAccessKey } = agentCredentials(masterKey, rg, vm);
  process.stdout.write(
    [
      `RINGMASTER_RESOURCE_GROUP=${rg}`,
      `RINGMASTER_VM=${vm}`,
      `RINGMASTER_BUCKET=${LOCAL_BUCKET}`,
      `AWS_REGION=${LOCAL_REGION}`,
      `AWS_ACCESS_KEY_ID=${accessKeyId}`,
      `AWS_SECRET_ACCESS_KEY=${secretAccessKey}`,
      // Not a secret: the public key the agent checks every document's signature with.
      `RINGMASTER_TRUSTED_KEYS=${documentPublicKey(masterKey)}`,
      // Where the agent hears of its document's changes at once (serve's API, default port).
      `RINGMASTER_PUSH_URL=http://127.0.0.1:7480`,
      '',
    ].join('\n'),
  );
  return 0;
}
