/** AWS Lambda entry of the `status` function (its routes: shared/contract/routes.ts). */
import { functionApi } from '../shared/api.ts';
import { awsEnvironment, awsStore } from '../shared/aws-environment.ts';
import { iamAuthorizer } from '../shared/http.ts';
import { createLogger } from '../shared/logger.ts';
import { createStatusHandlers } from './handler.ts';

const env = awsEnvironment();
const logger = createLogger('ringmaster-status');
export const handler = functionApi('status', createStatusHandlers({ store: awsStore(env), logger }), { authorize: iamAuthorizer, logger });
