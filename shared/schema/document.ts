/**
 * The per-VM desired-state document: the contract between the control plane and the pull
 * agent. Everything a VM must have is here, with real paths and the commands that check
 * and load it; the structured sections carry what the agent changes live.
 */
import { z } from 'zod';
import { KUBERNETES_ROLES } from '../roles.ts';
import { SERVICE_NAMES } from '../services.ts';
import { acmeSettingsSchema } from '../certificates/acme-settings.ts';
import { caHash, hostName } from './primitives.ts';

export const DOCUMENT_API_VERSION = 'ringmaster.io/v1' as const;

const absolutePath = z.string().regex(/^\/[^\0]*$/, 'must be an absolute path').max(4096);
const fileMode = z.string().regex(/^0[0-7]{3}$/, 'must be an octal mode such as "0644"');

export const fileSpecSchema = z.strictObject({
  path: absolutePath,
  mode: fileMode,
  owner: z.string().default('root'),
  group: z.string().default('root'),
  content: z.string(),
  /** `sha256:<hex>` of `content`: the document hash covers the file through it. */
  sha256: z.string().regex(/^sha256:[0-9a-f]{64}$/),
  /** Never logged, never copied into reports or status. */
  secret: z.boolean().default(false),
});

export const directorySpecSchema = z.strictObject({
  path: absolutePath,
  mode: fileMode,
  owner: z.string().default('root'),
  group: z.string().default('root'),
});

export const serviceSpecSchema = z.strictObject({
  /** The service the files belong to. How it is validated and reloaded is the agent's own (../services.ts): a document sends no command. */
  name: z.enum(SERVICE_NAMES),
  /** Files whose change means this service must be (re)loaded. */
  files: z.array(absolutePath),
});

export const slotStateSchema = z.enum(['ready', 'drain', 'maint']);

export const haproxyServerSchema = z.strictObject({
  server: z.string(),
  /** Absent for a free slot (state `maint`). */
  address: z.string().optional(),
  port: z.number().int().min(1).max(65535).optional(),
  state: slotStateSchema,
  /** The pod (or agent) the server stands for, for status and logs. */
  target: z.string().optional(),
});

/** An agent's load balancer (servicelb): one per agent, shared by every backend at its own port. */
export const loadBalancerSchema = z.strictObject({
  /** The server name in every backend that has an `lbServicePort`. */
  server: z.string(),
  address: z.string(),
  target: z.string(),
});

export const haproxyBackendSchema = z.strictObject({
  name: z.string(),
  frontend: z.string(),
  /** Options every pod server line of this backend carries; runtime-added servers need them too. */
  serverOptions: z.string(),
  /** Pod slots: `maxExpectedPods` of them, more while more pods exist. */
  slots: z.array(haproxyServerSchema),
  /** The backend's servers at the agents' load balancers use this port (`lbServicePort`)... */
  loadBalancerPort: z.number().int().min(1).max(65535).optional(),
  /** ...and are `backup` servers when the backend also has pod slots. */
  loadBalancersAreBackup: z.boolean().optional(),
});

export const haproxyRuntimeSchema = z.strictObject({
  socket: absolutePath,
  serverStateFile: absolutePath,
  configPath: absolutePath,
  /**
   * Hash of the config with the slot server lines left out. Equal hashes mean the change is
   * endpoints only: the runtime API applies it and haproxy is not reloaded.
   */
  structureHash: z.string(),
  loadBalancers: z.array(loadBalancerSchema),
  backends: z.array(haproxyBackendSchema),
});

export const kubernetesTasksSchema = z.strictObject({
  /** Users with `sudo-srv`: each gets a ServiceAccount, a binding and expiring kubeconfigs. */
  accessUsers: z.array(z.string()),
  /** Portal requests (`kubeconfig.requested`) the agent answers by issuing and delivering a kubeconfig. */
  kubeconfigRequests: z.array(z.strictObject({ user: z.string(), requestId: z.string() })).default([]),
  kubeconfigTtlHours: z.number(),
  /** The API server URL issued kubeconfigs carry: reachable from outside the VM. */
  apiServerUrl: z.string(),
  /** Services a frontend names: only these are forwarded to the control plane. */
  watchedServices: z.array(z.strictObject({ namespace: z.string(), service: z.string() })),
  /** Agents to cordon and drain now (at most one); nodes we cordoned earlier and not listed are uncordoned. */
  drainNodes: z.array(z.string()),
  drainTimeoutSeconds: z.number(),
  /** Where the server's agent calls the control plane (endpoint changes, issued kubeconfigs; routes from the contract) and the key it signs with. */
  /** The server CA's hash the control plane pinned; the agent reports k3s' CA while this is unset. */
  clusterCaHash: caHash.optional(),
  controlPlane: z.strictObject({ apiUrl: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }), keyFile: absolutePath }).optional(),
});

/**
 * A host nginx serves over TLS (a `forceSSL` virtual host, the dashboard). The document only
 * says which hosts and where nginx reads their files: the agent makes them, a self-signed
 * placeholder before nginx is first validated, then the certificate ACME issues. Never content:
 * a private key is made on the VM and never leaves it.
 */
export const certificateSpecSchema = z.strictObject({
  host: hostName,
  /** The certificate and its chain (nginx `ssl_certificate`). */
  certificateFile: absolutePath,
  /** Its private key (nginx `ssl_certificate_key`), root only. */
  keyFile: absolutePath,
});

/** How the VM's certificates are ordered: the ACME directory and account, and where nginx serves HTTP-01 challenges from. */
export const acmeSpecSchema = acmeSettingsSchema.extend({
  /** nginx serves `/.well-known/acme-challenge/` of every host from this folder. */
  webroot: absolutePath,
});

/** What a VM must run: everything but the envelope (see ../contract/document-envelope.ts). */
export const vmDocumentContentSchema = z.strictObject({
  apiVersion: z.literal(DOCUMENT_API_VERSION),
  kind: z.literal('VmDocument'),
  resourceGroup: z.string(),
  vm: z.string(),
  roles: z.array(z.enum(KUBERNETES_ROLES)),
  pollIntervalSeconds: z.number().positive(),
  directories: z.array(directorySpecSchema),
  files: z.array(fileSpecSchema),
  services: z.array(serviceSpecSchema),
  haproxy: haproxyRuntimeSchema.optional(),
  kubernetes: kubernetesTasksSchema.optional(),
  /** The hosts that need a certificate, by host name; absent when none does. */
  certificates: z.array(certificateSpecSchema).optional(),
  /** Present with `certificates`. */
  acme: acmeSpecSchema.optional(),
  /**
   * This gateway is the canary of a rollout (shared/state/rollout.ts): once it applied this
   * document (or failed to), the agent posts the outcome to `reportUrl`, and the other
   * gateways get the new frontends only after an `applied`. `round` changes with each new set
   * of frontends, so every round is a new generation to report on.
   */
  canary: z.strictObject({ round: z.string().regex(/^[0-9a-f]{16}$/), reportUrl: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }) }).optional(),
});

/** A computed document: its content and the content's hash (see ../contract/document-envelope.ts). */
export const vmDocumentSchema = vmDocumentContentSchema.extend({
  /** `sha256:<hex>` of the canonical JSON of the content. */
  hash: z.string().regex(/^sha256:[0-9a-f]{64}$/),
});

export type VmDocument = z.output<typeof vmDocumentSchema>;
export type FileSpec = z.output<typeof fileSpecSchema>;
export type DirectorySpec = z.output<typeof directorySpecSchema>;
export type ServiceSpec = z.output<typeof serviceSpecSchema>;
export type HaproxyServer = z.output<typeof haproxyServerSchema>;
export type HaproxyBackend = z.output<typeof haproxyBackendSchema>;
export type HaproxyRuntime = z.output<typeof haproxyRuntimeSchema>;
export type LoadBalancer = z.output<typeof loadBalancerSchema>;
export type KubernetesTasks = z.output<typeof kubernetesTasksSchema>;
export type CertificateSpec = z.output<typeof certificateSpecSchema>;
export type AcmeSpec = z.output<typeof acmeSpecSchema>;
export type SlotState = z.output<typeof slotStateSchema>;
