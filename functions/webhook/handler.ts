/**
 * `POST /v1/clusters/{rg}/endpoints`: EndpointSlice changes from a cluster's watcher, signed
 * with the cluster's webhook key. Checked (signature, freshness, replay, body) and queued as
 * one `endpoints.changed` event whose id is derived from the signature, so a replay is never
 * applied twice even where this function's memory of signatures does not reach.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import middy from '@middy/core';
import httpErrorHandler from '@middy/http-error-handler';
import { endpointWebhookBodySchema } from '../../shared/events/endpoint-events.ts';
import type { EndpointsChangedEvent } from '../../shared/events/endpoint-events.ts';
import { fieldErrors } from '../../shared/schema/errors.ts';
import { dnsLabel } from '../../shared/schema/primitives.ts';
import type { EventQueue } from '../../shared/ports.ts';
import { SIGNATURE_HEADER, SIGNATURE_TOLERANCE_SECONDS, TIMESTAMP_HEADER, verifyWebhook, webhookEventId } from '../../shared/webhook-signature.ts';
import { type HttpEvent, type HttpResult, header, json, problem, readJsonBody } from '../shared/http.ts';

export const MAX_WEBHOOK_BODY_BYTES = 256 * 1024;

export interface WebhookDependencies {
  readonly queue: EventQueue;
  readonly webhookKey: (resourceGroup: string) => Promise<string | undefined>;
  readonly logger: Logger;
  readonly now?: () => number;
}

/** Signatures seen within the tolerance window: a second one is a replay. */
class SeenSignatures {
  readonly #seen = new Map<string, number>();
  has(signature: string, now: number): boolean {
    for (const [key, until] of this.#seen) if (until < now) this.#seen.delete(key);
    return this.#seen.has(signature);
  }
  add(signature: string, now: number): void {
    this.#seen.set(signature, now + SIGNATURE_TOLERANCE_SECONDS * 2 * 1000);
  }
}

/** A cluster call that passed the checks: its group, raw and parsed body, and the queued event id. */
export interface VerifiedClusterRequest {
  readonly resourceGroup: string;
  readonly value: unknown;
  readonly id: string;
  /** The signed timestamp as an ISO time: when the cluster sent it. */
  readonly sentAt: string;
  readonly signature: string;
}

/**
 * The checks every call from a cluster passes: a known group, a fresh signature by its key
 * over the exact body, no replay, a body within the limit. Answers the problem otherwise.
 */
export function clusterRequestVerifier(deps: Pick<WebhookDependencies, 'webhookKey' | 'now'>) {
  const seen = new SeenSignatures();
  const now = deps.now ?? Date.now;
  return {
    async verify(event: HttpEvent, maxBytes = MAX_WEBHOOK_BODY_BYTES): Promise<VerifiedClusterRequest | HttpResult> {
      const rg = dnsLabel.safeParse(event.pathParameters?.rg);
      if (!rg.success) return problem(404, 'Not Found', 'no such resource group');
      const key = await deps.webhookKey(rg.data);
      // Unknown group and wrong signature answer alike: the caller learns nothing about which groups exist.
      if (!key) return problem(401, 'Unauthorized', 'the signature cannot be verified');
      const body = readJsonBody(event, maxBytes);
      if (!body.ok) return body.response;
      const signature = header(event, SIGNATURE_HEADER);
      const check = verifyWebhook(key, header(event, TIMESTAMP_HEADER), signature, body.raw, Math.floor(now() / 1000));
      if (!check.ok) return problem(401, 'Unauthorized', check.reason);
      if (seen.has(signature!, now())) return problem(409, 'Conflict', 'this exact request was already accepted (replay)');
      return {
        resourceGroup: rg.data,
        value: body.value,
        id: webhookEventId(signature!),
        sentAt: new Date(Number(header(event, TIMESTAMP_HEADER)) * 1000).toISOString(),
        signature: signature!,
      };
    },
    /** Call once the request is accepted: the same bytes again are a replay. */
    accepted(request: VerifiedClusterRequest): void {
      seen.add(request.signature, now());
    },
  };
}

export const isVerified = (result: VerifiedClusterRequest | HttpResult): result is VerifiedClusterRequest => 'signature' in result;

export function createWebhookHandler(deps: WebhookDependencies) {
  const verifier = clusterRequestVerifier(deps);
  const handler = async (event: HttpEvent): Promise<HttpResult> => {
    const request = await verifier.verify(event);
    if (!isVerified(request)) return request;
    const parsed = endpointWebhookBodySchema.safeParse(request.value);
    if (!parsed.success) return problem(400, 'Bad Request', 'the endpoint changes are invalid; nothing was accepted', fieldErrors(parsed.error));

    const { id, resourceGroup } = request;
    const queued: EndpointsChangedEvent = { id, type: 'endpoints.changed', resourceGroup, occurredAt: request.sentAt, payload: parsed.data };
    const message = JSON.stringify(queued);
    // Defaults filled in can make the queued form larger than the request: it must still fit a message.
    if (Buffer.byteLength(message) > MAX_WEBHOOK_BODY_BYTES) {
      return problem(413, 'Content Too Large', `the changes take more than ${MAX_WEBHOOK_BODY_BYTES} bytes once queued; send them in smaller batches`);
    }
    await deps.queue.send([{ id, group: resourceGroup, body: message }]);
    verifier.accepted(request);
    deps.logger.info('endpoint changes accepted', { resourceGroup, id, changes: parsed.data.changes.length, resync: parsed.data.resync });
    return json(202, { accepted: [id] });
  };
  return middy<HttpEvent, HttpResult>(handler).use(httpErrorHandler({ logger: (error) => deps.logger.error('webhook failed', error as Error) }));
}
