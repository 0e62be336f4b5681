/**
 * The ports the shells implement: an object store (S3's semantics) and a FIFO queue with
 * groups (SQS FIFO's). The core never calls them; handlers and the local runtime do.
 */

export interface StoredObject {
  readonly body: string;
  readonly etag: string;
}

/** A conditional write lost its race: someone else wrote since we read. */
export class PreconditionFailed extends Error {
  constructor(key: string) {
    super(`precondition failed for ${key}: it changed since it was read`);
    this.name = 'PreconditionFailed';
  }
}

export interface PutOptions {
  /** Write only if the object still has this ETag. */
  readonly ifMatch?: string;
  /** `*`: write only if the object does not exist yet. */
  readonly ifNoneMatch?: '*';
  readonly contentType?: string;
}

export interface ObjectStore {
  /** `undefined` when there is no such object. */
  get(key: string): Promise<StoredObject | undefined>;
  put(key: string, body: string, options?: PutOptions): Promise<{ etag: string }>;
  delete(key: string): Promise<void>;
  list(prefix: string): Promise<string[]>;
}

export interface OutgoingMessage {
  /** Deduplication id: the event id. */
  readonly id: string;
  /** Messages of one group are delivered in order, one batch at a time: the resource group. */
  readonly group: string;
  readonly body: string;
}

export interface ReceivedMessage extends OutgoingMessage {
  readonly receipt: string;
  readonly receiveCount: number;
  readonly sentAt: number;
}

export interface DeadLetter {
  readonly id: string;
  readonly group: string;
  readonly body: string;
  readonly reason: string;
  readonly receipt: string;
}

export interface EventQueue {
  send(messages: readonly OutgoingMessage[]): Promise<void>;
  receive(max: number, waitSeconds: number): Promise<ReceivedMessage[]>;
  /** Done with it: never delivered again. */
  ack(receipts: readonly string[]): Promise<void>;
  /** Not done: deliver it again after `delaySeconds` (and nothing after it in its group before). */
  release(receipts: readonly string[], delaySeconds: number): Promise<void>;
  /** Moves a message that can never be processed to the dead-letter queue, reason kept. */
  deadLetter(message: ReceivedMessage, reason: string): Promise<void>;
  listDeadLetters(max: number): Promise<DeadLetter[]>;
  /** Sends the dead letters with these ids (all when none are given) back to the main queue, under new deduplication ids. */
  replayDeadLetters(ids?: readonly string[]): Promise<number>;
}

/**
 * Tells a VM's agent that its document changed (shared/contract/nudges.ts). Best effort: a nudge
 * lost costs at most the agent's safety poll, so a failure is logged, never fails a reconcile.
 */
export interface NudgePublisher {
  publish(nudge: { readonly resourceGroup: string; readonly vm: string; readonly generation: number }): void | Promise<void>;
}
