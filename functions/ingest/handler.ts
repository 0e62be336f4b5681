/**
 * `POST /v1/events`: portal events, one or a batch. Valid and authenticated → every event is
 * durably queued (group = resource group, deduplication id = event id) and the answer is 202
 * with the ids; otherwise a 4xx that names each bad event, field and reason, and nothing of
 * the batch is queued.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import middy from '@middy/core';
import httpErrorHandler from '@middy/http-error-handler';
import { parsePortalEvents } from '../../shared/events/control-plane-event.ts';
import type { EventQueue } from '../../shared/ports.ts';
import { type Authorizer, type HttpEvent, type HttpResult, json, problem, readJsonBody, unauthorized } from '../shared/http.ts';

/** SQS takes messages of up to 256 KiB; a request of this size fits in any batch split. */
export const MAX_EVENTS_BODY_BYTES = 256 * 1024;

export interface IngestDependencies {
  readonly queue: EventQueue;
  readonly authorize: Authorizer;
  readonly logger: Logger;
}

export function createIngestHandler(deps: IngestDependencies) {
  const handler = async (event: HttpEvent): Promise<HttpResult> => {
    if (!deps.authorize(event)) return unauthorized();
    const body = readJsonBody(event, MAX_EVENTS_BODY_BYTES);
    if (!body.ok) return body.response;
    const parsed = parsePortalEvents(body.value);
    if (parsed.errors.length > 0) {
      deps.logger.info('events refused', { errors: parsed.errors.length });
      return problem(400, 'Bad Request', `${new Set(parsed.errors.map((e) => e.index)).size} event(s) are invalid; nothing was accepted`, parsed.errors);
    }
    await deps.queue.send(parsed.events.map((e) => ({ id: e.id, group: e.resourceGroup, body: JSON.stringify(e) })));
    deps.logger.info('events accepted', { ids: parsed.events.map((e) => e.id), types: parsed.events.map((e) => e.type) });
    return json(202, { accepted: parsed.events.map((e) => e.id) });
  };
  return middy<HttpEvent, HttpResult>(handler).use(httpErrorHandler({ logger: (error) => deps.logger.error('ingest failed', error as Error) }));
}
