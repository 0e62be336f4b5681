/** The request and response bodies of the HTTP API that belong to no other contract. */
import { z } from 'zod';
import { MAX_EVENTS_PER_REQUEST, eventId, portalEventSchema } from '../events/portal-events.ts';

/** `postEvents`: one event, or a batch (all-or-nothing). */
export const portalEventsBodySchema = z.union([portalEventSchema, z.array(portalEventSchema).min(1).max(MAX_EVENTS_PER_REQUEST)]);

/** `listResourceGroups`: every group with a status, by name. */
export const resourceGroupListSchema = z.strictObject({ resourceGroups: z.array(z.strictObject({ name: z.string() })) });

/** The events (or cluster calls) now durably queued, by id. */
export const acceptedSchema = z.strictObject({ accepted: z.array(z.string()) });

export const kubeconfigStoredSchema = acceptedSchema.extend({
  /** The store key the portal's read goes to. */
  location: z.string(),
  expiresAt: z.string(),
});

export const deadLetterListSchema = z.strictObject({
  deadLetters: z.array(
    z.strictObject({
      id: z.string(),
      resourceGroup: z.string(),
      reason: z.string(),
      /** The event's type and id, when the letter's body has them. */
      type: z.string().optional(),
      eventId: z.string().optional(),
    }),
  ),
});

export const deadLetterReplaySchema = z.strictObject({
  /** The ids to replay; all dead letters when absent. */
  ids: z.array(eventId).min(1).max(100).optional(),
});

export const replayedSchema = z.strictObject({ replayed: z.number().int().min(0) });

export const healthSchema = z.strictObject({
  ok: z.boolean(),
  /** Events waiting in the local queue (local mode only). */
  queued: z.number().int().min(0).optional(),
});

/** The API's own OpenAPI document. */
export const openApiDocumentSchema = z.record(z.string(), z.unknown());
