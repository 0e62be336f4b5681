/** AWS Lambda entry: `GET /v1/resource-groups/{rg}` behind API Gateway with IAM authorization. */
import { awsEnvironment, awsStore } from '../shared/aws-environment.ts';
import { iamAuthorizer } from '../shared/http.ts';
import { createLogger } from '../shared/logger.ts';
import { createStatusHandler } from './handler.ts';

const env = awsEnvironment();
export const handler = createStatusHandler({ store: awsStore(env), authorize: iamAuthorizer, logger: createLogger('ringmaster-status') });
