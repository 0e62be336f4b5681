/**
 * The envelope of every event that travels through the queue: its id (the queue's deduplication
 * key), its type, the resource group it belongs to (the queue's message group), when it
 * happened, and its payload. One place, so the event kinds cannot drift apart.
 */
import { z } from 'zod';
import { dnsLabel } from '../schema/primitives.ts';
import { eventId } from './portal-events.ts';

export function queuedEventSchema<Type extends string, Payload extends z.ZodType>(type: Type, payload: Payload) {
  return z.strictObject({ id: eventId, type: z.literal(type), resourceGroup: dnsLabel, occurredAt: z.iso.datetime({ offset: true }), payload });
}
