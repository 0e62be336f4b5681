/**
 * The EventQueue port on SQS FIFO (or anything that speaks its API, such as moto):
 * `MessageGroupId` = resource group, `MessageDeduplicationId` = event id. Dead letters go to
 * the DLQ with the reason as a message attribute, where `ringmaster dlq list` shows it.
 */
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SQSClient,
  type Message,
} from '@aws-sdk/client-sqs';
import type { DeadLetter, EventQueue, OutgoingMessage, ReceivedMessage } from '../shared/ports.ts';

export interface SqsQueueConfig {
  readonly queueUrl: string;
  readonly deadLetterQueueUrl: string;
  readonly endpoint?: string;
  readonly region?: string;
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string };
}

const chunks = <T>(list: readonly T[], size: number): T[][] => Array.from({ length: Math.ceil(list.length / size) }, (_, i) => list.slice(i * size, i * size + size));

function failIfAny(result: { Failed?: Array<{ Id?: string; Message?: string; Code?: string }> | undefined }, what: string): void {
  if (result.Failed && result.Failed.length > 0) {
    throw new Error(`${what} failed for ${result.Failed.length} message(s): ${result.Failed.map((f) => `${f.Code ?? ''} ${f.Message ?? ''}`.trim()).join('; ')}`);
  }
}

export class SqsQueue implements EventQueue {
  readonly client: SQSClient;
  readonly #config: SqsQueueConfig;

  constructor(config: SqsQueueConfig, client?: SQSClient) {
    this.#config = config;
    this.client =
      client ??
      new SQSClient({
        region: config.region ?? 'us-east-1',
        ...(config.endpoint ? { endpoint: config.endpoint } : {}),
        ...(config.credentials ? { credentials: config.credentials } : {}),
      });
  }

  async send(messages: readonly OutgoingMessage[]): Promise<void> {
    for (const batch of chunks(messages, 10)) {
      const result = await this.client.send(
        new SendMessageBatchCommand({
          QueueUrl: this.#config.queueUrl,
          Entries: batch.map((message, index) => ({ Id: String(index), MessageBody: message.body, MessageGroupId: message.group, MessageDeduplicationId: message.id })),
        }),
      );
      failIfAny(result, 'SendMessageBatch');
    }
  }

  #received(message: Message): ReceivedMessage {
    const attributes = message.Attributes ?? {};
    return {
      id: attributes.MessageDeduplicationId ?? message.MessageId ?? '',
      group: attributes.MessageGroupId ?? '',
      body: message.Body ?? '',
      receipt: message.ReceiptHandle ?? '',
      receiveCount: Number(attributes.ApproximateReceiveCount ?? '1'),
      sentAt: Number(attributes.SentTimestamp ?? '0'),
    };
  }

  async receive(max: number, waitSeconds: number): Promise<ReceivedMessage[]> {
    const result = await this.client.send(
      new ReceiveMessageCommand({
        QueueUrl: this.#config.queueUrl,
        MaxNumberOfMessages: Math.min(10, max),
        WaitTimeSeconds: Math.min(20, Math.round(waitSeconds)),
        MessageSystemAttributeNames: ['ApproximateReceiveCount', 'SentTimestamp', 'MessageGroupId', 'MessageDeduplicationId'],
      }),
    );
    return (result.Messages ?? []).map((message) => this.#received(message));
  }

  async ack(receipts: readonly string[]): Promise<void> {
    await this.#deleteFrom(this.#config.queueUrl, receipts);
  }

  async #deleteFrom(queueUrl: string, receipts: readonly string[]): Promise<void> {
    for (const batch of chunks(receipts, 10)) {
      const result = await this.client.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: batch.map((receipt, index) => ({ Id: String(index), ReceiptHandle: receipt })) }));
      failIfAny(result, 'DeleteMessageBatch');
    }
  }

  async #setVisibility(queueUrl: string, receipts: readonly string[], seconds: number): Promise<void> {
    for (const batch of chunks(receipts, 10)) {
      const result = await this.client.send(
        new ChangeMessageVisibilityBatchCommand({ QueueUrl: queueUrl, Entries: batch.map((receipt, index) => ({ Id: String(index), ReceiptHandle: receipt, VisibilityTimeout: Math.round(seconds) })) }),
      );
      failIfAny(result, 'ChangeMessageVisibilityBatch');
    }
  }

  async release(receipts: readonly string[], delaySeconds: number): Promise<void> {
    await this.#setVisibility(this.#config.queueUrl, receipts, delaySeconds);
  }

  /** Sends a copy to the DLQ with its reason (the Lambda event source then deletes the original). */
  async sendDeadLetter(message: OutgoingMessage, reason: string): Promise<void> {
    await this.client.send(
      new SendMessageCommand({
        QueueUrl: this.#config.deadLetterQueueUrl,
        MessageBody: message.body,
        MessageGroupId: message.group,
        MessageDeduplicationId: message.id,
        MessageAttributes: { reason: { DataType: 'String', StringValue: reason.slice(0, 4000) } },
      }),
    );
  }

  async deadLetter(message: ReceivedMessage, reason: string): Promise<void> {
    await this.sendDeadLetter(message, reason);
    await this.ack([message.receipt]);
  }

  async #receiveDeadLetters(max: number, visibilityTimeout: number): Promise<DeadLetter[]> {
    const result = await this.client.send(
      new ReceiveMessageCommand({
        QueueUrl: this.#config.deadLetterQueueUrl,
        MaxNumberOfMessages: Math.min(10, max),
        VisibilityTimeout: visibilityTimeout,
        MessageAttributeNames: ['reason'],
        MessageSystemAttributeNames: ['MessageGroupId', 'MessageDeduplicationId'],
      }),
    );
    return (result.Messages ?? []).map((message) => ({
      id: message.Attributes?.MessageDeduplicationId ?? message.MessageId ?? '',
      group: message.Attributes?.MessageGroupId ?? '',
      body: message.Body ?? '',
      // Messages moved by the redrive policy carry no reason of ours.
      reason: message.MessageAttributes?.reason?.StringValue ?? 'exceeded the maximum receives of the queue',
      receipt: message.ReceiptHandle ?? '',
    }));
  }

  /**
   * Every letter, up to `max`: received round by round (each round hidden for a while, so the
   * next one brings others), then all made visible again at once. FIFO hides a group's later
   * letters while its first ten are in flight, so a group shows at most ten here (replay, which
   * deletes as it goes, reaches them all).
   */
  async listDeadLetters(max: number): Promise<DeadLetter[]> {
    const letters = new Map<string, DeadLetter>();
    const receipts: string[] = [];
    try {
      for (let round = 0; round < 1000 && letters.size < max; round++) {
        const batch = await this.#receiveDeadLetters(10, 30);
        receipts.push(...batch.map((letter) => letter.receipt));
        const fresh = batch.filter((letter) => !letters.has(letter.id));
        for (const letter of fresh) letters.set(letter.id, letter);
        if (fresh.length === 0) break;
      }
    } finally {
      await this.#setVisibility(this.#config.deadLetterQueueUrl, receipts, 0);
    }
    return [...letters.values()].slice(0, max);
  }

  /**
   * Receives the DLQ round by round, sending the chosen letters back and deleting them (which
   * frees their FIFO group for the next ones), and makes the others visible again at once.
   * Stops when a round brings nothing new.
   */
  async replayDeadLetters(ids?: readonly string[]): Promise<number> {
    const seen = new Set<string>();
    let replayed = 0;
    for (let round = 0; round < 1000; round++) {
      const batch = await this.#receiveDeadLetters(10, 30);
      const fresh = batch.filter((letter) => !seen.has(letter.id));
      for (const letter of batch) seen.add(letter.id);
      const chosen = fresh.filter((letter) => !ids || ids.includes(letter.id));
      const now = Date.now();
      await this.send(chosen.map((letter) => ({ id: `${letter.id}#replay-${now}`.slice(0, 128), group: letter.group, body: letter.body })));
      await this.#deleteFrom(this.#config.deadLetterQueueUrl, chosen.map((letter) => letter.receipt));
      replayed += chosen.length;
      const others = batch.filter((letter) => !chosen.includes(letter));
      await this.#setVisibility(this.#config.deadLetterQueueUrl, others.map((letter) => letter.receipt), 0);
      if (fresh.length === 0) break;
    }
    return replayed;
  }
}
