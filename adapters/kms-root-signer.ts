/**
 * A root key held by AWS KMS (an asymmetric ECC_NIST_P256 key, SIGN_VERIFY): it never leaves
 * KMS; `kms:Sign` is granted to the renewer function alone (see the CDK app). moto's KMS
 * signs the same way, so the bundle test runs this against it.
 */
import { GetPublicKeyCommand, type KMSClient, SignCommand } from '@aws-sdk/client-kms';
import type { RootSigner } from '../shared/contract/delegation.ts';
import { type TrustedKey, trustedRoot } from '../shared/contract/document-signing.ts';

export async function kmsRootSigner(client: KMSClient, kmsKeyId: string): Promise<RootSigner> {
  const described = await client.send(new GetPublicKeyCommand({ KeyId: kmsKeyId }));
  if (!described.PublicKey) throw new Error(`KMS key ${kmsKeyId} has no public key: it must be an asymmetric ECC_NIST_P256 signing key`);
  const publicKey = Buffer.from(described.PublicKey).toString('base64');
  let root: TrustedKey;
  try {
    // The key itself says what it is (moto leaves KeySpec out of its answer).
    root = trustedRoot(publicKey);
  } catch (error) {
    throw new Error(`KMS key ${kmsKeyId} ${(error as Error).message}`);
  }
  return {
    keyId: root.keyId,
    publicKey,
    sign: async (statement) => {
      // RAW: KMS hashes the statement with SHA-256 itself (statements are far below its 4 KiB limit).
      const signed = await client.send(new SignCommand({ KeyId: kmsKeyId, Message: statement, MessageType: 'RAW', SigningAlgorithm: 'ECDSA_SHA_256' }));
      if (!signed.Signature) throw new Error(`KMS returned no signature for key ${kmsKeyId}`);
      return Buffer.from(signed.Signature);
    },
  };
}
