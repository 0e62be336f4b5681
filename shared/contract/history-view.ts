/**
 * The history view: what `getResourceGroupHistory` answers and `ringmaster history` prints. The
 * audit trail the reconciler keeps (shared/state/history.ts), joined with what each VM's agent
 * reported: its latest report is shown against the generation it speaks of.
 */
import { z } from 'zod';
import { historyEntrySchema } from '../state/history.ts';
import type { RgStatus } from '../state/status.ts';
import type { ReadReport } from './agent-report.ts';

export const historyViewSchema = z.strictObject({
  resourceGroup: z.string(),
  vms: z.array(
    z.strictObject({
      vm: z.string(),
      entries: z.array(
        historyEntrySchema.extend({
          /** What the agent last reported about this generation, when its latest report is about it. */
          agent: z.strictObject({ outcome: z.string(), at: z.string(), error: z.string().optional() }).nullable(),
        }),
      ),
    }),
  ),
});

export type HistoryView = z.output<typeof historyViewSchema>;

export function historyView(status: RgStatus, reports: ReadonlyMap<string, ReadReport>): HistoryView {
  return {
    resourceGroup: status.resourceGroup,
    vms: Object.keys(status.history)
      .sort()
      .map((vm) => {
        const report = reports.get(vm);
        const latest = report && !('invalid' in report) ? report : undefined;
        const about = latest?.attemptedGeneration ?? latest?.appliedGeneration;
        return {
          vm,
          entries: status.history[vm]!.map((entry) => ({
            ...entry,
            agent: latest && entry.generation !== null && about === entry.generation ? { outcome: latest.outcome, at: latest.at, ...(latest.error ? { error: latest.error } : {}) } : null,
          })),
        };
      }),
  };
}
