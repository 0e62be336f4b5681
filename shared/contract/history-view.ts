/**
 * The history view: what `getResourceGroupHistory` answers and `ringmaster history` prints. The
 * audit trail the reconciler keeps (shared/state/history.ts), joined with what each VM's agent
 * reported: the outcome it remembers for each generation (`recent` in its report), or its latest
 * report against the generation that one speaks of.
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
        const said = (generation: number | null) => {
          if (!latest || generation === null) return null;
          const remembered = latest.recent?.find((outcome) => outcome.generation === generation);
          if (remembered) return { outcome: remembered.outcome, at: remembered.at, ...(remembered.error ? { error: remembered.error } : {}) };
          return about === generation ? { outcome: latest.outcome, at: latest.at, ...(latest.error ? { error: latest.error } : {}) } : null;
        };
        return { vm, entries: status.history[vm]!.map((entry) => ({ ...entry, agent: said(entry.generation) })) };
      }),
  };
}
