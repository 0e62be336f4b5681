/** AWS Lambda entry of the `ingest` function (its routes: shared/contract/routes.ts). */
import { functionApi } from '../shared/api.ts';
import { awsEnvironment, awsQueue } from '../shared/aws-environment.ts';
import { iamAuthorizer } from '../shared/http.ts';
import { createLogger } from '../shared/logger.ts';
import { createIngestHandlers } from './handler.ts';

const env = awsEnvironment();
const logger = createLogger('ringmaster-ingest');
export const handler = functionApi('ingest', createIngestHandlers({ queue: awsQueue(env), logger }), { authorize: iamAuthorizer, logger });
