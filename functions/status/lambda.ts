/**
 * AWS Lambda entry for the portal's reads behind API Gateway with IAM authorization:
 * `GET /v1/resource-groups/{rg}` and `GET /v1/resource-groups/{rg}/kubeconfigs/{user}`.
 */
import type { HttpEvent } from '../shared/http.ts';
import { awsEnvironment, awsStore } from '../shared/aws-environment.ts';
import { iamAuthorizer } from '../shared/http.ts';
import { createLogger } from '../shared/logger.ts';
import { createKubeconfigReadHandler, createStatusHandler } from './handler.ts';

const env = awsEnvironment();
const deps = { store: awsStore(env), authorize: iamAuthorizer, logger: createLogger('ringmaster-status') };
const status = createStatusHandler(deps);
const kubeconfig = createKubeconfigReadHandler(deps);

export const handler = (event: HttpEvent, context: Parameters<typeof status>[1]) =>
  event.pathParameters?.user !== undefined ? kubeconfig(event, context) : status(event, context);
