/**
 * `ringmaster agent`: the pull agent on a VM. Configuration by flags, else the environment
 * (RINGMASTER_* and the usual AWS_* variables for credentials and region); all of it checked
 * before anything starts.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { Agent, type LogLevel } from '../../agent/agent.ts';
import { onDisk } from '../../agent/files.ts';
import { K3S_ADMIN_KUBECONFIG } from '../../agent/kubernetes/k3s-files.ts';
import { LazyServerTasks } from '../../agent/kubernetes/lazy-server-tasks.ts';
import { listenForNudges } from '../../agent/nudge-listener.ts';
import { listenForMqttNudges } from '../../agent/mqtt-nudge-listener.ts';
import { createLogger } from '../../functions/shared/logger.ts';
import { trustedRoot } from '../../shared/contract/document-signing.ts';
import { DEFAULT_PREREQUISITE_PATHS } from '../../shared/prerequisites.ts';
import { fieldErrors } from '../../shared/schema/errors.ts';
import { dnsLabel } from '../../shared/schema/primitives.ts';
import { InputError } from '../input.ts';
import { SandboxServices } from '../../agent/service-manager/sandbox.ts';
import { SERVICE_MANAGER_KINDS } from '../../agent/service-manager/service-manager.ts';

/** Where the agent keeps its last applied document on a VM. */
const DEFAULT_STATE_DIR = '/var/lib/ringmaster-agent';

export interface AgentFlags {
  readonly resourceGroup?: string;
  readonly vm?: string;
  readonly endpoint?: string;
  readonly bucket?: string;
  readonly region?: string;
  readonly root: string;
  readonly stateDir?: string;
  readonly serviceManager?: string;
  readonly once?: boolean;
  readonly kubeconfig?: string;
  readonly trustKey?: readonly string[];
  readonly pushUrl?: string;
  readonly pushMqttUrl?: string;
  readonly mqttCert?: string;
  readonly mqttKey?: string;
  readonly mqttCa?: string;
}

/** One or more base64 root public keys (comma-separated in the environment). */
const trustedKeysSchema = z
  .array(z.string())
  .min(1, 'name the root public key(s) documents must be signed under (`ringmaster agent-credentials` prints them)')
  .transform((texts, ctx) =>
    texts.flatMap((text) => {
      try {
        return [trustedRoot(text)];
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: `"${text.slice(0, 20)}…" ${(error as Error).message}` });
        return [];
      }
    }),
  );

const agentConfigSchema = z.strictObject({
  resourceGroup: dnsLabel,
  vm: dnsLabel,
  endpoint: z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }).optional(),
  bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be an S3 bucket name'),
  region: z.string().regex(/^[a-z0-9-]{2,32}$/, 'must be a region name such as us-east-1'),
  root: z.string().regex(/^\//, 'must be an absolute path'),
  stateDir: z.string().regex(/^\//, 'must be an absolute path'),
  once: z.boolean(),
  serviceManager: z.enum(SERVICE_MANAGER_KINDS, { error: `must be one of ${SERVICE_MANAGER_KINDS.join(', ')}` }),
  kubeconfig: z.string().regex(/^\//, 'must be an absolute path'),
  trustedKeys: trustedKeysSchema,
  pushUrl: z.url({ protocol: /^https?$/, error: 'must be the http:// or https:// URL of the control plane' }).optional(),
  pushMqttUrl: z.url({ protocol: /^(mqtts?|wss?)$/, error: 'must be an mqtt://, mqtts://, ws:// or wss:// URL of a broker' }).optional(),
  mqttCert: z.string().regex(/^\//, 'must be an absolute path').optional(),
  mqttKey: z.string().regex(/^\//, 'must be an absolute path').optional(),
  mqttCa: z.string().regex(/^\//, 'must be an absolute path').optional(),
});

const FLAG: Record<string, string> = {
  resourceGroup: '--resource-group (RINGMASTER_RESOURCE_GROUP)',
  vm: '--vm (RINGMASTER_VM)',
  endpoint: '--endpoint (RINGMASTER_S3_ENDPOINT)',
  bucket: '--bucket (RINGMASTER_BUCKET)',
  region: '--region (AWS_REGION)',
  root: '--root',
  stateDir: '--state-dir',
  serviceManager: '--service-manager',
  kubeconfig: '--kubeconfig (RINGMASTER_KUBECONFIG)',
  trustedKeys: '--trust-key (RINGMASTER_TRUSTED_KEYS)',
  pushUrl: '--push-url (RINGMASTER_PUSH_URL)',
  pushMqttUrl: '--push-mqtt-url (RINGMASTER_PUSH_MQTT_URL)',
  mqttCert: '--mqtt-cert',
  mqttKey: '--mqtt-key',
  mqttCa: '--mqtt-ca',
};

export { K3S_ADMIN_KUBECONFIG };

/**
 * What stands in for k3s' API on a sandboxed VM, as its report names it (`<cluster> at <URL>`):
 * an admin kubeconfig present at the start, or nothing (the Kubernetes tasks then do not run,
 * as on any VM where k3s is not).
 */
async function kubernetesStandIn(kubeconfigPath: string): Promise<string | undefined> {
  if (!existsSync(kubeconfigPath)) return undefined;
  // Loaded only here: a sandboxed server with a stand-in is the only sandboxed VM that talks to a cluster.
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kubeConfig = new KubeConfig();
  try {
    kubeConfig.loadFromFile(kubeconfigPath);
  } catch (error) {
    throw new InputError('ringmaster agent', [`${kubeconfigPath}: ${(error as Error).message.split('\n')[0]}`]);
  }
  const cluster = kubeConfig.getCurrentCluster();
  return cluster ? `${cluster.name} at ${cluster.server}` : undefined;
}

export async function runAgent(flags: AgentFlags): Promise<number> {
  const env = process.env;
  const parsed = agentConfigSchema.safeParse({
    resourceGroup: flags.resourceGroup ?? env.RINGMASTER_RESOURCE_GROUP,
    vm: flags.vm ?? env.RINGMASTER_VM,
    endpoint: flags.endpoint ?? env.RINGMASTER_S3_ENDPOINT,
    bucket: flags.bucket ?? env.RINGMASTER_BUCKET,
    region: flags.region ?? env.AWS_REGION ?? 'us-east-1',
    root: flags.root,
    // A sandboxed VM keeps everything in its folder, the agent's state too.
    stateDir: flags.stateDir ?? (flags.serviceManager === 'sandbox' ? join(flags.root, DEFAULT_STATE_DIR) : DEFAULT_STATE_DIR),
    serviceManager: flags.serviceManager ?? 'systemd',
    once: flags.once ?? false,
    // A sandboxed server's k3s.yaml is where k3s would write it, under its folder.
    kubeconfig: flags.kubeconfig ?? env.RINGMASTER_KUBECONFIG ?? (flags.serviceManager === 'sandbox' ? join(flags.root, K3S_ADMIN_KUBECONFIG) : K3S_ADMIN_KUBECONFIG),
    trustedKeys: flags.trustKey?.length ? flags.trustKey : (env.RINGMASTER_TRUSTED_KEYS ?? '').split(',').filter((text) => text.trim() !== ''),
    pushUrl: flags.pushUrl ?? env.RINGMASTER_PUSH_URL,
    pushMqttUrl: flags.pushMqttUrl ?? env.RINGMASTER_PUSH_MQTT_URL,
    mqttCert: flags.mqttCert,
    mqttKey: flags.mqttKey,
    mqttCa: flags.mqttCa,
  });
  if (!parsed.success) throw new InputError('ringmaster agent', fieldErrors(parsed.error).map((e) => `${FLAG[e.field] ?? e.field}: ${e.reason}`));
  const config = parsed.data;
  const logger = createLogger('ringmaster-agent');
  const log = (message: string, fields?: Record<string, unknown>, level: LogLevel = 'info') => logger[level](message, fields ?? {});
  const client = new S3Client({ region: config.region, ...(config.endpoint ? { endpoint: config.endpoint, forcePathStyle: true } : {}) });
  const identity = { bucket: config.bucket, resourceGroup: config.resourceGroup, vm: config.vm };
  // A sandboxed VM's documents are rendered for its folder (`serve --sandbox-root`): files are
  // written where they say (under the root, the only place its roles may write), and the
  // sandbox runs the daemons. k3s does not run there; when a Kubernetes API stands in for it
  // (its admin kubeconfig where k3s writes it, under the root: `ringmaster demo` puts a test
  // kube-apiserver's there), the server's Kubernetes tasks run against that, as on a VM.
  const sandboxRoot = config.serviceManager === 'sandbox' ? resolve(config.root) : undefined;
  const standIn = sandboxRoot === undefined ? undefined : await kubernetesStandIn(config.kubeconfig);
  const sandbox = sandboxRoot === undefined ? undefined : new SandboxServices({ root: sandboxRoot, ...(standIn ? { kubernetesApi: standIn } : {}) });
  // A sandboxed VM's folder is its "/" (0755 like a VM's): made before any document's private folder below it.
  if (sandboxRoot !== undefined) mkdirSync(sandboxRoot, { recursive: true, mode: 0o755 });
  // Acts only when the document has a `kubernetes` section (the k3s server); idle elsewhere.
  const kubernetes =
    sandboxRoot !== undefined && !standIn
      ? undefined
      : new LazyServerTasks({
          kubeconfigPath: config.kubeconfig,
          // A sandbox's documents name paths under its root already; k3s' own files (its CA) are under it too.
          onDisk: sandboxRoot === undefined ? (path) => onDisk(config.root, path) : (path) => (path.startsWith(`${sandboxRoot}/`) ? path : onDisk(sandboxRoot, path)),
          resourceGroup: config.resourceGroup,
          log,
          // Users' homes are this machine's, not the sandbox's: a sandboxed server keeps no kubeconfig there.
          ...(sandboxRoot === undefined ? { homes: { stateFile: join(config.stateDir, 'home-kubeconfigs.json'), toolPaths: DEFAULT_PREREQUISITE_PATHS } } : {}),
        });
  const { pushUrl, pushMqttUrl } = config;
  const vmName = { resourceGroup: config.resourceGroup, vm: config.vm };
  type Listen = NonNullable<ConstructorParameters<typeof Agent>[0]['push']>['listen'];
  const push: Listen | undefined = pushMqttUrl
    ? (handlers, signal) =>
        listenForMqttNudges(
          {
            url: pushMqttUrl,
            ...vmName,
            ...(env.RINGMASTER_MQTT_PASSWORD ? { password: env.RINGMASTER_MQTT_PASSWORD } : {}),
            ...(config.mqttCert ? { certFile: config.mqttCert } : {}),
            ...(config.mqttKey ? { keyFile: config.mqttKey } : {}),
            ...(config.mqttCa ? { caFile: config.mqttCa } : {}),
            log,
            ...handlers,
          },
          signal,
        )
    : pushUrl
      ? (handlers, signal) => listenForNudges({ url: pushUrl, ...vmName, region: config.region, credentials: client.config.credentials, log, ...handlers }, signal)
      : undefined;
  const agent = new Agent({
    client,
    identity,
    trustedKeys: config.trustedKeys,
    stateDir: config.stateDir,
    log,
    // A sandboxed VM is a folder on this machine: no CA can reach it to validate an order.
    ...(sandbox ? { root: '/', layout: sandbox.layout, services: sandbox, orderCertificates: false, ...(kubernetes ? { kubernetes } : {}) } : { root: config.root, prerequisites: DEFAULT_PREREQUISITE_PATHS, kubernetes: kubernetes! }),
    // Nudged at once when its document changes (MQTT, else the control plane's stream); polling goes on, slower, as the safety net.
    ...(push ? { push: { listen: push } } : {}),
  });
  const stopAll = async () => {
    await kubernetes?.stop();
    await sandbox?.stop();
  };
  if (config.once) {
    // A sandbox's daemons live as long as its agent: a single poll (and its certificate round) leaves nothing running.
    const once = async () => {
      const outcome = await agent.poll();
      await kubernetes?.stop();
      // A first boot run once still gets its certificates (or says why not): one round after the apply.
      const certificates = outcome.kind === 'failed' || sandbox ? [] : await agent.certificateRound();
      return { outcome, hosts: certificates.map(({ host, state, error }) => ({ host, state, ...(error ? { error } : {}) })) };
    };
    const { outcome, hosts } = await once().finally(stopAll);
    process.stdout.write(`${JSON.stringify({ outcome: outcome.kind, generation: outcome.generation, error: outcome.error, ...(hosts.length > 0 ? { certificates: hosts } : {}) })}\n`);
    return outcome.kind === 'failed' ? 1 : 0;
  }
  const stop = new AbortController();
  process.once('SIGINT', () => stop.abort());
  process.once('SIGTERM', () => stop.abort());
  await agent.run(stop.signal);
  await sandbox?.stop();
  return 0;
}
