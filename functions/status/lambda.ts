/** AWS Lambda entry of the `status` function (its routes: shared/contract/routes.ts). */
import { fileURLToPath } from 'node:url';
import { functionApi } from '../shared/api.ts';
import { awsEnvironment, awsStore } from '../shared/aws-environment.ts';
import { iamAuthorizer } from '../shared/http.ts';
import { createLogger } from '../shared/logger.ts';
import { readPageAssets } from '../../page/files.ts';
import { createStatusHandlers } from './handler.ts';

const env = awsEnvironment();
const logger = createLogger('ringmaster-status');
/** The status page's files, written beside the bundle when it is built (cdk/ringmaster-stack.ts). */
const PAGE_DIRECTORY = fileURLToPath(new URL('./page/', import.meta.url));
export const handler = functionApi('status', createStatusHandlers({ store: awsStore(env), logger, page: readPageAssets(PAGE_DIRECTORY) }), { authorize: iamAuthorizer, logger });
