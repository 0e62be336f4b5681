/** AWS Lambda entry of the `dead-letters` function (its routes: shared/contract/routes.ts). */
import { functionApi } from '../shared/api.ts';
import { awsEnvironment, awsQueue } from '../shared/aws-environment.ts';
import { iamAuthorizer } from '../shared/http.ts';
import { createLogger } from '../shared/logger.ts';
import { createDeadLetterHandlers } from './handler.ts';

const env = awsEnvironment();
const logger = createLogger('ringmaster-dead-letters');
export const handler = functionApi('dead-letters', createDeadLetterHandlers({ queue: awsQueue(env), logger }), { authorize: iamAuthorizer, logger });
