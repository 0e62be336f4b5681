/**
 * The k3s server's CA, as its agent observes it: k3s makes its cluster CA on first start, and a
 * joining node can check it only when its token carries the CA's hash (`K10<hash>::…`, k3s'
 * "secure" token format). The server's agent posts the hash (signed with the cluster's key);
 * the control plane pins the first one and gives the agents and the webgateway tokens in the
 * secure form, so they verify the server they join before sending their credentials.
 */
import { z } from 'zod';
import { caHash } from '../schema/primitives.ts';
import { queuedEventSchema } from './queued-event.ts';

export const clusterCaReportSchema = z.strictObject({ caHash });

export const clusterCaObservedEventSchema = queuedEventSchema('cluster.ca-observed', clusterCaReportSchema);

export type ClusterCaReport = z.output<typeof clusterCaReportSchema>;
export type ClusterCaObservedEvent = z.output<typeof clusterCaObservedEventSchema>;
