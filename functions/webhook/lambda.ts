/** AWS Lambda entry: `POST /v1/clusters/{rg}/endpoints`, authenticated by the cluster's HMAC signature. */
import { awsEnvironment, awsQueue, awsStore } from '../shared/aws-environment.ts';
import { createLogger } from '../shared/logger.ts';
import { webhookKeyLookup } from '../shared/state-store.ts';
import { createWebhookHandler } from './handler.ts';

const env = awsEnvironment();
export const handler = createWebhookHandler({ queue: awsQueue(env), webhookKey: webhookKeyLookup(awsStore(env)), logger: createLogger('ringmaster-webhook') });
