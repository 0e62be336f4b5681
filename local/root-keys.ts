/**
 * The local control plane's root keys and signing credentials, in its data dir:
 *   roots/root-<n>.pem  the root keys (ECDSA P-256, PKCS#8, 0600), oldest first, the highest
 *                       n active: what signs delegations and announces the next root;
 *   signing.json        the online key, its delegation and the announcements (0600).
 * The same scheme as in AWS with a file where AWS has a KMS key, so one verification path
 * serves both. P-256 rather than Ed25519: the root algorithm is then the same in both modes
 * (moto and AWS KMS sign with it), agents know one kind of root, and a local root can be
 * imported into KMS as is. Its cost (a P-256 verify, ~0.1 ms) is once per fetched document.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RootSigner } from '../shared/contract/delegation.ts';
import { keyIdOf, spkiText } from '../shared/contract/document-signing.ts';
import { readSigningCredentials, renewalDue, renewSigningCredentials, type SigningCredentials } from '../shared/contract/signing-credentials.ts';

const ROOT_FILE = /^root-(\d+)\.pem$/;

export function localRootSigner(pem: string): RootSigner {
  const privateKey = createPrivateKey(pem);
  if (privateKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') throw new TypeError('a root key must be ECDSA P-256');
  const publicKey = createPublicKey(privateKey);
  return { keyId: keyIdOf(publicKey), publicKey: spkiText(publicKey), sign: async (statement) => sign('sha256', statement, { key: privateKey, dsaEncoding: 'der' }) };
}

function rootFiles(dataDir: string): Array<{ file: string; n: number }> {
  const folder = join(dataDir, 'roots');
  if (!existsSync(folder)) return [];
  return readdirSync(folder)
    .flatMap((name) => {
      const match = ROOT_FILE.exec(name);
      return match ? [{ file: join(folder, name), n: Number(match[1]) }] : [];
    })
    .sort((a, b) => a.n - b.n);
}

/** The configured roots, oldest first (the last one active). */
export function localRoots(dataDir: string): RootSigner[] {
  return rootFiles(dataDir).map(({ file }) => localRootSigner(readFileSync(file, 'utf8')));
}

/** Makes a new root key, the active one from the next renewal on (announced by the current root). */
export function addLocalRoot(dataDir: string): RootSigner {
  mkdirSync(join(dataDir, 'roots'), { recursive: true, mode: 0o700 });
  const n = (rootFiles(dataDir).at(-1)?.n ?? 0) + 1;
  const pem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  writeFileSync(join(dataDir, 'roots', `root-${n}.pem`), pem, { mode: 0o600, flag: 'wx' });
  return localRootSigner(pem);
}

/**
 * Retires a root: its private key is destroyed, and the next renewal announces the retirement
 * (signed by the active root). Refused for the active root, and for one whose successor agents
 * were not yet told of (the retired root is the only one they could learn it from).
 */
export function retireLocalRoot(dataDir: string, keyId: string): void {
  const files = rootFiles(dataDir);
  const roots = files.map(({ file }) => ({ file, signer: localRootSigner(readFileSync(file, 'utf8')) }));
  const index = roots.findIndex((root) => root.signer.keyId === keyId);
  if (index < 0) throw new Error(`no root ${keyId} in ${join(dataDir, 'roots')} (roots: ${roots.map((root) => root.signer.keyId).join(', ') || 'none'})`);
  if (index === roots.length - 1) throw new Error(`root ${keyId} is the active root: add its successor first (\`ringmaster roots add\`)`);
  const credentials = readSigningCredentials(readIfPresent(join(dataDir, 'signing.json')));
  const active = roots.at(-1)!.signer.keyId;
  if (!credentials?.roots.includes(active)) throw new Error(`the active root ${active} is not announced yet: a running \`ringmaster serve\` announces it within the hour (or at its next start); retire ${keyId} after that`);
  unlinkSync(roots[index]!.file);
}

function readIfPresent(path: string): string | undefined {
  return existsSync(path) ? readFileSync(path, 'utf8') : undefined;
}

/**
 * The signing credentials, renewed first when due (a day old, or the roots changed). Makes the
 * first root on a new data dir. Written atomically, 0600: a reader never sees half of it.
 */
export async function localSigningCredentials(dataDir: string, now: Date): Promise<SigningCredentials> {
  if (rootFiles(dataDir).length === 0) addLocalRoot(dataDir);
  const path = join(dataDir, 'signing.json');
  const previous = readSigningCredentials(readIfPresent(path));
  const roots = localRoots(dataDir);
  if (!renewalDue(previous, roots, now)) return previous!;
  const renewed = await renewSigningCredentials(previous, roots, now);
  writeFileSync(`${path}.new`, `${JSON.stringify(renewed, null, 2)}\n`, { mode: 0o600 });
  renameSync(`${path}.new`, path);
  return renewed;
}

/** The root public keys an agent must trust now (base64 SPKI), as `agent-credentials` prints them. */
export function localTrustedRoots(dataDir: string): string[] {
  const credentials = readSigningCredentials(readIfPresent(join(dataDir, 'signing.json')));
  const roots = localRoots(dataDir);
  // Before the first start, the configured roots; after, those agents are told to trust.
  return roots.filter((root) => !credentials || credentials.roots.includes(root.keyId)).map((root) => root.publicKey);
}
