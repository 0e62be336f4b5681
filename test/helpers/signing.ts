/** A document signing key for tests that store documents themselves (the control plane derives its own). */
import { createHash } from 'node:crypto';
import { DOCUMENT_VALIDITY_MS, documentHash, signDocument, type StoredDocument } from '../../shared/contract/document-envelope.ts';
import { ed25519KeyFromSeed, ed25519Signer, publicKeyText, trustedKey } from '../../shared/contract/document-signing.ts';
import type { VmDocument } from '../../shared/schema/document.ts';

const TEST_KEY = ed25519KeyFromSeed(createHash('sha256').update('ringmaster test document key').digest());
export const TEST_SIGNER = ed25519Signer(TEST_KEY);
export const TEST_TRUSTED_KEYS = [trustedKey(publicKeyText(TEST_KEY))];

/** A document stored as the reconciler would: hashed (a test may have changed its content), a generation, a week's validity, signed. */
export function signedForTest(document: Omit<VmDocument, 'hash'>, generation: number, expiresAt = new Date(Date.now() + DOCUMENT_VALIDITY_MS).toISOString()): StoredDocument {
  return signDocument({ ...document, hash: documentHash(document), generation, expiresAt }, TEST_SIGNER);
}
