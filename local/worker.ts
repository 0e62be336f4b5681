/**
 * The local event source: what Lambda's SQS event source mapping does in the cloud. It
 * receives batches from the queue, hands them to the reconciler handler as SQS events,
 * deletes what succeeded and makes failed messages visible again after a short backoff
 * (their group stays blocked until then, so order holds).
 */
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import type { EventQueue, ReceivedMessage } from '../shared/ports.ts';
import { localContext } from './lambda-context.ts';

export type ReconcilerInvoke = (event: SQSEvent, context: ReturnType<typeof localContext>) => Promise<SQSBatchResponse>;

export interface WorkerOptions {
  readonly queue: EventQueue;
  readonly reconcile: ReconcilerInvoke;
  readonly batchSize?: number;
  readonly retryDelaySeconds?: number;
  /** Batches handled at once, like Lambda's concurrency; the queue never gives two of them one group. */
  readonly concurrency?: number;
  /**
   * After a batch that was not full, wait this long before the next receive, so that a busy
   * group's events gather and are folded in one reconcile (Lambda's batching window).
   */
  readonly batchWindowMs?: number;
  readonly onError?: (error: Error) => void;
}

export function toSqsRecord(message: ReceivedMessage): SQSRecord {
  return {
    messageId: message.receipt,
    receiptHandle: message.receipt,
    body: message.body,
    attributes: {
      ApproximateReceiveCount: String(message.receiveCount),
      SentTimestamp: String(message.sentAt),
      SenderId: 'local',
      ApproximateFirstReceiveTimestamp: String(Date.now()),
      MessageGroupId: message.group,
      MessageDeduplicationId: message.id,
    },
    messageAttributes: {},
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:local:000000000000:ringmaster-events.fifo',
    awsRegion: 'local',
  };
}

export interface Worker {
  stop(): Promise<void>;
}

export function startWorker(options: WorkerOptions): Worker {
  let running = true;
  const batchSize = options.batchSize ?? 10;
  const loop = async () => {
    while (running) {
      try {
        const messages = await options.queue.receive(batchSize, 1);
        if (!running || messages.length === 0) continue;
        const result = await options.reconcile({ Records: messages.map(toSqsRecord) }, localContext('reconciler'));
        const failed = new Set(result.batchItemFailures.map((f) => f.itemIdentifier));
        await options.queue.ack(messages.filter((m) => !failed.has(m.receipt)).map((m) => m.receipt));
        if (failed.size > 0) {
          // Back off exponentially per delivery (1 s, 2 s, 4 s, ... up to a minute), so an outage
          // of the store is waited out instead of using up the receives that lead to the DLQ.
          const attempts = Math.max(...messages.filter((m) => failed.has(m.receipt)).map((m) => m.receiveCount));
          await options.queue.release([...failed], Math.min(60, (options.retryDelaySeconds ?? 1) * 2 ** (attempts - 1)));
        }
        if (messages.length < batchSize && options.batchWindowMs) await new Promise((resolve) => setTimeout(resolve, options.batchWindowMs));
      } catch (error) {
        options.onError?.(error as Error);
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
  };
  const loops = Array.from({ length: options.concurrency ?? 4 }, loop);
  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}
