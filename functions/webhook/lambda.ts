/**
 * AWS Lambda entry for the cluster routes, both authenticated by the cluster's HMAC signature:
 * `POST /v1/clusters/{rg}/endpoints` and `POST /v1/clusters/{rg}/kubeconfigs`.
 */
import { type HttpEvent, problem } from '../shared/http.ts';
import { awsEnvironment, awsQueue, awsStore } from '../shared/aws-environment.ts';
import { createLogger } from '../shared/logger.ts';
import { webhookKeyLookup } from '../shared/state-store.ts';
import { createWebhookHandler } from './handler.ts';
import { createKubeconfigDeliveryHandler } from './kubeconfig-delivery.ts';

const env = awsEnvironment();
const store = awsStore(env);
const queue = awsQueue(env);
const logger = createLogger('ringmaster-webhook');
const webhookKey = webhookKeyLookup(store);
const endpoints = createWebhookHandler({ queue, webhookKey, logger });
const kubeconfigs = createKubeconfigDeliveryHandler({ queue, store, webhookKey, logger });

const routes: Record<string, typeof endpoints> = {
  'POST /v1/clusters/{rg}/endpoints': endpoints,
  'POST /v1/clusters/{rg}/kubeconfigs': kubeconfigs,
};

export const handler = async (event: HttpEvent, context: Parameters<typeof endpoints>[1]) => {
  const route = routes[event.routeKey ?? ''];
  return route ? route(event, context) : problem(404, 'Not Found', `no such route: ${event.routeKey ?? '(none)'}`);
};
