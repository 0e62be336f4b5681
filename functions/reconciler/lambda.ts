/** AWS Lambda entry: the SQS FIFO event source (partial batch responses enabled). */
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { SQSEvent } from 'aws-lambda';
import { awsDocumentSigner, awsEnvironment, awsQueue, awsStore, masterKey } from '../shared/aws-environment.ts';
import { createLogger } from '../shared/logger.ts';
import { createReconcilerHandler } from './handler.ts';
import { nudgeFanOut } from '../shared/nudge-fan-out.ts';
import { IotNudgePublisher } from '../../adapters/iot-nudge-publisher.ts';
import { parseAcmeSettings } from '../../shared/certificates/acme-settings.ts';

const env = awsEnvironment();
const queue = awsQueue(env);
const logger = createLogger('ringmaster-reconciler');
// With IoT Core, each document written nudges its VM's agent at once (polling stays the safety net).
const nudges = env.RINGMASTER_IOT_ENDPOINT ? nudgeFanOut([new IotNudgePublisher({ endpoint: env.RINGMASTER_IOT_ENDPOINT })], (error) => logger.warn('nudge not published', { error: (error as Error).message })) : undefined;
const metrics = new Metrics({ namespace: 'Ringmaster', serviceName: 'reconciler' });
let reconciler: ReturnType<typeof createReconcilerHandler> | undefined;

async function build(): Promise<ReturnType<typeof createReconcilerHandler>> {
  const key = await masterKey(env);
  return createReconcilerHandler({
    store: awsStore(env),
    ...(nudges ? { nudges } : {}),
    masterKey: key,
    signer: () => awsDocumentSigner(env),
    logger,
    // A copy to the DLQ with the reason; Lambda then deletes the original as processed.
    deadLetter: (message, reason) => queue.sendDeadLetter(message, reason),
    ...(env.RINGMASTER_MAX_RECEIVES ? { maxReceives: env.RINGMASTER_MAX_RECEIVES } : {}),
    ...(env.RINGMASTER_HISTORY_DEPTH ? { historyDepth: env.RINGMASTER_HISTORY_DEPTH } : {}),
    ...(env.RINGMASTER_PUBLIC_URL ? { apiUrl: env.RINGMASTER_PUBLIC_URL } : {}),
    acme: parseAcmeSettings({ directory: env.RINGMASTER_ACME_DIRECTORY, email: env.RINGMASTER_ACME_EMAIL }, { directory: 'RINGMASTER_ACME_DIRECTORY', email: 'RINGMASTER_ACME_EMAIL' }),
    onReconciled: (plan) => {
      const count = (kind: string) => plan.outcomes.filter((o) => o.outcome.kind === kind).length;
      metrics.addMetric('EventsApplied', MetricUnit.Count, count('applied'));
      metrics.addMetric('EventsDuplicate', MetricUnit.Count, count('duplicate'));
      metrics.addMetric('EventsRefused', MetricUnit.Count, count('rejected') + count('stale'));
      metrics.addMetric('DocumentsWritten', MetricUnit.Count, plan.writes.length);
    },
  });
}

export const handler = async (event: SQSEvent, context: Parameters<ReturnType<typeof createReconcilerHandler>>[1]) => {
  reconciler ??= await build();
  try {
    return await reconciler(event, context);
  } finally {
    metrics.publishStoredMetrics();
  }
};
