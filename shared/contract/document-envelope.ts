/**
 * The stored document: what the reconciler writes to `desired/<rg>/<vm>.json` and the agent
 * (and `ringmaster kubeconfig` on the server) reads back. Its content is the VM document of
 * ../schema/document.ts; its envelope says which stored copy this is and who vouches for it.
 * The content hash covers everything but the envelope, so a document re-stored under a new
 * generation (or re-signed) keeps its hash; the signature covers the hash and the envelope.
 */
import { z } from 'zod';
import { canonicalJson, contentHash, sha256Hex } from '../hash.ts';
import { vmDocumentContentSchema, vmDocumentSchema } from '../schema/document.ts';
import { fieldErrors, formatFieldErrors } from '../schema/errors.ts';
import { checkDelegation, type Delegation, delegationHoldsAt, delegationSchema, keyIdSchema } from './delegation.ts';
import { verifyOnlineSignature } from './document-signing.ts';
import { followAnnouncements, type RootAnnouncement, rootAnnouncementSchema, type RootTrust } from './root-announcement.ts';

const envelopeShape = {
  /** `sha256:<hex>` of the content (see `documentHash`). */
  hash: vmDocumentSchema.shape.hash,
  /** Counts the stored versions of this VM's document: an agent never goes back to a lower one. */
  generation: z.number().int().min(1),
  /** Until when an agent may apply this copy: a stale copy cannot be served for ever. Re-signed well before. */
  expiresAt: z.iso.datetime({ offset: true }),
  /**
   * Ed25519 over the statement (`documentStatement`) by the online key `keyId` names, with the
   * root's delegation of that key, and the control plane's root announcements (rotation) for
   * agents to follow first. Those two carry their own root signatures: the document's need not
   * cover them (taking one away only gets the document refused).
   */
  signature: z.strictObject({
    keyId: keyIdSchema,
    value: z.base64(),
    delegation: delegationSchema,
    announcements: z.array(rootAnnouncementSchema).max(64).optional(),
  }),
};

/** The envelope's fields: they describe the stored copy, so the content hash leaves them out. */
export const ENVELOPE_FIELDS: ReadonlySet<string> = new Set(Object.keys(envelopeShape));

export const storedDocumentSchema = vmDocumentContentSchema.extend(envelopeShape);

export type StoredDocument = z.output<typeof storedDocumentSchema>;
/** A document's content with its generation: what an agent applies. */
export type VersionedDocument = Omit<StoredDocument, 'expiresAt' | 'signature'>;

/** How long a signed copy holds, and how long after signing it is signed again (with the same generation). */
export const DOCUMENT_VALIDITY_MS = 7 * 24 * 3600 * 1000;
export const DOCUMENT_RESIGN_AFTER_MS = 24 * 3600 * 1000;
/** A document the reconciler decided to store, before it is signed. */
export type UnsignedDocument = Omit<StoredDocument, 'signature'>;

/**
 * What the signature covers: who the document is for, which copy it is, until when it holds,
 * and (through the hash) all of its content. Domain-separated, canonical JSON.
 */
export function documentStatement(document: Pick<StoredDocument, 'apiVersion' | 'kind' | 'resourceGroup' | 'vm' | 'generation' | 'expiresAt' | 'hash'>): Buffer {
  const { apiVersion, kind, resourceGroup, vm, generation, expiresAt, hash } = document;
  return Buffer.from(`ringmaster.io/document-signature/v1\n${canonicalJson({ apiVersion, kind, resourceGroup, vm, generation, expiresAt, hash })}`);
}

/** What the control plane signs documents with: its online key, that key's delegation, the root announcements. */
export interface DocumentSigner {
  readonly keyId: string;
  sign(statement: Buffer): Buffer;
  readonly delegation: Delegation;
  readonly announcements: readonly RootAnnouncement[];
}

/**
 * Which roots a signer's documents are under: the delegating root and how many announcements
 * they carry. When it changes (a rotation), every document is signed again (shared/state/resigning.ts).
 */
export function signingEpoch(signer: Pick<DocumentSigner, 'delegation' | 'announcements'>): string {
  return `${signer.delegation.rootKeyId}+${signer.announcements.length}`;
}

export function signDocument(document: UnsignedDocument, signer: DocumentSigner): StoredDocument {
  const value = signer.sign(documentStatement(document)).toString('base64');
  return { ...document, signature: { keyId: signer.keyId, value, delegation: signer.delegation, ...(signer.announcements.length > 0 ? { announcements: [...signer.announcements] } : {}) } };
}

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

export type DocumentCheck = { readonly document: StoredDocument } | { readonly reason: string };
/** A fetched document that verified, and the agent's root trust after the announcements it carried. */
export type VerifiedDocument = { readonly document: StoredDocument; readonly trust: RootTrust; readonly trustChanged: boolean } | { readonly reason: string };

/**
 * Parses a stored document's text: JSON, the schema, every hash. Enough for a copy the agent
 * itself kept on disk; anything fetched goes through `verifyStoredDocument`.
 */
export function parseStoredDocument(body: string): DocumentCheck {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch (error) {
    return { reason: `the document is not valid JSON: ${(error as Error).message}` };
  }
  const parsed = storedDocumentSchema.safeParse(value);
  if (!parsed.success) return { reason: `the document does not match the schema: ${formatFieldErrors(fieldErrors(parsed.error)).slice(0, 5).join('; ')}` };
  if (!hasValidHash(parsed.data)) return { reason: 'the document hash (or a file hash) does not match its content' };
  return { document: parsed.data };
}

/** Why a document is not `owner`'s, or undefined when it is. */
export function notOwnedBy(document: Pick<StoredDocument, 'resourceGroup' | 'vm'>, owner: TrustPolicy['owner']): string | undefined {
  if (document.resourceGroup === owner.resourceGroup && document.vm === owner.vm) return undefined;
  return `the document is for ${document.resourceGroup}/${document.vm}, not for ${owner.resourceGroup}/${owner.vm}`;
}

export interface TrustPolicy {
  /** Whose document the reader expects: an agent accepts only its own. */
  readonly owner: { readonly resourceGroup: string; readonly vm: string };
  /** The root keys this reader trusts (and those it retired). */
  readonly trust: RootTrust;
  readonly now: Date;
  /** The generation running now: a lower one is a rollback. */
  readonly appliedGeneration?: number;
  /** The fingerprint of a delegation this reader verified before (`delegationFingerprint`): not verified again. */
  readonly verifiedDelegation?: string;
}

/**
 * Everything an agent checks before it acts on a fetched document: it is well formed, its
 * hashes hold, it is this VM's, its root announcements follow from a trusted root, a trusted
 * root delegated its key and the delegation holds, the signature verifies, it has not expired,
 * and it does not go back to an older generation. The reason says which check failed. Every
 * reader of fetched documents goes through here, so they cannot disagree.
 */
export function verifyStoredDocument(body: string, policy: TrustPolicy): VerifiedDocument {
  const parsed = parseStoredDocument(body);
  return 'reason' in parsed ? parsed : verifyParsedDocument(parsed.document, policy);
}

/** The checks of `verifyStoredDocument` after parsing: owner, roots, delegation, signature, expiry, rollback. */
export function verifyParsedDocument(document: StoredDocument, policy: TrustPolicy): VerifiedDocument {
  const foreign = notOwnedBy(document, policy.owner);
  if (foreign) return { reason: foreign };
  const followed = followAnnouncements(policy.trust, document.signature.announcements ?? []);
  if ('reason' in followed) return followed;
  const { delegation } = document.signature;
  const delegated = checkDelegation(delegation, followed.trust.roots, policy.verifiedDelegation);
  if ('reason' in delegated) return delegated;
  if (document.signature.keyId !== delegation.keyId) return { reason: `the document is signed by key ${document.signature.keyId}, but its delegation is for key ${delegation.keyId}` };
  if (!verifyOnlineSignature(delegated.key, documentStatement(document), Buffer.from(document.signature.value, 'base64'))) return { reason: `the signature by key ${delegation.keyId} does not verify` };
  if (Date.parse(document.expiresAt) <= policy.now.getTime()) return { reason: `the document expired at ${document.expiresAt} (a stale copy: the control plane re-signs documents long before)` };
  const lapsed = delegationHoldsAt(delegation, policy.now);
  if (lapsed) return { reason: lapsed };
  if (policy.appliedGeneration !== undefined && document.generation < policy.appliedGeneration) {
    return { reason: `generation ${document.generation} is older than the running ${policy.appliedGeneration} (a rollback)` };
  }
  return { document, trust: followed.trust, trustChanged: followed.changed };
}

/** Which copy a stored document is (hash, generation, expiry), without checking its content. */
export type StoredCopy = Pick<StoredDocument, 'hash' | 'generation' | 'expiresAt'>;
const storedCopySchema = z.object({ hash: envelopeShape.hash, generation: envelopeShape.generation, expiresAt: envelopeShape.expiresAt });

/** What `desired/<rg>/` really holds: each VM's stored copy, and every key that is not one. */
export interface StoredDocuments {
  readonly copies: Readonly<Record<string, StoredCopy>>;
  /** Keys under the group's prefix that are no readable VM document (nothing an agent can apply). */
  readonly strays: readonly string[];
}

/**
 * The envelope of a stored document, or undefined when the body has none: what the reconciler
 * compares and the status shows of what is really stored. Cheap (the content is not checked);
 * an agent verifies the whole document before it applies anything.
 */
export function readStoredCopy(body: string): StoredCopy | undefined {
  try {
    const parsed = storedCopySchema.safeParse(JSON.parse(body));
    return parsed.success ? { hash: parsed.data.hash, generation: parsed.data.generation, expiresAt: parsed.data.expiresAt } : undefined;
  } catch {
    return undefined;
  }
}
