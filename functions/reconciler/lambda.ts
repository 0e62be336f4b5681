/** AWS Lambda entry: the SQS FIFO event source (partial batch responses enabled). */
import type { SQSEvent } from 'aws-lambda';
import { awsEnvironment, awsQueue, awsStore, masterKey } from '../shared/aws-environment.ts';
import { createLogger } from '../shared/logger.ts';
import { createReconcilerHandler } from './handler.ts';

const env = awsEnvironment();
const queue = awsQueue(env);
const store = awsStore(env);
const logger = createLogger('ringmaster-reconciler');
let reconciler: ReturnType<typeof createReconcilerHandler> | undefined;

export const handler = async (event: SQSEvent, context: Parameters<ReturnType<typeof createReconcilerHandler>>[1]) => {
  reconciler ??= createReconcilerHandler({
    store,
    masterKey: await masterKey(env),
    logger,
    // A copy to the DLQ with the reason; Lambda then deletes the original as processed.
    deadLetter: (message, reason) => queue.sendDeadLetter(message, reason),
    ...(env.RINGMASTER_PUBLIC_URL ? { webhookUrl: (rg: string) => `${env.RINGMASTER_PUBLIC_URL!.replace(/\/$/, '')}/v1/clusters/${rg}/endpoints` } : {}),
  });
  return reconciler(event, context);
};
