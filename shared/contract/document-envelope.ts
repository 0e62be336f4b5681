/**
 * The stored document: what the reconciler writes to `desired/<rg>/<vm>.json` and the agent
 * (and `ringmaster kubeconfig` on the server) reads back. Its content is the VM document of
 * ../schema/document.ts; its envelope says which stored copy this is. The content hash covers
 * everything but the envelope, so a document re-stored under a new generation keeps its hash.
 */
import { z } from 'zod';
import { contentHash, sha256Hex } from '../hash.ts';
import { vmDocumentContentSchema, vmDocumentSchema } from '../schema/document.ts';
import { fieldErrors, formatFieldErrors } from '../schema/errors.ts';

const envelopeShape = {
  /** `sha256:<hex>` of the content (see `documentHash`). */
  hash: vmDocumentSchema.shape.hash,
  /** Counts the stored versions of this VM's document: an agent never goes back to a lower one. */
  generation: z.number().int().min(1),
};

/** The envelope's fields: they describe the stored copy, so the content hash leaves them out. */
export const ENVELOPE_FIELDS: ReadonlySet<string> = new Set(Object.keys(envelopeShape));

export const storedDocumentSchema = vmDocumentContentSchema.extend(envelopeShape);

export type StoredDocument = z.output<typeof storedDocumentSchema>;

/**
 * A document's hash: canonical JSON of the content without its files' contents, which each
 * file stands for by its own `sha256`. A large file (a webgateway's haproxy.cfg) is so hashed
 * once, as raw text, and an agent can tell which files changed without comparing them.
 */
export function documentHash(document: Readonly<Record<string, unknown>>): string {
  const body: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(document)) {
    if (ENVELOPE_FIELDS.has(key)) continue;
    body[key] = key === 'files' && Array.isArray(value) ? value.map(({ content: _content, ...file }: Record<string, unknown>) => file) : value;
  }
  return contentHash(body);
}

/** The document hash matches, and so does every file's content hash. */
export function hasValidHash(document: Readonly<Record<string, unknown>>): boolean {
  const files = Array.isArray(document.files) ? (document.files as Array<Record<string, unknown>>) : [];
  const filesIntact = files.every((file) => typeof file.content === 'string' && file.sha256 === `sha256:${sha256Hex(file.content)}`);
  return filesIntact && typeof document.hash === 'string' && document.hash === documentHash(document);
}

/** Whose document a reader expects: an agent accepts only its own. */
export interface DocumentOwner {
  readonly resourceGroup: string;
  readonly vm: string;
}

export type DocumentCheck = { readonly document: StoredDocument } | { readonly reason: string };

/**
 * Checks a stored document's text: JSON, the schema, every hash, and (given an owner) that it
 * is that VM's. Every reader of stored documents goes through here, so they cannot disagree.
 */
export function verifyStoredDocument(body: string, owner?: DocumentOwner): DocumentCheck {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch (error) {
    return { reason: `the document is not valid JSON: ${(error as Error).message}` };
  }
  const parsed = storedDocumentSchema.safeParse(value);
  if (!parsed.success) return { reason: `the document does not match the schema: ${formatFieldErrors(fieldErrors(parsed.error)).slice(0, 5).join('; ')}` };
  const document = parsed.data;
  if (owner && (document.resourceGroup !== owner.resourceGroup || document.vm !== owner.vm)) {
    return { reason: `the document is for ${document.resourceGroup}/${document.vm}, not for ${owner.resourceGroup}/${owner.vm}` };
  }
  if (!hasValidHash(document)) return { reason: 'the document hash (or a file hash) does not match its content' };
  return { document };
}
