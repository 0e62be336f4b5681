/**
 * The status view: what `getResourceGroup` answers, the CLI prints and a status
 * page shows. It is the stored status (`status/<rg>.json`, written by the reconciler) joined
 * with what each VM's agent reported. The rules of that join live here, pure: whose report
 * is believed about what, and what "in sync" means.
 */
import { z } from 'zod';
import { rgStatusSchema, documentStatusSchema, type RgStatus } from '../state/status.ts';
import { agentReportSchema, drainStepSchema, type ReadReport, unreadableReportSchema } from './agent-report.ts';

export const documentViewSchema = documentStatusSchema.extend({
  /** The VM's last report, or why it cannot be read; null before its agent first reported. */
  agent: z.union([agentReportSchema, unreadableReportSchema]).nullable(),
  /** The agent runs exactly the document the control plane stored for it. */
  inSync: z.boolean(),
});

export const maintenanceViewSchema = drainStepSchema.extend({
  /** The VM the step is about (the node's name). */
  vm: z.string(),
  /** When the k3s server's agent saw this step. */
  reportedAt: z.string(),
});

export const statusViewSchema = rgStatusSchema.extend({
  documents: z.array(documentViewSchema),
  /** Each agent's drain, as the k3s server reports it: when a VM is safe to take down. */
  maintenance: z.array(maintenanceViewSchema),
});

export type StatusView = z.output<typeof statusViewSchema>;
export type DocumentView = z.output<typeof documentViewSchema>;

const isReport = (report: ReadReport | undefined): report is z.output<typeof agentReportSchema> => report !== undefined && !('invalid' in report);

/**
 * Joins the stored status with the agents' reports (by VM name). Only the k3s server's report
 * is believed about maintenance: every VM writes a report of its own, and none may speak for
 * another. A VM is in sync when its agent runs the very hash the control plane stored.
 */
export function statusView(status: RgStatus, reports: ReadonlyMap<string, ReadReport>): StatusView {
  const servers = new Set(status.documents.filter((d) => d.roles.includes('k3s-server')).map((d) => d.vm));
  const maintenance = [...servers].flatMap((vm) => {
    const report = reports.get(vm);
    const kubernetes = isReport(report) ? report.kubernetes : undefined;
    return kubernetes ? kubernetes.drain.map((step) => ({ vm: step.node, ...step, reportedAt: kubernetes.at })) : [];
  });
  return {
    ...status,
    maintenance,
    documents: status.documents.map((document) => {
      const report = reports.get(document.vm);
      return { ...document, agent: report ?? null, inSync: isReport(report) && document.hash !== undefined && report.appliedHash === document.hash };
    }),
  };
}
