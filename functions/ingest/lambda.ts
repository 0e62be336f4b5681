/** AWS Lambda entry: `POST /v1/events` behind API Gateway with IAM authorization. */
import { awsEnvironment, awsQueue } from '../shared/aws-environment.ts';
import { iamAuthorizer } from '../shared/http.ts';
import { createLogger } from '../shared/logger.ts';
import { createIngestHandler } from './handler.ts';

const env = awsEnvironment();
export const handler = createIngestHandler({ queue: awsQueue(env), authorize: iamAuthorizer, logger: createLogger('ringmaster-ingest') });
