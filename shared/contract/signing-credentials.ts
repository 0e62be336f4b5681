/**
 * The control plane's signing credentials: the online Ed25519 private key, its delegation by
 * the active root, and the chain of root announcements. Written by the renewer only (daily, and
 * when the configured roots change), read by whoever signs documents (the reconciler). In AWS
 * a Secrets Manager secret; locally `signing.json` (0600) in the data dir.
 *
 * Renewal makes a new online key every time, so a stolen one is worth nothing after its
 * delegation ends, and it announces root changes: the roots configured (oldest first, the
 * last one active) against the roots agents trust after the chain so far.
 */
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { z } from 'zod';
import type { DocumentSigner } from './document-envelope.ts';
import { CLOCK_SKEW_MS, delegate, DELEGATION_RENEW_AFTER_MS, delegationSchema, keyIdSchema, type RootSigner } from './delegation.ts';
import { ed25519Signer, newSigningKeyPem } from './document-signing.ts';
import { announce, type RootAnnouncement, rootAnnouncementSchema } from './root-announcement.ts';

export const signingCredentialsSchema = z.strictObject({
  /** The online key, PKCS#8 PEM (Ed25519). A secret: only signers read it. */
  onlineKey: z.string().startsWith('-----BEGIN PRIVATE KEY-----'),
  delegation: delegationSchema,
  announcements: z.array(rootAnnouncementSchema),
  /** The roots an agent trusts once it followed the announcements (its configuration may have started from any of them). */
  roots: z.array(keyIdSchema).min(1),
  retired: z.array(keyIdSchema),
});

export type SigningCredentials = z.output<typeof signingCredentialsSchema>;

export function documentSignerOf(credentials: SigningCredentials): DocumentSigner {
  const online = ed25519Signer(credentials.onlineKey);
  if (online.keyId !== credentials.delegation.keyId) throw new Error(`the signing credentials are inconsistent: the online key is ${online.keyId}, the delegation is for ${credentials.delegation.keyId}`);
  return { keyId: online.keyId, sign: online.sign, delegation: credentials.delegation, announcements: credentials.announcements };
}

/** Parses stored credentials; undefined when there are none yet (an empty or placeholder secret). */
export function readSigningCredentials(text: string | undefined): SigningCredentials | undefined {
  if (!text) return undefined;
  try {
    const parsed = signingCredentialsSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** Whether the credentials must be renewed: none yet, a day old, or the configured roots are not those agents are told to trust. */
export function renewalDue(credentials: SigningCredentials | undefined, configured: readonly Pick<RootSigner, 'keyId'>[], now: Date): boolean {
  if (!credentials) return true;
  const active = configured.at(-1)?.keyId;
  const sameRoots = credentials.roots.length === configured.length && configured.every((root) => credentials.roots.includes(root.keyId));
  return !sameRoots || credentials.delegation.rootKeyId !== active || delegationStale(credentials, now);
}

/** The delegation was made a day ago or more: time for a new online key. */
export function delegationStale(credentials: SigningCredentials, now: Date): boolean {
  return now.getTime() - Date.parse(credentials.delegation.notBefore) >= DELEGATION_RENEW_AFTER_MS - CLOCK_SKEW_MS;
}

/**
 * New credentials: a new online key delegated by the active root (the last configured), and
 * the announcements that take agents from the previous roots to the configured ones. A new
 * root is announced by a root agents trust already; a root no longer configured is retired by
 * the active one. A configuration that no trusted root is part of cannot be reached (nothing
 * could sign the first announcement): refused with the reason.
 */
export async function renewSigningCredentials(previous: SigningCredentials | undefined, configured: readonly RootSigner[], now: Date): Promise<SigningCredentials> {
  const active = configured.at(-1);
  if (!active) throw new Error('no root key is configured: documents need one to be trusted');
  const announcements: RootAnnouncement[] = [...(previous?.announcements ?? [])];
  const retired = new Set(previous?.retired ?? []);
  let roots = previous?.roots ?? configured.map((root) => root.keyId);
  for (const root of configured) {
    if (roots.includes(root.keyId)) continue;
    if (retired.has(root.keyId)) throw new Error(`root ${root.keyId} was retired: agents never trust it again; configure a new root instead`);
    const vouching = configured.find((candidate) => roots.includes(candidate.keyId));
    if (!vouching) throw new Error(`no configured root is one agents trust (${roots.join(', ')}): keep the current root configured until its successor is announced`);
    announcements.push(await announce(vouching, { action: 'trust', rootKey: root.publicKey }, now));
    roots = [...roots, root.keyId];
  }
  for (const keyId of roots.filter((id) => !configured.some((root) => root.keyId === id))) {
    announcements.push(await announce(active, { action: 'retire', rootKeyId: keyId }, now));
    roots = roots.filter((id) => id !== keyId);
    retired.add(keyId);
  }
  const onlineKey = newSigningKeyPem();
  const delegation = await delegate(active, createPublicKey(createPrivateKey(onlineKey)), now);
  return { onlineKey, delegation, announcements, roots, retired: [...retired].sort() };
}
