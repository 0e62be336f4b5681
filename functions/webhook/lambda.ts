/**
 * AWS Lambda entry for the cluster routes, both authenticated by the cluster's HMAC signature:
 * `POST /v1/clusters/{rg}/endpoints` and `POST /v1/clusters/{rg}/kubeconfigs`.
 */
import { awsEnvironment, awsQueue, awsStore } from '../shared/aws-environment.ts';
import { routeHandler } from '../shared/http.ts';
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

export const handler = routeHandler<Parameters<typeof endpoints>[1]>({
  'POST /v1/clusters/{rg}/endpoints': endpoints,
  'POST /v1/clusters/{rg}/kubeconfigs': kubeconfigs,
});
