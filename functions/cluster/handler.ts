/**
 * The `cluster` function: calls a resource group's cluster makes, each signed with its key.
 * - `postClusterEndpoints`: EndpointSlice changes from the server's watcher,
 *   queued as one `endpoints.changed` event.
 * - `postClusterKubeconfig`: a kubeconfig the server issued. It is written under
 *   `kubeconfigs/<rg>/<user>/<delivery id>.yaml`, a prefix only the portal reads, and a
 *   `kubeconfig.issued` event without the secret is queued so the state and status say where
 *   it is and until when. The kubeconfig never enters the queue, the state, a document or a log.
 * - `postClusterCa`: the hash of k3s' CA on the server, queued as `cluster.ca-observed`.
 * - `postCanaryReport`: a rollout's canary gateway says whether it applied a generation (its
 *   agent's call, authorized before the handler), queued as `rollout.canary-reported`.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { MAX_QUEUED_BODY_BYTES, type RoutesOf } from '../../shared/contract/routes.ts';
import { storeKeys } from '../../shared/contract/store-layout.ts';
import type { ClusterCaObservedEvent } from '../../shared/events/cluster-ca-events.ts';
import type { EndpointsChangedEvent } from '../../shared/events/endpoint-events.ts';
import type { KubeconfigIssuedEvent } from '../../shared/events/kubeconfig-events.ts';
import { canaryReportEventId, type CanaryReportedEvent } from '../../shared/events/rollout-events.ts';
import type { EventQueue, ObjectStore } from '../../shared/ports.ts';
import { parseBody, type RouteHandlers } from '../shared/api.ts';
import { badRequest, HttpProblem, json } from '../shared/http.ts';
import { type ClusterKeyLookup, clusterRequestVerifier } from './request-verifier.ts';

export interface ClusterDependencies extends ClusterKeyLookup {
  readonly queue: EventQueue;
  readonly store: ObjectStore;
  readonly logger: Logger;
}

export function createClusterHandlers(deps: ClusterDependencies): RouteHandlers<RoutesOf<'cluster'>> {
  const verifier = clusterRequestVerifier(deps);
  const now = deps.now ?? Date.now;
  return {
    postClusterEndpoints: async ({ event, parameters, body }) => {
      const request = await verifier.verify(parameters.rg, event, body);
      const changes = parseBody('postClusterEndpoints', body, 'the endpoint changes are invalid; nothing was accepted');
      const { id, resourceGroup } = request;
      const queued: EndpointsChangedEvent = { id, type: 'endpoints.changed', resourceGroup, occurredAt: request.sentAt, payload: changes };
      const message = JSON.stringify(queued);
      // Defaults filled in can make the queued form larger than the request: it must still fit a message.
      if (Buffer.byteLength(message) > MAX_QUEUED_BODY_BYTES) {
        throw new HttpProblem(413, 'Content Too Large', `the changes take more than ${MAX_QUEUED_BODY_BYTES} bytes once queued; send them in smaller batches`);
      }
      await deps.queue.send([{ id, group: resourceGroup, body: message }]);
      verifier.accepted(request);
      deps.logger.info('endpoint changes accepted', { resourceGroup, id, changes: changes.changes.length, resync: changes.resync });
      return json(202, { accepted: [id] });
    },

    postClusterCa: async ({ event, parameters, body }) => {
      const request = await verifier.verify(parameters.rg, event, body);
      const report = parseBody('postClusterCa', body, 'the CA report is invalid; nothing was accepted');
      const { id, resourceGroup } = request;
      const observed: ClusterCaObservedEvent = { id, type: 'cluster.ca-observed', resourceGroup, occurredAt: request.sentAt, payload: report };
      await deps.queue.send([{ id, group: resourceGroup, body: JSON.stringify(observed) }]);
      verifier.accepted(request);
      deps.logger.info('cluster CA reported', { resourceGroup, id, caHash: report.caHash });
      return json(202, { accepted: [id] });
    },

    postCanaryReport: async ({ parameters, body }) => {
      const report = parseBody('postCanaryReport', body, 'the canary report is invalid; nothing was queued');
      const { rg: resourceGroup, vm } = parameters;
      // The agent's retries of one report carry one id: the queue and the reducer keep one.
      const id = canaryReportEventId(vm, report);
      const reported: CanaryReportedEvent = { id, type: 'rollout.canary-reported', resourceGroup, occurredAt: new Date(now()).toISOString(), payload: { vm, ...report } };
      await deps.queue.send([{ id, group: resourceGroup, body: JSON.stringify(reported) }]);
      deps.logger.info('canary report accepted', { resourceGroup, vm, generation: report.generation, outcome: report.outcome });
      return json(202, { accepted: [id] });
    },

    postClusterKubeconfig: async ({ event, parameters, body }) => {
      const request = await verifier.verify(parameters.rg, event, body);
      const delivery = parseBody('postClusterKubeconfig', body, 'the kubeconfig delivery is invalid; nothing was stored');
      const { user, kubeconfig, expiresAt, requestIds } = delivery;
      if (Date.parse(expiresAt) <= now()) throw badRequest('the kubeconfig delivery is invalid; nothing was stored', [{ field: 'expiresAt', reason: 'is in the past' }]);
      const { id, resourceGroup } = request;
      const location = storeKeys.kubeconfig(resourceGroup, user, id);
      // Stored before the event is queued: once the state says where it is, it is there.
      await deps.store.put(location, kubeconfig, { contentType: 'application/yaml' });
      const issued: KubeconfigIssuedEvent = { id, type: 'kubeconfig.issued', resourceGroup, occurredAt: request.sentAt, payload: { user, expiresAt, location, requestIds } };
      await deps.queue.send([{ id, group: resourceGroup, body: JSON.stringify(issued) }]);
      verifier.accepted(request);
      deps.logger.info('kubeconfig delivered', { resourceGroup, id, user, expiresAt, answers: requestIds.length });
      return json(202, { accepted: [id], location, expiresAt });
    },
  };
}
