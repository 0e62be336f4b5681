/** AWS Lambda entry of the `refresh` function, run by an EventBridge schedule (see the CDK app). */
import { awsEnvironment, awsQueue, awsStore } from '../shared/aws-environment.ts';
import { createLogger } from '../shared/logger.ts';
import { createRefreshHandler } from './handler.ts';

const env = awsEnvironment();
export const handler = createRefreshHandler({ store: awsStore(env), queue: awsQueue(env), logger: createLogger('ringmaster-refresh') });
