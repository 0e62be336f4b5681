/** AWS Lambda entry: `GET /v1/dead-letters` and `POST /v1/dead-letters/replay` with IAM authorization. */
import type { HttpEvent } from '../shared/http.ts';
import { awsEnvironment, awsQueue } from '../shared/aws-environment.ts';
import { iamAuthorizer } from '../shared/http.ts';
import { createLogger } from '../shared/logger.ts';
import { createDeadLetterHandlers } from './handler.ts';

const env = awsEnvironment();
const handlers = createDeadLetterHandlers({ queue: awsQueue(env), authorize: iamAuthorizer, logger: createLogger('ringmaster-dead-letters') });
/** One function for both routes: the route key says which. */
export const handler = (event: HttpEvent, context: Parameters<typeof handlers.list>[1]) => (event.routeKey.startsWith('POST') ? handlers.replay(event, context) : handlers.list(event, context));
