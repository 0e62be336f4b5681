/**
 * The reconciler: SQS FIFO batches in, stored documents out. Per resource group (message
 * group) it loads the state, folds the events through the pure reducer, computes the
 * documents, and writes its intent, the changed documents, the status, then the state. A group
 * either succeeds as a whole or all its messages are reported as failed, in order, so SQS
 * retries them in order (FIFO partial batch failure done right). A message that can never
 * be processed (not an event) goes to the dead-letter queue with its reason.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from '@aws-lambda-powertools/logger';
import middy from '@middy/core';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { type ControlPlaneEvent, controlPlaneEventSchema } from '../../shared/events/control-plane-event.ts';
import type { AcmeSettings } from '../../shared/certificates/acme-settings.ts';
import type { VmLayouts } from '../../shared/layout.ts';
import { type DocumentSigner, signDocument, signingEpoch } from '../../shared/contract/document-envelope.ts';
import { storeKeys } from '../../shared/contract/store-layout.ts';
import { type NudgePublisher, type ObjectStore, type OutgoingMessage, PreconditionFailed } from '../../shared/ports.ts';
import { fieldErrors, formatFieldErrors } from '../../shared/schema/errors.ts';
import { reconcile, type ReconcilePlan } from '../../shared/state/reconcile.ts';
import { emptyState, rgStateSchema } from '../../shared/state/rg-state.ts';
import { inParallel } from '../shared/in-parallel.ts';
import { loadSettledState, readStoredDocuments } from '../shared/state-store.ts';

/** A queued message the reconciler cannot process; `messageId` is the SQS record's. */
export interface PoisonMessage extends OutgoingMessage {
  readonly messageId: string;
}

export interface ReconcilerDependencies {
  readonly store: ObjectStore;
  /** Moves a message that can never be processed to the dead-letter queue, with the reason. */
  readonly deadLetter: (message: PoisonMessage, reason: string) => Promise<void>;
  readonly masterKey: string;
  /**
   * What signs every document written: the current online key and its delegation (renewed
   * daily by the renewer, so asked for at each run; a cached read is fine). Asked before any
   * write: without credentials (the renewer never ran) nothing is touched and the group is retried.
   */
  readonly signer: () => Promise<DocumentSigner>;
  readonly logger: Logger;
  /** The API's URL as clusters reach it (their servers call it back), when the control plane has one. */
  readonly apiUrl?: string;
  readonly layout?: VmLayouts;
  /** Where VMs order their TLS certificates (default: Let's Encrypt production). */
  readonly acme?: AcmeSettings;
  readonly now?: () => Date;
  /**
   * The queue's maximum receives (its redrive policy): on that last receive a failing group's
   * messages are dead-lettered here, with the real reason of the failure, instead of being moved
   * later by the queue with none. Without it, only the queue's redrive gives up.
   */
  readonly maxReceives?: number;
  /** Generations of each VM's document kept in the audit trail (default DEFAULT_HISTORY_DEPTH). */
  readonly historyDepth?: number;
  /**
   * Told of each document once it is written (its VM's agent fetches at once), never awaited:
   * see functions/shared/nudge-fan-out.ts. Without it agents find changes by polling.
   */
  readonly nudges?: NudgePublisher;
  /** Called after a group's writes, with the plan (the local runtime measures latency with it). */
  readonly onReconciled?: (plan: ReconcilePlan, events: readonly ControlPlaneEvent[]) => void;
}

const MAX_PARALLEL_WRITES = 16;


function parseRecord(record: SQSRecord): { event: ControlPlaneEvent } | { reason: string } {
  let value: unknown;
  try {
    value = JSON.parse(record.body);
  } catch (error) {
    return { reason: `not valid JSON: ${(error as Error).message}` };
  }
  const parsed = controlPlaneEventSchema.safeParse(value);
  if (!parsed.success) return { reason: `not a valid event: ${formatFieldErrors(fieldErrors(parsed.error)).slice(0, 10).join('; ')}` };
  if (parsed.data.resourceGroup !== record.attributes.MessageGroupId) {
    return { reason: `resourceGroup ${parsed.data.resourceGroup} differs from the message group ${record.attributes.MessageGroupId}` };
  }
  return { event: parsed.data };
}

export function createReconcilerHandler(deps: ReconcilerDependencies) {
  const now = deps.now ?? (() => new Date());

  async function reconcileGroup(group: string, records: readonly SQSRecord[]): Promise<void> {
    const events: ControlPlaneEvent[] = [];
    for (const record of records) {
      const parsed = parseRecord(record);
      if ('reason' in parsed) {
        deps.logger.warn('poison message sent to the dead-letter queue', { group, messageId: record.messageId, reason: parsed.reason });
        await deps.deadLetter({ id: record.attributes.MessageDeduplicationId ?? record.messageId, group, body: record.body, messageId: record.messageId }, parsed.reason);
      } else {
        events.push(parsed.event);
      }
    }
    if (events.length === 0) return;

    // An intent is finished when the status (the last write of its run) names its run.
    const { state, etag } = await loadSettledState(deps.store, group);
    // The previous run stopped between its intent and its status: what it left is read, and repaired.
    const found = state?.pendingWrite ? await readStoredDocuments(deps.store, group) : undefined;
    if (found) {
      deps.logger.warn('the previous run of this group did not finish: its documents are repaired', {
        resourceGroup: group,
        unfinishedSince: state?.pendingWrite?.since,
        storedDocuments: Object.keys(found.copies).length,
        strays: found.strays,
      });
    }
    // Asked before computing (cached by the shell): which epoch copies are signed in decides what is signed again.
    const signer = await deps.signer();
    const plan = reconcile(state ?? emptyState(group), events, {
      runId: randomUUID(),
      signingEpoch: signingEpoch(signer),
      masterKey: deps.masterKey,
      now: now().toISOString(),
      ...(deps.apiUrl ? { apiUrl: deps.apiUrl } : {}),
      ...(deps.layout ? { layout: deps.layout } : {}),
      ...(deps.acme ? { acme: deps.acme } : {}),
      ...(found ? { stored: found.copies } : {}),
      ...(deps.historyDepth ? { historyDepth: deps.historyDepth } : {}),
    });
    if (plan.unchanged) {
      deps.logger.info('only duplicates: nothing written', { resourceGroup: group, events: events.map((e) => e.id) });
      deps.onReconciled?.(plan, events);
      return;
    }
    // A state that would not read back would stop the group for good: refuse it before any write.
    const readable = rgStateSchema.safeParse(plan.intent);
    if (!readable.success) throw new Error(`the new state of ${group} would be invalid: ${formatFieldErrors(fieldErrors(readable.error)).slice(0, 5).join('; ')}`);
    // The intent first (the new state, marked with this run), then documents, then the status
    // naming the run: its commit mark. A crash before the status leaves an intent no status
    // names, and the next run of the group repairs the whole store from it, whatever batch that
    // run is (shared/state/reconcile.ts). No second state write: three writes an event, not four.
    // The conditional write makes a second run of the group (a redelivery racing a slow one) fail
    // at its first write, before it touches a document.
    // A run that changes no document, kubeconfig or cluster key has nothing a crash could leave
    // behind: the finished state, then the status.
    const touchesStore = plan.repair || plan.writes.length > 0 || plan.deletes.length > 0 || plan.kubeconfigDeletes.length > 0 || plan.clusterAuth !== undefined;
    const stateCondition = etag ? { ifMatch: etag } : { ifNoneMatch: '*' as const };
    await deps.store.put(storeKeys.state(group), JSON.stringify(touchesStore ? plan.intent : plan.state), stateCondition);
    const rewritten = new Set(plan.writes.map((document) => storeKeys.desired(group, document.vm)));
    await inParallel(found?.strays.filter((key) => !rewritten.has(key)) ?? [], MAX_PARALLEL_WRITES, (key) => deps.store.delete(key));
    await inParallel(plan.writes, MAX_PARALLEL_WRITES, async (document) => {
      await deps.store.put(storeKeys.desired(group, document.vm), JSON.stringify(signDocument(document, signer)));
      deps.nudges?.publish({ resourceGroup: group, vm: document.vm, generation: document.generation });
    });
    await inParallel(plan.deletes, MAX_PARALLEL_WRITES, (vm) => deps.store.delete(storeKeys.desired(group, vm)));
    await inParallel(plan.kubeconfigDeletes, MAX_PARALLEL_WRITES, (key) => deps.store.delete(key));
    if (plan.clusterAuth) await deps.store.put(storeKeys.clusterAuth(group), JSON.stringify(plan.clusterAuth));
    else if (plan.clusterAuth === null) await deps.store.delete(storeKeys.clusterAuth(group));
    await deps.store.put(storeKeys.status(group), JSON.stringify(plan.status));
    deps.logger.info('reconciled', {
      resourceGroup: group,
      events: plan.outcomes.map((o) => ({ id: o.eventId, outcome: o.outcome.kind })),
      documentsWritten: plan.writes.map((w) => `${w.vm}@${w.generation}`),
      documentsDeleted: plan.deletes,
      ...(plan.repair ? { repaired: true } : {}),
      ...(plan.kubeconfigDeletes.length > 0 ? { kubeconfigsDeleted: plan.kubeconfigDeletes } : {}),
    });
    deps.onReconciled?.(plan, events);
  }

  /** Dead-letters the records on their last receive, with the reason; returns those to retry. */
  async function giveUpOnLastReceive(group: string, records: readonly SQSRecord[], reason: string): Promise<SQSRecord[]> {
    const retry: SQSRecord[] = [];
    for (const record of records) {
      const receives = Number(record.attributes.ApproximateReceiveCount);
      if (deps.maxReceives === undefined || !(receives >= deps.maxReceives)) {
        retry.push(record);
        continue;
      }
      try {
        await deps.deadLetter({ id: record.attributes.MessageDeduplicationId ?? record.messageId, group, body: record.body, messageId: record.messageId }, `failed ${receives} times; last: ${reason}`);
        deps.logger.error('gave up on a message after its last receive: dead-lettered with the reason', { resourceGroup: group, messageId: record.messageId, receives, reason });
      } catch (error) {
        // The dead-letter queue is unreachable too: the queue's own redrive moves it (without our reason).
        deps.logger.error('could not dead-letter a message; the queue will move it', { resourceGroup: group, messageId: record.messageId, error: (error as Error).message });
        retry.push(record);
      }
    }
    return retry;
  }

  const handler = async (event: SQSEvent): Promise<SQSBatchResponse> => {
    const groups = new Map<string, SQSRecord[]>();
    for (const record of event.Records) {
      const group = record.attributes.MessageGroupId ?? '';
      groups.set(group, [...(groups.get(group) ?? []), record]);
    }
    const failures: string[] = [];
    await Promise.all(
      [...groups].map(async ([group, records]) => {
        try {
          await reconcileGroup(group, records);
        } catch (error) {
          const reason = (error as Error).message;
          const level = error instanceof PreconditionFailed ? 'warn' : 'error';
          deps.logger[level]('reconcile failed; the group is retried in order', { resourceGroup: group, error: reason });
          failures.push(...(await giveUpOnLastReceive(group, records, reason)).map((r) => r.messageId));
        }
      }),
    );
    return { batchItemFailures: failures.map((itemIdentifier) => ({ itemIdentifier })) };
  };
  return middy<SQSEvent, SQSBatchResponse>(handler);
}
