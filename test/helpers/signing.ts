/**
 * Document signing for tests that store documents themselves (the control plane renews its
 * own credentials): a test root (ECDSA P-256), an online Ed25519 key it delegated, and signers
 * made the same way under other roots or with other delegations, to be refused.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign } from 'node:crypto';
import { type Delegation, delegationStatement, type UnsignedDelegation } from '../../shared/contract/delegation.ts';
import { DOCUMENT_VALIDITY_MS, type DocumentSigner, documentHash, signDocument, type StoredDocument } from '../../shared/contract/document-envelope.ts';
import { ed25519Signer, keyIdOf, newSigningKeyPem, spkiText, trustedRoot } from '../../shared/contract/document-signing.ts';
import type { RootAnnouncement } from '../../shared/contract/root-announcement.ts';
import type { VmDocument } from '../../shared/schema/document.ts';

export interface TestRoot {
  readonly keyId: string;
  /** base64 SPKI, as agents are given it. */
  readonly publicKey: string;
  readonly pem: string;
}

export function newTestRoot(): TestRoot {
  const pem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const publicKey = createPublicKey(createPrivateKey(pem));
  return { keyId: keyIdOf(publicKey), publicKey: spkiText(publicKey), pem };
}

const DAY = 24 * 3600 * 1000;

/**
 * A document signer under `root`: a new online key and its delegation (by default from a day
 * ago to a year ahead, so tests that move the clock by days still meet a valid delegation).
 * `certifyOther` makes the delegation certify another key than the one that signs.
 */
export function signerUnder(root: TestRoot, options: { notBefore?: Date; notAfter?: Date; announcements?: readonly RootAnnouncement[]; certifyOther?: boolean } = {}): DocumentSigner {
  const onlinePem = newSigningKeyPem();
  const online = ed25519Signer(onlinePem);
  const certified = createPublicKey(createPrivateKey(options.certifyOther ? newSigningKeyPem() : onlinePem));
  const unsigned: UnsignedDelegation = {
    keyId: keyIdOf(certified),
    publicKey: spkiText(certified),
    notBefore: (options.notBefore ?? new Date(Date.now() - DAY)).toISOString(),
    notAfter: (options.notAfter ?? new Date(Date.now() + 365 * DAY)).toISOString(),
    rootKeyId: root.keyId,
  };
  const delegation: Delegation = { ...unsigned, signature: sign('sha256', delegationStatement(unsigned), { key: createPrivateKey(root.pem), dsaEncoding: 'der' }).toString('base64') };
  return { keyId: online.keyId, sign: online.sign, delegation, announcements: options.announcements ?? [] };
}

export const TEST_ROOT = newTestRoot();
export const TEST_SIGNER = signerUnder(TEST_ROOT);
export const TEST_TRUSTED_KEYS = [trustedRoot(TEST_ROOT.publicKey)];

/** A document stored as the reconciler would: hashed (a test may have changed its content), a generation, a week's validity, signed. */
export function signedForTest(document: Omit<VmDocument, 'hash'>, generation: number, expiresAt = new Date(Date.now() + DOCUMENT_VALIDITY_MS).toISOString(), signer: DocumentSigner = TEST_SIGNER): StoredDocument {
  return signDocument({ ...document, hash: documentHash(document), generation, expiresAt }, signer);
}
