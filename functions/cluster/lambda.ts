/** AWS Lambda entry of the `cluster` function (its routes: shared/contract/routes.ts). */
import { functionApi } from '../shared/api.ts';
import { awsEnvironment, awsQueue, awsStore } from '../shared/aws-environment.ts';
import { iamAuthorizer } from '../shared/http.ts';
import { createLogger } from '../shared/logger.ts';
import { clusterKeyLookup } from '../shared/state-store.ts';
import { createClusterHandlers } from './handler.ts';

const env = awsEnvironment();
const store = awsStore(env);
const logger = createLogger('ringmaster-cluster');
export const handler = functionApi('cluster', createClusterHandlers({ queue: awsQueue(env), store, clusterKey: clusterKeyLookup(store), logger }), { authorize: iamAuthorizer, logger });
