/**
 * What the canary gateway of a rollout says of a document it was given: applied (its haproxy
 * and nginx took it, and every frontend that had a server up before still has one), or failed
 * (with the reason, as its report gives it). The agent posts it signed with its own key; the
 * control plane queues it as `rollout.canary-reported`, and the next reconcile lets the other
 * gateways follow, or halts the rollout.
 */
import { z } from 'zod';
import { dnsLabel } from '../schema/primitives.ts';
import { queuedEventSchema } from './queued-event.ts';

/** Long enough for haproxy's or nginx's own words on a refused config, short enough for a status page. */
export const MAX_ROLLOUT_REASON = 2000;

export const canaryReportSchema = z.strictObject({
  generation: z.number().int('must be a whole number').min(1, 'must be at least 1'),
  outcome: z.enum(['applied', 'failed'], { error: 'must be "applied" or "failed"' }),
  reason: z.string().min(1, 'must not be empty').max(MAX_ROLLOUT_REASON, `must be at most ${MAX_ROLLOUT_REASON} characters`).optional(),
});

export const canaryReportedEventSchema = queuedEventSchema('rollout.canary-reported', canaryReportSchema.extend({ vm: dnsLabel }));

export type CanaryReport = z.output<typeof canaryReportSchema>;
export type CanaryReportedEvent = z.output<typeof canaryReportedEventSchema>;

/** One id per VM, generation and outcome: the agent's retries and the queue's redeliveries fold into one event. */
export const canaryReportEventId = (vm: string, report: CanaryReport): string => `canary-${vm}-${report.generation}-${report.outcome}`;
