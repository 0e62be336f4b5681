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
});

export type AgentReport = z.output<typeof agentReportSchema>;
