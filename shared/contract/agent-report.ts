/**
 * What a VM's agent writes to `reports/<rg>/<vm>.json` after applying (or failing to apply)
 * its document, and how the status reads it back. The limits live in the schema: parsing a
 * report cuts what is too long, so writers never repeat them.
 */
import { z } from 'zod';
import { boundedList, boundedText } from '../schema/primitives.ts';

/** One node's maintenance drain, as the k3s server's agent last saw it. */
export const drainStepSchema = z.strictObject({
  node: z.string(),
  phase: z.enum(['missing', 'evicting', 'postponed', 'drained', 'uncordoned']),
  remainingPods: z.number().int().min(0),
  blockedPods: z.array(z.string()),
  startedAt: z.string().optional(),
  safeToTakeDown: z.boolean(),
  message: z.string(),
});

/** The k3s server's Kubernetes tasks, as of a round. */
export const kubernetesReportSchema = z.strictObject({
  at: z.iso.datetime({ offset: true }),
  accessUsers: z.array(z.string()),
  /** Users whose ServiceAccount and binding were removed in this round. */
  revoked: z.array(z.string()),
  kubeconfigsDelivered: z.array(z.strictObject({ user: z.string(), expiresAt: z.string(), requestIds: z.array(z.string()) })),
  /** The kubeconfig each user with access finds in their home on the server (no token: when it expires and is renewed). */
  homeKubeconfigs: boundedList(z.strictObject({ user: z.string(), expiresAt: z.string(), renewsAt: z.string() }), 200).optional(),
  drain: z.array(drainStepSchema),
  endpointWebhook: z.strictObject({ calls: z.number().int().min(0), failures: z.number().int().min(0), lastSentAt: z.string().optional() }),
  /** The round's failures, first ones first. */
  errors: boundedList(boundedText(1000), 20),
});

/** A TLS host's certificate, as of the agent's last certificate round. */
export const certificateReportSchema = z.strictObject({
  host: z.string(),
  /** placeholder: self-signed, waiting for its first certificate; valid: issued and not expired; failing: the last order failed (or cannot be made). */
  state: z.enum(['placeholder', 'valid', 'failing']),
  /** Of the issued certificate nginx serves now (a failing renewal still has one). */
  notAfter: z.iso.datetime({ offset: true }).optional(),
  /** When a valid certificate will be renewed. */
  renewAt: z.iso.datetime({ offset: true }).optional(),
  error: boundedText(500).optional(),
  /** When a failing host is tried again. */
  nextTryAt: z.iso.datetime({ offset: true }).optional(),
  /** ACME orders this VM placed for the host. */
  orders: z.number().int().min(0),
});

export type CertificateReport = z.output<typeof certificateReportSchema>;

/** Hosts an agent reports certificates of (a webgateway with more is cut, never refused). */
export const REPORTED_CERTIFICATES = 200;

/** Generations an agent remembers the outcome of, in its report. */
export const RECENT_OUTCOMES = 10;

export const recentOutcomeSchema = z.strictObject({
  generation: z.number().int().min(1),
  outcome: z.enum(['applied', 'unchanged', 'failed']),
  at: z.iso.datetime({ offset: true }),
  error: boundedText(500).optional(),
});

export type RecentOutcome = z.output<typeof recentOutcomeSchema>;

/** The outcomes after one more report: one per generation (the newest kept), newest first, bounded. */
export function withOutcome(recent: readonly RecentOutcome[], next: RecentOutcome): RecentOutcome[] {
  return [next, ...recent.filter((entry) => entry.generation !== next.generation)].slice(0, RECENT_OUTCOMES);
}

export const BACKEND_SERVER_STATES = ['up', 'starting', 'stopping', 'down', 'drain', 'maint'] as const;
export type BackendServerState = (typeof BACKEND_SERVER_STATES)[number];

/** One server of a webgateway's haproxy backend, as haproxy has it (runtime API), with the pod it stands for. */
export const backendServerSchema = z.strictObject({
  frontend: boundedText(100),
  /** The slot (`pod1`…) or load balancer (`lb-<agent>`). */
  server: boundedText(100),
  /** `address:port` (a free slot's placeholder while in maintenance). */
  address: boundedText(100),
  /** The pod (`namespace/name`) or agent the document says the server stands for. */
  target: boundedText(300).optional(),
  state: z.enum(BACKEND_SERVER_STATES),
});

export type BackendServer = z.output<typeof backendServerSchema>;

/** Servers a report lists at most (100 frontends of 10 slots and a few backups fit). */
export const MAX_REPORTED_SERVERS = 2000;

export const agentReportSchema = z.strictObject({
  resourceGroup: z.string(),
  vm: z.string(),
  /** The generation and hash of the document now running. */
  appliedGeneration: z.number().int().min(0),
  appliedHash: z.string(),
  /** The generation last tried, which may have failed. */
  attemptedGeneration: z.number().int().min(0).optional(),
  outcome: z.enum(['applied', 'unchanged', 'failed']),
  error: boundedText(4000).optional(),
  at: z.iso.datetime({ offset: true }),
  /** Pods served beyond the configured slots, per frontend. */
  extraServers: z.record(z.string(), z.number().int()).optional(),
  /** The k3s server's Kubernetes tasks, as of their last round. */
  kubernetes: kubernetesReportSchema.optional(),
  /** When the agent last reached the store. */
  lastContact: z.iso.datetime({ offset: true }).optional(),
  /** The last time it could not, for how long. */
  lastOutage: z.strictObject({ startedAt: z.iso.datetime({ offset: true }), endedAt: z.iso.datetime({ offset: true }), seconds: z.number().min(0) }).optional(),
  /**
   * The push channel, when the agent has one: connected (nudges reach it, it polls at the safety
   * interval) or down (it polls at the document's interval), since when.
   */
  push: z.strictObject({ connected: z.boolean(), since: z.iso.datetime({ offset: true }) }).optional(),
  /** Each TLS host's certificate, as of the last certificate round. */
  certificates: boundedList(certificateReportSchema, REPORTED_CERTIFICATES).optional(),
  /** The last outcome per generation the agent tried since it started, newest first (the audit trail joins them). */
  recent: boundedList(recentOutcomeSchema, RECENT_OUTCOMES).optional(),
  /** A webgateway's haproxy servers as haproxy has them when the report was written. */
  backends: boundedList(backendServerSchema, MAX_REPORTED_SERVERS).optional(),
  /** What the agent's service manager says of the running services: a sandboxed VM names what it does not run ("k3s: not run in sandbox"). */
  notices: boundedList(boundedText(200), 20).optional(),
});

export type AgentReport = z.output<typeof agentReportSchema>;
/** A report as its writer builds it: anything too long is cut by `agentReportSchema.parse`. */
export type AgentReportDraft = z.input<typeof agentReportSchema>;
export type KubernetesReport = z.output<typeof kubernetesReportSchema>;

export const unreadableReportSchema = z.strictObject({ invalid: z.string() });

/** A stored report as the status sees it: the report, or why it could not be read. */
export type ReadReport = AgentReport | z.output<typeof unreadableReportSchema>;

/** Parses a stored report's text; a broken one is shown as such, never taken as valid. */
export function readAgentReport(body: string): ReadReport {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return { invalid: 'the report is not valid JSON' };
  }
  const parsed = agentReportSchema.safeParse(value);
  return parsed.success ? parsed.data : { invalid: 'the report does not match the report schema' };
}
