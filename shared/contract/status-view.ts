/**
 * The status view: what `getResourceGroup` answers, the CLI prints and a status
 * page shows. It is the stored status (`status/<rg>.json`, written by the reconciler) joined
 * with what each VM's agent reported. The rules of that join live here, pure: whose report
 * is believed about what, and what "in sync" means.
 */
import { z } from 'zod';
import { rgStatusSchema, documentStatusSchema, type RgStatus } from '../state/status.ts';
import { agentReportSchema, certificateReportSchema, drainStepSchema, type ReadReport, unreadableReportSchema } from './agent-report.ts';
import type { StoredDocuments } from './document-envelope.ts';
import { storeKeys } from './store-layout.ts';

export const documentViewSchema = documentStatusSchema.extend({
  /** The VM's last report, or why it cannot be read; null before its agent first reported. */
  agent: z.union([agentReportSchema, unreadableReportSchema]).nullable(),
  /** The agent runs exactly the document the control plane stored for it. */
  inSync: z.boolean(),
  /** What `desired/<rg>/<vm>.json` really holds now (null: nothing, or nothing readable). */
  stored: z.strictObject({ generation: z.number().int(), hash: z.string() }).nullable(),
  /** The store holds the generation and hash the state wants: false only when something went wrong. */
  storedAsWanted: z.boolean(),
});

export const maintenanceViewSchema = drainStepSchema.extend({
  /** The VM the step is about (the node's name). */
  vm: z.string(),
  /** When the k3s server's agent saw this step. */
  reportedAt: z.string(),
});

export const certificateViewSchema = certificateReportSchema.extend({
  /** The VM that serves the host (its own report says so; no VM speaks for another's hosts). */
  vm: z.string(),
  /** When that VM's agent reported it. */
  reportedAt: z.string(),
});

/**
 * The stored status without its audit trail, plus the joins below. It carries `dashboard`
 * (`{url, vpnOnly}` or null, issue 20's shape), which the reconciler computes from the group's
 * state with shared/dashboard.ts.
 */
export const statusViewSchema = rgStatusSchema.omit({ history: true }).extend({
  documents: z.array(documentViewSchema),
  /** Each agent's drain, as the k3s server reports it: when a VM is safe to take down. */
  maintenance: z.array(maintenanceViewSchema),
  /** Keys under `desired/<rg>/` that hold no VM's wanted document: none, unless something went wrong. */
  strayDocuments: z.array(z.string()),
  /** Every TLS host's certificate, by VM then host: placeholder, valid (until when) or failing (why, next try). */
  certificates: z.array(certificateViewSchema),
});

export type StatusView = z.output<typeof statusViewSchema>;
export type DocumentView = z.output<typeof documentViewSchema>;
export type CertificateView = z.output<typeof certificateViewSchema>;

const isReport = (report: ReadReport | undefined): report is z.output<typeof agentReportSchema> => report !== undefined && !('invalid' in report);

/**
 * Joins the stored status with the agents' reports (by VM name) and with what the store really
 * holds. Only the k3s server's report is believed about maintenance: every VM writes a report of
 * its own, and none may speak for another. A VM is in sync when its agent runs the very hash the
 * control plane stored; the store is as wanted when each document is the generation and hash the
 * state records, and nothing else is under the group's prefix.
 */
export function statusView(status: RgStatus, reports: ReadonlyMap<string, ReadReport>, stored: StoredDocuments): StatusView {
  const servers = new Set(status.documents.filter((d) => d.roles.includes('k3s-server')).map((d) => d.vm));
  const maintenance = [...servers].flatMap((vm) => {
    const report = reports.get(vm);
    const kubernetes = isReport(report) ? report.kubernetes : undefined;
    return kubernetes ? kubernetes.drain.map((step) => ({ vm: step.node, ...step, reportedAt: kubernetes.at })) : [];
  });
  const { history: _served, ...shown } = status;
  // Each VM's own report, for the hosts of its own document.
  const certificates = status.documents.flatMap((document) => {
    const report = reports.get(document.vm);
    return isReport(report) ? (report.certificates ?? []).map((certificate) => ({ vm: document.vm, ...certificate, reportedAt: report.at })) : [];
  });
  return {
    ...shown,
    maintenance,
    certificates,
    documents: status.documents.map((document) => {
      const report = reports.get(document.vm);
      const copy = stored.copies[document.vm];
      return {
        ...document,
        agent: report ?? null,
        inSync: isReport(report) && document.hash !== undefined && report.appliedHash === document.hash,
        stored: copy ? { generation: copy.generation, hash: copy.hash } : null,
        storedAsWanted: copy ? copy.generation === document.generation && copy.hash === document.hash : document.generation === undefined,
      };
    }),
    strayDocuments: [
      ...Object.keys(stored.copies)
        .filter((vm) => !status.documents.some((document) => document.vm === vm && document.generation !== undefined))
        .map((vm) => storeKeys.desired(status.resourceGroup, vm)),
      ...stored.strays,
    ].sort(),
  };
}
