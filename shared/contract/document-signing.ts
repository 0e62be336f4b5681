/**
 * The keys of document signatures. The control plane signs every stored document with an
 * online Ed25519 key; a root key (ECDSA P-256: a KMS key in AWS, a file in the data dir
 * locally) certifies that online key for a few days (delegation.ts); an agent applies only
 * documents whose chain ends at a root it trusts. A VM so trusts a document because the
 * control plane signed it, not because it sits in the bucket: whoever can write `desired/`
 * (a bucket admin, a leaked operator key, a bug in a function) cannot make it act.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject, sign, verify } from 'node:crypto';

/** Signs the statement bytes of a document with an online key (see document-envelope.ts). */
export interface OnlineSigner {
  readonly keyId: string;
  sign(statement: Buffer): Buffer;
}

/** A root public key an agent trusts, by its id. */
export interface TrustedKey {
  readonly keyId: string;
  readonly key: KeyObject;
}

/** A key's id: the first 16 hex digits of the SHA-256 of its public key (SPKI DER). */
export function keyIdOf(publicKey: KeyObject): string {
  return createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex').slice(0, 16);
}

/** PKCS#8 DER of an Ed25519 private key is this prefix and the 32-byte seed (RFC 8410). */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** The Ed25519 private key of a 32-byte seed, as PKCS#8 PEM: a key derived rather than stored. */
export function ed25519KeyFromSeed(seed: Buffer): string {
  if (seed.length !== 32) throw new TypeError('an Ed25519 seed has 32 bytes');
  return createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' }).export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** A new Ed25519 private key, as PKCS#8 PEM (kept 0600 by whoever stores it). */
export function newSigningKeyPem(): string {
  return generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

export function ed25519Signer(privateKeyPem: string): OnlineSigner {
  const privateKey = createPrivateKey(privateKeyPem);
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new TypeError(`the document signing key must be Ed25519, not ${privateKey.asymmetricKeyType}`);
  const keyId = keyIdOf(createPublicKey(privateKey));
  return { keyId, sign: (statement) => sign(null, statement, privateKey) };
}

/** The public half of a signing key, as agents are given it: base64 of its SPKI DER (one line, no PEM armour). */
export function publicKeyText(privateKeyPem: string): string {
  return createPublicKey(createPrivateKey(privateKeyPem)).export({ type: 'spki', format: 'der' }).toString('base64');
}

/**
 * Reads a root key given as `ringmaster agent-credentials` prints it (base64 of SPKI DER);
 * throws with the reason otherwise. Roots are ECDSA P-256, in AWS and locally alike: the
 * algorithm of a KMS key moto and AWS both sign with (see delegation.ts).
 */
export function trustedRoot(text: string): TrustedKey {
  const trimmed = text.trim();
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(trimmed)) throw new TypeError('must be a root public key in base64 (as `ringmaster agent-credentials` prints it)');
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(trimmed, 'base64'), format: 'der', type: 'spki' });
  } catch {
    throw new TypeError('is not a public key (base64 of SPKI DER)');
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new TypeError(`must be an ECDSA P-256 root key, not ${key.asymmetricKeyType}${key.asymmetricKeyDetails?.namedCurve ? ` ${key.asymmetricKeyDetails.namedCurve}` : ''}`);
  }
  return { keyId: keyIdOf(key), key };
}

/** The public half of a key as agents and documents carry it: base64 of its SPKI DER. */
export function spkiText(key: KeyObject): string {
  return key.export({ type: 'spki', format: 'der' }).toString('base64');
}

/** An online (Ed25519) public key read from `spkiText`; undefined when it is not one. */
export function onlineKeyOf(text: string): KeyObject | undefined {
  try {
    const key = createPublicKey({ key: Buffer.from(text, 'base64'), format: 'der', type: 'spki' });
    return key.asymmetricKeyType === 'ed25519' ? key : undefined;
  } catch {
    return undefined;
  }
}

/** Ed25519 verification of a document statement by an online key. */
export function verifyOnlineSignature(key: KeyObject, statement: Buffer, signature: Buffer): boolean {
  return verify(null, statement, key, signature);
}

/** ECDSA P-256 / SHA-256 verification of a root's DER signature (what KMS `Sign` with ECDSA_SHA_256 returns). */
export function verifyRootSignature(root: TrustedKey, statement: Buffer, signature: Buffer): boolean {
  try {
    return verify('sha256', statement, { key: root.key, dsaEncoding: 'der' }, signature);
  } catch {
    return false;
  }
}
