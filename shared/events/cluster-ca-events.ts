/**
 * The k3s server's CA, as its agent observes it: k3s makes its cluster CA on first start, and a
 * joining node can check it only when its token carries the CA's hash (`K10<hash>::…`, k3s'
 * "secure" token format). The server's agent posts the hash (signed with the cluster's key);
 * the control plane pins the first one and gives the agents and the webgateway tokens in the
 * secure form, so they verify the server they join before sending their credentials.
 */
import { z } from 'zod';
import { caHash, dnsLabel } from '../schema/primitives.ts';
import { eventId } from './portal-events.ts';

export const clusterCaReportSchema = z.strictObject({ caHash });

export const clusterCaObservedEventSchema = z.strictObject({
  id: eventId,
  type: z.literal('cluster.ca-observed'),
  resourceGroup: dnsLabel,
  occurredAt: z.iso.datetime({ offset: true }),
  payload: clusterCaReportSchema,
});

export type ClusterCaReport = z.output<typeof clusterCaReportSchema>;
export type ClusterCaObservedEvent = z.output<typeof clusterCaObservedEventSchema>;
