/**
 * `ringmaster serve`: the local control plane in the foreground. It prints where everything
 * is; the secrets stay in the data folder's credentials file (mode 0600) unless asked for.
 */
import { routeUrl } from '../../shared/contract/routes.ts';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type ConnectionInfo, LOCAL_BUCKET, LOCAL_REGION, startLocalControlPlane } from '../../local/control-plane.ts';
import { loadOrCreateCredentials } from '../../local/credentials.ts';
import { DEFAULT_API_URL } from '../api-client.ts';
import { agentCredentials } from '../../shared/agent-identity.ts';
import { addLocalRoot, localRoots, localTrustedRoots, retireLocalRoot } from '../../local/root-keys.ts';
import { readSigningCredentials } from '../../shared/contract/signing-credentials.ts';
import { readFileSync } from 'node:fs';
import { dnsLabel } from '../../shared/schema/primitives.ts';
import { writeAtomically } from '../../agent/files.ts';
import { sandboxLayouts } from '../../shared/layout.ts';
import { acmeSettingsFrom, InputError } from '../input.ts';

export interface ServeOptions {
  readonly historyDepth?: number;
  readonly dataDir: string;
  readonly apiPort: number;
  readonly s3Port: number;
  readonly publicUrl?: string;
  readonly readyFile?: string;
  readonly showCredentials?: boolean;
  /** Sandboxed VMs: each VM's paths rendered under `<sandboxRoot>/<rg>/<vm>`. */
  readonly sandboxRoot?: string;
  /** An MQTT broker to publish nudges on too; its account from RINGMASTER_MQTT_USERNAME / RINGMASTER_MQTT_PASSWORD. */
  readonly mqttUrl?: string;
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
    `  Root keys     ${info.trustedRoots.join(', ')}   (agents trust these: RINGMASTER_TRUSTED_KEYS)`,
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
    ...(options.sandboxRoot ? { layout: sandboxLayouts(resolve(options.sandboxRoot)) } : {}),
    // The broker password stays out of the command line (and so out of `ps`).
    ...(options.mqttUrl
      ? {
          mqtt: {
            url: options.mqttUrl,
            ...(process.env.RINGMASTER_MQTT_USERNAME ? { username: process.env.RINGMASTER_MQTT_USERNAME } : {}),
            ...(process.env.RINGMASTER_MQTT_PASSWORD ? { password: process.env.RINGMASTER_MQTT_PASSWORD } : {}),
          },
        }
      : {}),
  });
  // Whole or not at all: whoever waits for the file reads it the moment it appears.
  if (options.readyFile) await writeAtomically(options.readyFile, `${JSON.stringify(controlPlane.info)}\n`, 0o600);
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
  const roots = localTrustedRoots(dataDir);
  if (roots.length === 0) throw new InputError(dataDir, ['no root key yet: start the control plane once with `npx ringmaster serve` (it makes one)']);
  // Where the agent hears of its document's changes at once: serve's API, at its default port.
  process.stdout.write(`${Object.entries(agentEnvironment(masterKey, rg, vm, roots, DEFAULT_API_URL)).map(([name, value]) => `${name}=${value}`).join('\n')}\n`);
  return 0;
}

/** The environment of one VM's agent on the local control plane: store credentials good for that VM only. */
export function agentEnvironment(masterKey: string, rg: string, vm: string, trustedRoots: readonly string[], pushUrl: string): Record<string, string> {
  const { accessKeyId, secretAccessKey } = agentCredentials(masterKey, rg, vm);
  return {
    RINGMASTER_RESOURCE_GROUP: rg,
    RINGMASTER_VM: vm,
    RINGMASTER_BUCKET: LOCAL_BUCKET,
    AWS_REGION: LOCAL_REGION,
    AWS_ACCESS_KEY_ID: accessKeyId,
    AWS_SECRET_ACCESS_KEY: secretAccessKey,
    // Not a secret: the root keys the agent checks every document's delegation with.
    RINGMASTER_TRUSTED_KEYS: trustedRoots.join(','),
    // Where the agent hears of its document's changes at once (the control plane's API).
    RINGMASTER_PUSH_URL: pushUrl,
  };
}

/**
 * `ringmaster roots list|add|retire`: the local root keys. `add` makes the next root (announced
 * by the current one, active from the next renewal: at start, or within the hour); `retire`
 * destroys an old root once its successor is announced, and the next renewal tells agents.
 */
export function manageRoots(action: 'list' | 'add' | 'retire', dataDir: string, keyId?: string): number {
  if (!existsSync(join(dataDir, 'credentials.json'))) throw new InputError(dataDir, ['no local control plane data here: start it once with `npx ringmaster serve`']);
  if (action === 'add') {
    process.stdout.write(`added root ${addLocalRoot(dataDir).keyId}; \`ringmaster serve\` announces it at its next start or renewal\n`);
  } else if (action === 'retire') {
    if (!keyId || !/^[0-9a-f]{16}$/.test(keyId)) throw new InputError('key id', [`"${keyId ?? ''}" must be a root key id (16 hex digits, as \`ringmaster roots list\` prints them)`]);
    try {
      retireLocalRoot(dataDir, keyId);
    } catch (error) {
      throw new InputError('ringmaster roots retire', [(error as Error).message]);
    }
    process.stdout.write(`retired root ${keyId} (its private key is destroyed); the next renewal tells agents\n`);
  } else {
    const signingFile = join(dataDir, 'signing.json');
    const credentials = existsSync(signingFile) ? readSigningCredentials(readFileSync(signingFile, 'utf8')) : undefined;
    const roots = localRoots(dataDir);
    for (const [i, root] of roots.entries()) {
      const state = [i === roots.length - 1 ? 'active' : 'previous', credentials?.roots.includes(root.keyId) ? 'announced' : 'not announced yet'].join(', ');
      process.stdout.write(`${root.keyId}  ${state}  ${root.publicKey}\n`);
    }
    for (const retired of credentials?.retired ?? []) process.stdout.write(`${retired}  retired\n`);
  }
  return 0;
}
