/**
 * `POST /v1/clusters/{rg}/kubeconfigs`: the server's agent delivers a kubeconfig it issued
 * (signed with the cluster's webhook key, like the endpoint webhook). It is written under
 * `kubeconfigs/<rg>/<user>/<delivery id>.yaml`, a prefix only the portal reads, and a `kubeconfig.issued` event without the
 * secret is queued so the state and status say where it is and until when. The kubeconfig
 * never enters the queue, the state, a document or a log.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import middy from '@middy/core';
import httpErrorHandler from '@middy/http-error-handler';
import { kubeconfigDeliverySchema, type KubeconfigIssuedEvent, MAX_KUBECONFIG_BYTES } from '../../shared/events/kubeconfig-events.ts';
import { fieldErrors } from '../../shared/schema/errors.ts';
import { type EventQueue, type ObjectStore, storeKeys } from '../../shared/ports.ts';
import { type HttpEvent, type HttpResult, json, problem } from '../shared/http.ts';
import { clusterRequestVerifier, isVerified, type WebhookDependencies } from './handler.ts';

export interface KubeconfigDeliveryDependencies extends Pick<WebhookDependencies, 'webhookKey' | 'now'> {
  readonly queue: EventQueue;
  readonly store: ObjectStore;
  readonly logger: Logger;
}

export function createKubeconfigDeliveryHandler(deps: KubeconfigDeliveryDependencies) {
  const verifier = clusterRequestVerifier(deps);
  const handler = async (event: HttpEvent): Promise<HttpResult> => {
    const request = await verifier.verify(event, MAX_KUBECONFIG_BYTES + 4096);
    if (!isVerified(request)) return request;
    const parsed = kubeconfigDeliverySchema.safeParse(request.value);
    if (!parsed.success) return problem(400, 'Bad Request', 'the kubeconfig delivery is invalid; nothing was stored', fieldErrors(parsed.error));
    const { user, kubeconfig, expiresAt, requestIds } = parsed.data;
    if (Date.parse(expiresAt) <= (deps.now ?? Date.now)()) return problem(400, 'Bad Request', 'the kubeconfig delivery is invalid; nothing was stored', [{ field: 'expiresAt', reason: 'is in the past' }]);

    const { id, resourceGroup } = request;
    const location = storeKeys.kubeconfig(resourceGroup, user, id);
    // Stored before the event is queued: once the state says where it is, it is there.
    await deps.store.put(location, kubeconfig, { contentType: 'application/yaml' });
    const issued: KubeconfigIssuedEvent = { id, type: 'kubeconfig.issued', resourceGroup, occurredAt: request.sentAt, payload: { user, expiresAt, location, requestIds } };
    await deps.queue.send([{ id, group: resourceGroup, body: JSON.stringify(issued) }]);
    verifier.accepted(request);
    deps.logger.info('kubeconfig delivered', { resourceGroup, id, user, expiresAt, answers: requestIds.length });
    return json(202, { accepted: [id], location, expiresAt });
  };
  return middy<HttpEvent, HttpResult>(handler).use(httpErrorHandler({ logger: (error) => deps.logger.error('kubeconfig delivery failed', error as Error) }));
}
