/**
 * A webgateway in a folder with nothing prepared, run by the real agent: documents computed
 * from scenario 1 with the TLS hosts a test asks for, signed and stored in the embedded S3
 * endpoint; real haproxy and nginx started and reloaded by vm-in-a-folder.ts (systemd stood in
 * for). nginx listens on a loopback address of this run's own, at ports 80 and 443 as on a VM.
 */
import { S3Client } from '@aws-sdk/client-s3';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type PeerCertificate } from 'node:tls';
import { fullAccess, startEmbeddedS3 } from '../../adapters/embedded-s3.ts';
import { S3Store } from '../../adapters/s3-store.ts';
import { Agent, type AgentOptions } from '../../agent/agent.ts';
import type { AcmeSettings } from '../../shared/certificates/acme-settings.ts';
import { type AgentReport, agentReportSchema } from '../../shared/contract/agent-report.ts';
import { storeKeys } from '../../shared/contract/store-layout.ts';
import { computeDesiredState } from '../../shared/desired-state.ts';
import type { Layout } from '../../shared/layout.ts';
import type { ResourceGroup } from '../../shared/schema/resource-group.ts';
import type { VmDocument } from '../../shared/schema/document.ts';
import { documentOf, example } from './fixtures.ts';
import { freePort, TEST_CREDENTIALS } from './servers.ts';
import { signedForTest, TEST_TRUSTED_KEYS } from './signing.ts';
import { vmInFolder } from './vm-in-a-folder.ts';

export interface TlsGateway {
  readonly root: string;
  readonly layout: Layout;
  /** The loopback address nginx listens on (ports 80 and 443). */
  readonly address: string;
  /** The running agent (a new one after `restartAgent`). */
  readonly agent: Agent;
  /** A new agent process, as after a restart: the same folders, nothing kept in memory. */
  restartAgent(): Agent;
  /** Stores a document for `hosts` (each a forceSSL virtual host) and returns its generation. */
  publish(hosts: readonly string[]): Promise<number>;
  document(hosts: readonly string[]): VmDocument;
  report(): Promise<AgentReport>;
  stop(): Promise<void>;
}

/** A distinct loopback address per test file and run, so files running side by side never share port 80. */
export function loopbackAddress(slot: number): string {
  return `127.${100 + (slot % 100)}.${process.pid % 250}.${1 + (Math.floor(Date.now() / 1000) % 250)}`;
}

export async function startTlsGateway(options: { address: string; acme?: AcmeSettings; agent?: Partial<AgentOptions> }): Promise<TlsGateway> {
  const root = mkdtempSync(join(tmpdir(), 'ringmaster-tls-'));
  // The folder stands for "/", which anyone may pass through: nginx's workers (nobody) read the
  // challenge webroot below it. mkdtemp makes it 0700.
  chmodSync(root, 0o755);
  const folder = vmInFolder(root, { nginx: true });
  const { layout } = folder;
  const haproxyPort = await freePort();
  const s3 = await startEmbeddedS3({ directory: join(root, 's3'), port: await freePort(), bucket: 'ringmaster', principal: fullAccess(TEST_CREDENTIALS.accessKeyId, TEST_CREDENTIALS.secretAccessKey) });
  const store = new S3Store({ bucket: 'ringmaster', endpoint: s3.endpoint, credentials: TEST_CREDENTIALS });
  const client = new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: TEST_CREDENTIALS });
  let generation = 0;

  const base = example('scenario-1-http');
  const resourceGroup = (hosts: readonly string[]): ResourceGroup => ({
    ...base,
    vms: base.vms.map((vm) => (vm.name === 'web01' ? { ...vm, publicAddresses: [options.address] } : vm)),
    frontends: {
      myapp: {
        ...base.frontends.myapp!,
        bind: undefined,
        binds: [`127.0.0.1:${haproxyPort}`],
        virtualHosts: Object.fromEntries(hosts.map((host) => [host, { forceSSL: true, locations: { '/': { proxyPass: `http://127.0.0.1:${haproxyPort}` } } }])),
      },
    },
  });
  const document = (hosts: readonly string[]) => {
    const state = computeDesiredState(resourceGroup(hosts), { layout, ...(options.acme ? { acme: options.acme } : {}) });
    return documentOf(state.documents, 'web01');
  };
  const newAgent = () => new Agent({ client, identity: { bucket: 'ringmaster', resourceGroup: 'demo', vm: 'web01' }, trustedKeys: TEST_TRUSTED_KEYS, root: '/', layout, stateDir: join(root, 'agent-state'), services: folder.services, ...options.agent });
  let agent = newAgent();
  return {
    root,
    layout,
    address: options.address,
    get agent() {
      return agent;
    },
    restartAgent() {
      agent = newAgent();
      return agent;
    },
    document,
    async publish(hosts) {
      await store.put(storeKeys.desired('demo', 'web01'), JSON.stringify(signedForTest(document(hosts), ++generation)));
      return generation;
    },
    async report() {
      const stored = await store.get(storeKeys.report('demo', 'web01'));
      if (!stored) throw new Error('web01 has not reported yet');
      return agentReportSchema.parse(JSON.parse(stored.body));
    },
    async stop() {
      try {
        await folder.stopNginx();
        await folder.stopHaproxy();
      } finally {
        await s3.close();
        rmSync(root, { recursive: true, force: true });
      }
    },
  };
}

/** Whether a TLS request to `address`:443 for `host` accepts nginx's certificate as issued by `ca` alone (the chain up to that root). */
export function chainsTo(address: string, host: string, ca: string): Promise<{ authorized: boolean; error?: string }> {
  return new Promise((resolve) => {
    const socket = connect({ host: address, port: 443, servername: host, ca, rejectUnauthorized: false }, () => {
      const result = { authorized: socket.authorized, ...(socket.authorizationError ? { error: String(socket.authorizationError) } : {}) };
      socket.end();
      resolve(result);
    });
    socket.on('error', (error) => resolve({ authorized: false, error: error.message }));
  });
}

/** The certificate nginx presents for `host` (SNI) at `address`:443, whoever issued it. */
export function servedCertificate(address: string, host: string): Promise<PeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: address, port: 443, servername: host, rejectUnauthorized: false }, () => {
      const certificate = socket.getPeerCertificate(true);
      socket.end();
      resolve(certificate);
    });
    socket.on('error', reject);
  });
}
