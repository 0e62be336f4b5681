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

export function createWebhookHandler(deps: WebhookDependencies) {
  const seen = new SeenSignatures();
  const now = deps.now ?? Date.now;
  const handler = async (event: HttpEvent): Promise<HttpResult> => {
    const rg = dnsLabel.safeParse(event.pathParameters?.rg);
    if (!rg.success) return problem(404, 'Not Found', 'no such resource group');
    const key = await deps.webhookKey(rg.data);
    // Unknown group and wrong signature answer alike: the caller learns nothing about which groups exist.
    if (!key) return problem(401, 'Unauthorized', 'the signature cannot be verified');
    const body = readJsonBody(event, MAX_WEBHOOK_BODY_BYTES);
    if (!body.ok) return body.response;
    const signature = header(event, SIGNATURE_HEADER);
    const check = verifyWebhook(key, header(event, TIMESTAMP_HEADER), signature, body.raw, Math.floor(now() / 1000));
    if (!check.ok) return problem(401, 'Unauthorized', check.reason);
    if (seen.has(signature!, now())) return problem(409, 'Conflict', 'this exact request was already accepted (replay)');
    const parsed = endpointWebhookBodySchema.safeParse(body.value);
    if (!parsed.success) return problem(400, 'Bad Request', 'the endpoint changes are invalid; nothing was accepted', fieldErrors(parsed.error));

    const id = webhookEventId(signature!);
    const queued: EndpointsChangedEvent = {
      id,
      type: 'endpoints.changed',
      resourceGroup: rg.data,
      occurredAt: new Date(Number(header(event, TIMESTAMP_HEADER)) * 1000).toISOString(),
      payload: parsed.data,
    };
    const message = JSON.stringify(queued);
    // Defaults filled in can make the queued form larger than the request: it must still fit a message.
    if (Buffer.byteLength(message) > MAX_WEBHOOK_BODY_BYTES) {
      return problem(413, 'Content Too Large', `the changes take more than ${MAX_WEBHOOK_BODY_BYTES} bytes once queued; send them in smaller batches`);
    }
    await deps.queue.send([{ id, group: rg.data, body: message }]);
    seen.add(signature!, now());
    deps.logger.info('endpoint changes accepted', { resourceGroup: rg.data, id, changes: parsed.data.changes.length, resync: parsed.data.resync });
    return json(202, { accepted: [id] });
  };
  return middy<HttpEvent, HttpResult>(handler).use(httpErrorHandler({ logger: (error) => deps.logger.error('webhook failed', error as Error) }));
}
