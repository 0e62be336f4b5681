/** What a VM's agent reports after applying (or failing to apply) its document. */
import { z } from 'zod';

export const agentReportSchema = z.strictObject({
  resourceGroup: z.string(),
  vm: z.string(),
  /** The generation and hash of the document now running. */
  appliedGeneration: z.number().int().min(0),
  appliedHash: z.string(),
  /** The generation last tried, which may have failed. */
  attemptedGeneration: z.number().int().min(0).optional(),
  outcome: z.enum(['applied', 'unchanged', 'failed']),
  error: z.string().max(4000).optional(),
  at: z.iso.datetime({ offset: true }),
  /** Pods served beyond the configured slots, per frontend. */
  extraServers: z.record(z.string(), z.number().int()).optional(),
  /** The k3s server's Kubernetes tasks, as of their last round. */
  kubernetes: z
    .strictObject({
      at: z.iso.datetime({ offset: true }),
      accessUsers: z.array(z.string()),
      /** Users whose ServiceAccount and binding were removed in this round. */
      revoked: z.array(z.string()),
      kubeconfigsDelivered: z.array(z.strictObject({ user: z.string(), expiresAt: z.string(), requestIds: z.array(z.string()) })),
      drain: z.array(
        z.strictObject({
          node: z.string(),
          phase: z.enum(['missing', 'evicting', 'postponed', 'drained', 'uncordoned']),
          remainingPods: z.number().int().min(0),
          blockedPods: z.array(z.string()),
          startedAt: z.string().optional(),
          safeToTakeDown: z.boolean(),
          message: z.string(),
        }),
      ),
      endpointWebhook: z.strictObject({ calls: z.number().int().min(0), failures: z.number().int().min(0), lastSentAt: z.string().optional() }),
      errors: z.array(z.string().max(2000)).max(50),
    })
    .optional(),
});

export type KubernetesReport = NonNullable<AgentReport['kubernetes']>;

export type AgentReport = z.output<typeof agentReportSchema>;
