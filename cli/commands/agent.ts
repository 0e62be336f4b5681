/**
 * `ringmaster agent`: the pull agent on a VM. Configuration by flags, else the environment
 * (RINGMASTER_* and the usual AWS_* variables for credentials and region); all of it checked
 * before anything starts.
 */
import { join } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { Agent, type LogLevel } from '../../agent/agent.ts';
import { onDisk } from '../../agent/files.ts';
import { LazyServerTasks } from '../../agent/kubernetes/lazy-server-tasks.ts';
import { listenForNudges } from '../../agent/nudge-listener.ts';
import { listenForMqttNudges } from '../../agent/mqtt-nudge-listener.ts';
import { createLogger } from '../../functions/shared/logger.ts';
import { trustedRoot } from '../../shared/contract/document-signing.ts';
import { DEFAULT_PREREQUISITE_PATHS } from '../../shared/prerequisites.ts';
import { fieldErrors } from '../../shared/schema/errors.ts';
import { dnsLabel } from '../../shared/schema/primitives.ts';
import { InputError } from '../input.ts';

export interface AgentFlags {
  readonly resourceGroup?: string;
  readonly vm?: string;
  readonly endpoint?: string;
  readonly bucket?: string;
  readonly region?: string;
  readonly root: string;
  readonly stateDir: string;
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
  kubeconfig: '--kubeconfig (RINGMASTER_KUBECONFIG)',
  trustedKeys: '--trust-key (RINGMASTER_TRUSTED_KEYS)',
  pushUrl: '--push-url (RINGMASTER_PUSH_URL)',
  pushMqttUrl: '--push-mqtt-url (RINGMASTER_PUSH_MQTT_URL)',
  mqttCert: '--mqtt-cert',
  mqttKey: '--mqtt-key',
  mqttCa: '--mqtt-ca',
};

/** Where k3s writes the cluster admin's kubeconfig on the server. */
export const K3S_ADMIN_KUBECONFIG = '/etc/rancher/k3s/k3s.yaml';

export async function runAgent(flags: AgentFlags): Promise<number> {
  const env = process.env;
  const parsed = agentConfigSchema.safeParse({
    resourceGroup: flags.resourceGroup ?? env.RINGMASTER_RESOURCE_GROUP,
    vm: flags.vm ?? env.RINGMASTER_VM,
    endpoint: flags.endpoint ?? env.RINGMASTER_S3_ENDPOINT,
    bucket: flags.bucket ?? env.RINGMASTER_BUCKET,
    region: flags.region ?? env.AWS_REGION ?? 'us-east-1',
    root: flags.root,
    stateDir: flags.stateDir,
    once: flags.once ?? false,
    kubeconfig: flags.kubeconfig ?? env.RINGMASTER_KUBECONFIG ?? K3S_ADMIN_KUBECONFIG,
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
  // Acts only when the document has a `kubernetes` section (the k3s server); idle elsewhere.
  const kubernetes = new LazyServerTasks({
    kubeconfigPath: config.kubeconfig,
    onDisk: (path) => onDisk(config.root, path),
    resourceGroup: config.resourceGroup,
    log,
    homes: { stateFile: join(config.stateDir, 'home-kubeconfigs.json'), toolPaths: DEFAULT_PREREQUISITE_PATHS },
  });
  const client = new S3Client({ region: config.region, ...(config.endpoint ? { endpoint: config.endpoint, forcePathStyle: true } : {}) });
  const { pushUrl, pushMqttUrl } = config;
  const identity = { resourceGroup: config.resourceGroup, vm: config.vm };
  type Listen = NonNullable<ConstructorParameters<typeof Agent>[0]['push']>['listen'];
  const push: Listen | undefined = pushMqttUrl
    ? (handlers, signal) =>
        listenForMqttNudges(
          {
            url: pushMqttUrl,
            ...identity,
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
      ? (handlers, signal) => listenForNudges({ url: pushUrl, ...identity, region: config.region, credentials: client.config.credentials, log, ...handlers }, signal)
      : undefined;
  const agent = new Agent({
    client,
    identity: { bucket: config.bucket, resourceGroup: config.resourceGroup, vm: config.vm },
    trustedKeys: config.trustedKeys,
    root: config.root,
    stateDir: config.stateDir,
    prerequisites: DEFAULT_PREREQUISITE_PATHS,
    log,
    kubernetes,
    // Nudged at once when its document changes (MQTT, else the control plane's stream); polling goes on, slower, as the safety net.
    ...(push ? { push: { listen: push } } : {}),
  });
  if (config.once) {
    const outcome = await agent.poll().finally(() => kubernetes.stop());
    // A first boot run once still gets its certificates (or says why not): one round after the apply.
    const certificates = outcome.kind === 'failed' ? [] : await agent.certificateRound();
    const hosts = certificates.map(({ host, state, error }) => ({ host, state, ...(error ? { error } : {}) }));
    process.stdout.write(`${JSON.stringify({ outcome: outcome.kind, generation: outcome.generation, error: outcome.error, ...(hosts.length > 0 ? { certificates: hosts } : {}) })}\n`);
    return outcome.kind === 'failed' ? 1 : 0;
  }
  const stop = new AbortController();
  process.once('SIGINT', () => stop.abort());
  process.once('SIGTERM', () => stop.abort());
  await agent.run(stop.signal);
  return 0;
}
