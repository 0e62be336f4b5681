/** Every error the HTTP API answers is an RFC 9457 problem: a title, a sentence, and each bad field with its reason. */
import { z } from 'zod';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export const problemFieldErrorSchema = z.strictObject({
  /** The event's index in a batch, and its id when it had a usable one. */
  index: z.number().int().min(0).optional(),
  id: z.string().optional(),
  /** The field's path (`[2].payload.vm.cpu`, `rg`, `body`), empty for the whole body. */
  field: z.string(),
  reason: z.string(),
});

export const problemSchema = z.strictObject({
  type: z.string(),
  title: z.string(),
  status: z.number().int().min(400).max(599),
  detail: z.string(),
  errors: z.array(problemFieldErrorSchema).optional(),
});

export type Problem = z.output<typeof problemSchema>;
export type ProblemFieldError = z.output<typeof problemFieldErrorSchema>;
