/**
 * `postEvents`: portal events, one or a batch. Valid → every event is durably queued
 * (group = resource group, deduplication id = event id) and the answer is 202 with the ids;
 * otherwise a 400 that names each bad event, field and reason, and nothing of the batch is
 * queued. (Credentials, size and JSON are checked by the router.)
 */
import type { RoutesOf } from '../../shared/contract/routes.ts';
import type { Logger } from '@aws-lambda-powertools/logger';
import { parsePortalEvents } from '../../shared/events/control-plane-event.ts';
import type { EventQueue } from '../../shared/ports.ts';
import type { RouteHandlers } from '../shared/api.ts';
import { badRequest, json } from '../shared/http.ts';

export interface IngestDependencies {
  readonly queue: EventQueue;
  readonly logger: Logger;
}

export function createIngestHandlers(deps: IngestDependencies): RouteHandlers<RoutesOf<'ingest'>> {
  return {
    postEvents: async ({ body }) => {
      const parsed = parsePortalEvents(body.value);
      if (parsed.errors.length > 0) {
        deps.logger.info('events refused', { errors: parsed.errors.length });
        throw badRequest(`${new Set(parsed.errors.map((e) => e.index)).size} event(s) are invalid; nothing was accepted`, parsed.errors);
      }
      await deps.queue.send(parsed.events.map((e) => ({ id: e.id, group: e.resourceGroup, body: JSON.stringify(e) })));
      deps.logger.info('events accepted', { ids: parsed.events.map((e) => e.id), types: parsed.events.map((e) => e.type) });
      return json(202, { accepted: parsed.events.map((e) => e.id) });
    },
  };
}
