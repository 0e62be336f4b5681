/**
 * AWS Lambda entry for the portal's reads behind API Gateway with IAM authorization:
 * `GET /v1/resource-groups/{rg}` and `GET /v1/resource-groups/{rg}/kubeconfigs/{user}`.
 */
import { awsEnvironment, awsStore } from '../shared/aws-environment.ts';
import { iamAuthorizer, routeHandler } from '../shared/http.ts';
import { createLogger } from '../shared/logger.ts';
import { createKubeconfigReadHandler, createStatusHandler } from './handler.ts';

const env = awsEnvironment();
const deps = { store: awsStore(env), authorize: iamAuthorizer, logger: createLogger('ringmaster-status') };
const status = createStatusHandler(deps);
const kubeconfig = createKubeconfigReadHandler(deps);

export const handler = routeHandler<Parameters<typeof status>[1]>({
  'GET /v1/resource-groups/{rg}': status,
  'GET /v1/resource-groups/{rg}/kubeconfigs/{user}': kubeconfig,
});
