/**
 * A delegation: a root key's signature that an online Ed25519 key may sign documents from
 * `notBefore` to `notAfter`. It lets the root stay offline (a KMS key in AWS: one `Sign` a day,
 * not one per document) while every document stays verifiable by itself: each carries the
 * delegation of the key that signed it, and an agent checks document ← delegation ← root.
 * A stolen online key so signs documents only until its delegation ends.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import { canonicalJson } from '../hash.ts';
import { keyIdOf, onlineKeyOf, spkiText, type TrustedKey, verifyRootSignature } from './document-signing.ts';

export const keyIdSchema = z.string().regex(/^[0-9a-f]{16}$/, 'must be a key id (16 hex digits)');

/** How long a delegation holds. Renewed daily; a document signed just before renewal keeps its whole week (DOCUMENT_VALIDITY_MS) under it. */
export const DELEGATION_VALIDITY_MS = 8 * 24 * 3600 * 1000;
/** How long after issuing a delegation the control plane makes the next one (with a new online key). */
export const DELEGATION_RENEW_AFTER_MS = 24 * 3600 * 1000;
/** Clocks differ: a delegation holds from a little before it was made. */
export const CLOCK_SKEW_MS = 5 * 60 * 1000;

export const delegationSchema = z.strictObject({
  /** The online key's id (keyIdOf its SPKI): the id document signatures name. */
  keyId: keyIdSchema,
  /** The online key's public half, base64 of its SPKI DER (Ed25519). */
  publicKey: z.base64(),
  notBefore: z.iso.datetime({ offset: true }),
  notAfter: z.iso.datetime({ offset: true }),
  /** The root that signed this delegation. */
  rootKeyId: keyIdSchema,
  /** ECDSA P-256 / SHA-256 (DER) by the root over `delegationStatement`, base64. */
  signature: z.base64(),
});

export type Delegation = z.output<typeof delegationSchema>;
export type UnsignedDelegation = Omit<Delegation, 'signature'>;

/** What a root signs: domain-separated canonical JSON, so it can never be taken for another statement. */
export function delegationStatement(delegation: UnsignedDelegation): Buffer {
  const { keyId, publicKey, notBefore, notAfter, rootKeyId } = delegation;
  return Buffer.from(`ringmaster.io/delegation/v1\n${canonicalJson({ keyId, publicKey, notBefore, notAfter, rootKeyId })}`);
}

/** A root key able to sign: a KMS key (adapters/kms-root-signer.ts) or a local file (local/root-keys.ts). */
export interface RootSigner {
  readonly keyId: string;
  /** base64 SPKI DER, as agents are given it. */
  readonly publicKey: string;
  /** ECDSA P-256 / SHA-256 of `statement`, DER-encoded. */
  sign(statement: Buffer): Promise<Buffer>;
}

/** The root's signature that `onlinePublicKey` may sign documents from `now` (less a clock skew) for DELEGATION_VALIDITY_MS. */
export async function delegate(root: RootSigner, onlinePublicKey: KeyObject, now: Date, validityMs = DELEGATION_VALIDITY_MS): Promise<Delegation> {
  const unsigned: UnsignedDelegation = {
    keyId: keyIdOf(onlinePublicKey),
    publicKey: spkiText(onlinePublicKey),
    notBefore: new Date(now.getTime() - CLOCK_SKEW_MS).toISOString(),
    notAfter: new Date(now.getTime() + validityMs).toISOString(),
    rootKeyId: root.keyId,
  };
  return { ...unsigned, signature: (await root.sign(delegationStatement(unsigned))).toString('base64') };
}

export type DelegationCheck = { readonly key: KeyObject } | { readonly reason: string };

/** A delegation as a whole (statement and signature): what a reader may remember as verified. */
export function delegationFingerprint(delegation: Delegation): string {
  return `${delegationStatement(delegation).toString()}\n${delegation.signature}`;
}

/**
 * The online key a delegation certifies, when a trusted root signed it; otherwise why not.
 * Pure: an agent calls it for every document it fetches (then `delegationHoldsAt`). The root's
 * signature is checked once per delegation: `verified` is the fingerprint of one the reader
 * checked before (every document of the day carries the same); its root must still be trusted.
 */
export function checkDelegation(delegation: Delegation, roots: readonly TrustedKey[], verified?: string): DelegationCheck {
  const root = roots.find((trusted) => trusted.keyId === delegation.rootKeyId);
  if (!root) return { reason: `the delegation of key ${delegation.keyId} is signed by root ${delegation.rootKeyId}, which this agent does not trust` };
  if (verified !== delegationFingerprint(delegation) && !verifyRootSignature(root, delegationStatement(delegation), Buffer.from(delegation.signature, 'base64'))) {
    return { reason: `the delegation of key ${delegation.keyId} does not verify against root ${root.keyId}` };
  }
  const key = onlineKeyOf(delegation.publicKey);
  if (!key || keyIdOf(key) !== delegation.keyId) return { reason: `the delegation's public key is not the Ed25519 key ${delegation.keyId} it names` };
  return { key };
}

/** Why a delegation does not hold at `now`, or undefined when it does. */
export function delegationHoldsAt(delegation: Delegation, now: Date): string | undefined {
  if (Date.parse(delegation.notBefore) > now.getTime()) return `the delegation of key ${delegation.keyId} holds only from ${delegation.notBefore}`;
  if (Date.parse(delegation.notAfter) <= now.getTime()) return `the delegation of key ${delegation.keyId} expired at ${delegation.notAfter} (the control plane renews it daily: is its renewer running?)`;
  return undefined;
}

/** The root key of a public key text, for signers that hold one (its id is what delegations name). */
export function rootKeyIdOf(publicKeyText: string): string {
  return keyIdOf(createPublicKey({ key: Buffer.from(publicKeyText, 'base64'), format: 'der', type: 'spki' }));
}
