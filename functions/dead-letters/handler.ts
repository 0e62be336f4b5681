/**
 * `GET /v1/dead-letters` and `POST /v1/dead-letters/replay`: what could not be processed,
 * with the reason, and sending it back once the cause is fixed.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import middy from '@middy/core';
import httpErrorHandler from '@middy/http-error-handler';
import { z } from 'zod';
import type { EventQueue } from '../../shared/ports.ts';
import { fieldErrors } from '../../shared/schema/errors.ts';
import { eventId } from '../../shared/events/portal-events.ts';
import { type Authorizer, type HttpEvent, type HttpResult, json, problem, readJsonBody, unauthorized } from '../shared/http.ts';

export interface DeadLetterDependencies {
  readonly queue: EventQueue;
  readonly authorize: Authorizer;
  readonly logger: Logger;
}

const replayBodySchema = z.strictObject({
  /** The ids to replay; all dead letters when absent. */
  ids: z.array(eventId).min(1).max(100).optional(),
});

/** Event type and id from a dead letter's body, when it has them, so the listing says what it was. */
function describe(body: string): { type?: string; eventId?: string } {
  try {
    const value = JSON.parse(body) as { type?: unknown; id?: unknown };
    return { ...(typeof value.type === 'string' ? { type: value.type } : {}), ...(typeof value.id === 'string' ? { eventId: value.id } : {}) };
  } catch {
    return {};
  }
}

export function createDeadLetterHandlers(deps: DeadLetterDependencies) {
  const list = async (event: HttpEvent): Promise<HttpResult> => {
    if (!deps.authorize(event)) return unauthorized();
    const letters = await deps.queue.listDeadLetters(100);
    return json(200, { deadLetters: letters.map((letter) => ({ id: letter.id, resourceGroup: letter.group, reason: letter.reason, ...describe(letter.body) })) });
  };
  const replay = async (event: HttpEvent): Promise<HttpResult> => {
    if (!deps.authorize(event)) return unauthorized();
    const body = readJsonBody(event, 64 * 1024);
    if (!body.ok) return body.response;
    const parsed = replayBodySchema.safeParse(body.value);
    if (!parsed.success) return problem(400, 'Bad Request', 'invalid replay request', fieldErrors(parsed.error));
    const replayed = await deps.queue.replayDeadLetters(parsed.data.ids);
    deps.logger.info('dead letters replayed', { replayed, ids: parsed.data.ids ?? 'all' });
    return json(200, { replayed });
  };
  const onError = { logger: (error: unknown) => deps.logger.error('dead-letter request failed', error as Error) };
  return {
    list: middy<HttpEvent, HttpResult>(list).use(httpErrorHandler(onError)),
    replay: middy<HttpEvent, HttpResult>(replay).use(httpErrorHandler(onError)),
  };
}
