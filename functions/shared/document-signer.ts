/**
 * The control plane's document signing key, derived from its master key (HMAC, like the
 * clusters' secrets): nothing more to store or back up, and the same key in every function
 * instance. The label carries a version, so the key can be rotated by deriving the next one.
 */
import { createHmac } from 'node:crypto';
import { type DocumentSigner, ed25519KeyFromSeed, ed25519Signer, publicKeyText } from '../../shared/contract/document-signing.ts';

const signingKeyPem = (masterKey: string, version: number) => ed25519KeyFromSeed(createHmac('sha256', masterKey).update(`ringmaster/document-signing/v${version}`).digest());

export function documentSigner(masterKey: string, version = 1): DocumentSigner {
  return ed25519Signer(signingKeyPem(masterKey, version));
}

/** The public key agents must trust (base64 SPKI DER), as `ringmaster agent-credentials` prints it. */
export function documentPublicKey(masterKey: string, version = 1): string {
  return publicKeyText(signingKeyPem(masterKey, version));
}
