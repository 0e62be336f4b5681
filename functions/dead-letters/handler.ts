/**
 * The `dead-letters` function: what could not be processed, with the reason
 * (`listDeadLetters`), and sending it back once the cause is fixed
 * (`replayDeadLetters`).
 */
import type { RoutesOf } from '../../shared/contract/routes.ts';
import type { Logger } from '@aws-lambda-powertools/logger';
import type { EventQueue } from '../../shared/ports.ts';
import { parseBody, type RouteHandlers } from '../shared/api.ts';
import { json } from '../shared/http.ts';

export interface DeadLetterDependencies {
  readonly queue: EventQueue;
  readonly logger: Logger;
}

/** Event type and id from a dead letter's body, when it has them, so the listing says what it was. */
function describe(body: string): { type?: string; eventId?: string } {
  try {
    const value = JSON.parse(body) as { type?: unknown; id?: unknown };
    return { ...(typeof value.type === 'string' ? { type: value.type } : {}), ...(typeof value.id === 'string' ? { eventId: value.id } : {}) };
  } catch {
    return {};
  }
}

/** Enough for any real backlog; a listing is one request, so it stays bounded. */
const MAX_LISTED = 1000;

export function createDeadLetterHandlers(deps: DeadLetterDependencies): RouteHandlers<RoutesOf<'dead-letters'>> {
  return {
    listDeadLetters: async () => {
      const letters = await deps.queue.listDeadLetters(MAX_LISTED);
      return json(200, { deadLetters: letters.map((letter) => ({ id: letter.id, resourceGroup: letter.group, reason: letter.reason, ...describe(letter.body) })) });
    },
    replayDeadLetters: async ({ body }) => {
      const { ids } = parseBody('replayDeadLetters', body, 'invalid replay request');
      const replayed = await deps.queue.replayDeadLetters(ids);
      deps.logger.info('dead letters replayed', { replayed, ids: ids ?? 'all' });
      return json(200, { replayed });
    },
  };
}
