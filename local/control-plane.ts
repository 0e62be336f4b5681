/**
 * The whole control plane on one machine, with the same handlers as the cloud: the HTTP API,
 * the durable node:sqlite queue with a dead-letter table, the reconciler fed by a local event
 * source, and an embedded S3 endpoint (s3rver) that agents and `aws s3api` use as they would
 * use S3. Everything listens on 127.0.0.1; all data lives under one folder.
 */
import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { startEmbeddedS3 } from '../adapters/embedded-s3.ts';
import { agentCredentials, agentMay, agentOfAccessKey, agentSecretFor } from '../shared/agent-identity.ts';
import { agentRequestAuthorizer } from './agent-authorizer.ts';
import { DEFAULT_API_PORT, DEFAULT_S3_PORT } from './ports.ts';
import type { VmLayouts } from '../shared/layout.ts';
import { type AcmeSettings, DEFAULT_ACME } from '../shared/certificates/acme-settings.ts';
import { S3Store } from '../adapters/s3-store.ts';
import { SqliteQueue } from '../adapters/sqlite-queue.ts';
import { createClusterHandlers } from '../functions/cluster/handler.ts';
import { createDeadLetterHandlers } from '../functions/dead-letters/handler.ts';
import { createIngestHandlers } from '../functions/ingest/handler.ts';
import { createReconcilerHandler, type ReconcilerDependencies } from '../functions/reconciler/handler.ts';
import { createRefreshHandler } from '../functions/refresh/handler.ts';
import { wholeApi } from '../functions/shared/api.ts';
import { bearerAuthorizer } from '../functions/shared/http.ts';
import { createLogger } from '../functions/shared/logger.ts';
import { clusterKeyLookup } from '../functions/shared/state-store.ts';
import { createStatusHandlers } from '../functions/status/handler.ts';
import { loadOrCreateCredentials, type LocalCredentials } from './credentials.ts';
import { localSigningCredentials, localTrustedRoots } from './root-keys.ts';
import { type DocumentSigner, signingEpoch } from '../shared/contract/document-envelope.ts';
import { delegationStale, documentSignerOf } from '../shared/contract/signing-credentials.ts';
import { createApiServer, servedToThisMachine } from './http-server.ts';
import { NudgeHub, serveNudgeStream } from './nudges.ts';
import { nudgeFanOut } from '../functions/shared/nudge-fan-out.ts';
import { MqttNudgePublisher } from '../adapters/mqtt-nudge-publisher.ts';
import { buildPageAssets } from '../page/assets.ts';
import { startWorker } from './worker.ts';

export const LOCAL_BUCKET = 'ringmaster';

export const LOCAL_REGION = 'us-east-1';

/** Receives of an event before it is given up: the reconciler then dead-letters it with the reason of its last failure. */
const MAX_RECEIVES = 10;

export interface LocalOptions {
  readonly dataDir: string;
  readonly apiPort?: number;
  readonly s3Port?: number;
  /** The URL clusters reach the API at, when it is not this machine's loopback (a tunnel, a proxy). */
  readonly publicUrl?: string;
  readonly onReconciled?: ReconcilerDependencies['onReconciled'];
  /** Where documents put files on the VMs (default: a production VM's); benchmarks run VMs in a folder. */
  readonly layout?: VmLayouts;
  /** How often the signing credentials are renewed if due and every group's documents checked for re-signing (default hourly; also once at start). */
  readonly refreshIntervalMs?: number;
  /** Generations of each VM's document kept in the audit trail (default 10). */
  readonly historyDepth?: number;
  /** The control plane's clock (tests move it to see documents signed again or expire). */
  readonly clock?: () => Date;
  /** An MQTT broker to publish nudges on too (each VM's own topic), with the control plane's account there. */
  readonly mqtt?: { readonly url: string; readonly username?: string; readonly password?: string };
  /** Where VMs order their TLS certificates (default: Let's Encrypt production). */
  readonly acme?: AcmeSettings;
}

export interface ConnectionInfo {
  readonly apiUrl: string;
  readonly s3Endpoint: string;
  readonly bucket: string;
  readonly region: string;
  readonly apiToken: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly dataDir: string;
  /** The root keys agents must trust (base64 SPKI), at start: every document's signing key is delegated by one. */
  readonly trustedRoots: readonly string[];
  /** Where VMs order their TLS certificates. */
  readonly acme?: AcmeSettings;
}

export interface LocalControlPlane {
  readonly info: ConnectionInfo;
  readonly queue: SqliteQueue;
  readonly store: S3Store;
  /** Nudges sent to agents (documents written), and who listens. */
  readonly nudges: NudgeHub;
  /** Requests the embedded S3 endpoint served, by method. */
  readonly s3Requests: Readonly<Record<string, number>>;
  /** Queues a refresh of every group now (as the timer does), so stale signatures are renewed. */
  refresh(): Promise<{ refreshed: number }>;
  /** Renews the signing credentials now if due (a day old, or roots added or retired), as the timer does. */
  renewSigning(): Promise<void>;
  stop(): Promise<void>;
}

export async function startLocalControlPlane(options: LocalOptions): Promise<LocalControlPlane> {
  mkdirSync(join(options.dataDir, 's3'), { recursive: true, mode: 0o700 });
  const credentials: LocalCredentials = loadOrCreateCredentials(join(options.dataDir, 'credentials.json'));
  const s3 = await startEmbeddedS3({
    directory: join(options.dataDir, 's3'),
    port: options.s3Port ?? DEFAULT_S3_PORT,
    bucket: LOCAL_BUCKET,
    principal: (accessKeyId) => {
      if (accessKeyId === credentials.accessKeyId) return { secretAccessKey: credentials.secretAccessKey, may: () => true };
      const agent = agentOfAccessKey(accessKeyId);
      if (!agent) return undefined;
      const { secretAccessKey } = agentCredentials(credentials.masterKey, agent.resourceGroup, agent.vm);
      return { secretAccessKey, may: (method, key) => agentMay(agent.resourceGroup, agent.vm, method, key) };
    },
  });
  const store = new S3Store({
    bucket: LOCAL_BUCKET,
    endpoint: s3.endpoint,
    region: LOCAL_REGION,
    credentials: { accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey },
  });
  const queue = new SqliteQueue({ path: join(options.dataDir, 'queue.db'), visibilityTimeoutSeconds: 120, maxReceives: MAX_RECEIVES, recoverInFlight: true });
  const logger = createLogger('ringmaster-local');

  let apiUrl = '';
  const clusterKey = clusterKeyLookup(store);
  const api = wholeApi(
    {
      ...createIngestHandlers({ queue, logger }),
      ...createClusterHandlers({ queue, store, clusterKey, logger }),
      ...createStatusHandlers({ store, logger, serverUrl: () => apiUrl, queued: () => queue.depth(), page: await buildPageAssets() }),
      ...createDeadLetterHandlers({ queue, logger }),
    },
    {
      authorize: bearerAuthorizer(credentials.apiToken),
      authorizePage: (event) => servedToThisMachine(event, apiUrl),
      authorizeAgent: agentRequestAuthorizer(credentials.masterKey),
      logger,
    },
  );
  const hub = new NudgeHub();
  const server = createApiServer(api, (error) => logger.error('request failed', error as Error), (request, response, url) =>
    serveNudgeStream(request, response, url, {
      hub,
      // Only the key of the VM the stream is for (see shared/agent-identity.ts).
      secretOf: (accessKeyId, resourceGroup, vm) => agentSecretFor(credentials.masterKey, accessKeyId, resourceGroup, vm),
    }),
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.apiPort ?? DEFAULT_API_PORT, '127.0.0.1', () => resolve());
  });
  apiUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const publicUrl = (options.publicUrl ?? apiUrl).replace(/\/$/, '');

  const mqtt = options.mqtt ? new MqttNudgePublisher({ ...options.mqtt, onError: (error) => logger.warn('MQTT broker', { error: error.message }) }) : undefined;
  // The renewer's part, locally: at start and with every refresh; the reconciler asks for the signer at each run that writes.
  const now = options.clock ?? (() => new Date());
  let signing = await localSigningCredentials(options.dataDir, now());
  let signer: DocumentSigner = documentSignerOf(signing);
  let refreshForEpoch: ((occasion: string) => Promise<unknown>) | undefined;
  let renewing: Promise<void> | undefined;
  const renew = async () => {
    const renewed = await localSigningCredentials(options.dataDir, now());
    if (renewed.delegation.signature === signing.delegation.signature) return;
    const before = signingEpoch(signer);
    [signing, signer] = [renewed, documentSignerOf(renewed)];
    // A root added or retired: every group's documents are signed again now (a share per run), not within the hour.
    const epoch = signingEpoch(signer);
    if (epoch !== before) await refreshForEpoch?.(`epoch-${epoch}`);
  };
  // One renewal at a time (the timer and a reconcile may both find the delegation a day old).
  const renewSigning = () => (renewing ??= renew().finally(() => (renewing = undefined)));
  const reconciler = createReconcilerHandler({
    // Every document written is announced to its VM's agent (the push channels).
    store,
    nudges: nudgeFanOut(mqtt ? [hub, mqtt] : [hub], (error) => logger.warn('nudge not published', { error: (error as Error).message })),
    masterKey: credentials.masterKey,
    signer: async () => {
      // A day-old delegation is renewed before it signs anything more (a quiet machine's timer may lag).
      if (delegationStale(signing, now())) await renewSigning();
      return signer;
    },
    ...(options.clock ? { now: options.clock } : {}),
    logger,
    apiUrl: publicUrl,
    // The local event source hands out queue receipts as SQS message ids.
    deadLetter: (message, reason) => queue.deadLetter({ ...message, receipt: message.messageId, receiveCount: 0, sentAt: 0 }, reason),
    maxReceives: MAX_RECEIVES,
    ...(options.historyDepth ? { historyDepth: options.historyDepth } : {}),
    ...(options.onReconciled ? { onReconciled: options.onReconciled } : {}),
    ...(options.layout ? { layout: options.layout } : {}),
    ...(options.acme ? { acme: options.acme } : {}),
  });
  // Documents hold for a week and are signed again after a day: every group is nudged now and then.
  const refresh = createRefreshHandler({ store, queue, logger, ...(options.clock ? { now: options.clock } : {}) });
  refreshForEpoch = refresh;
  const refreshNow = () =>
    void renewSigning()
      .catch((error: unknown) => logger.error('renewing the signing credentials failed', error as Error))
      .then(() => refresh())
      .catch((error: unknown) => logger.error('refresh failed', error as Error));
  const refreshTimer = setInterval(refreshNow, options.refreshIntervalMs ?? 3600 * 1000);
  refreshTimer.unref();
  refreshNow();
  // Bigger batches than SQS's 10: a group's waiting events are folded in one reconcile.
  const worker = startWorker({ queue, reconcile: reconciler, batchSize: 50, concurrency: 4, batchWindowMs: 20, onError: (error) => logger.error('local event source failed', error) });

  return {
    info: {
      apiUrl,
      s3Endpoint: s3.endpoint,
      bucket: LOCAL_BUCKET,
      region: LOCAL_REGION,
      apiToken: credentials.apiToken,
      accessKeyId: credentials.accessKeyId,
      secretAccessKey: credentials.secretAccessKey,
      dataDir: options.dataDir,
      trustedRoots: localTrustedRoots(options.dataDir),
      acme: options.acme ?? DEFAULT_ACME,
    },
    queue,
    store,
    nudges: hub,
    s3Requests: s3.requests,
    refresh: () => refresh(),
    renewSigning,
    stop: async () => {
      clearInterval(refreshTimer);
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      await worker.stop();
      await mqtt?.close();
      queue.close();
      await s3.close();
    },
  };
}
