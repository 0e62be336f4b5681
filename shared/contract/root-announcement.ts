/**
 * Root rotation. An agent trusts a small set of root keys (from its configuration, then
 * persisted in its state dir). A root announcement, signed by a root the agent trusts now,
 * adds a root (`trust`) or drops one for good (`retire`). The control plane keeps the whole
 * chain of its announcements and puts it in every document, so an agent that was off during a
 * rotation follows it from wherever it stands; a retired root is never trusted again, so an
 * old announcement replayed cannot bring it back.
 */
import { z } from 'zod';
import { canonicalJson } from '../hash.ts';
import { keyIdSchema, type RootSigner } from './delegation.ts';
import { type TrustedKey, trustedRoot, verifyRootSignature } from './document-signing.ts';

const change = z.discriminatedUnion('action', [
  z.strictObject({ action: z.literal('trust'), /** The new root's public key, base64 SPKI DER (ECDSA P-256). */ rootKey: z.base64() }),
  z.strictObject({ action: z.literal('retire'), rootKeyId: keyIdSchema }),
]);

export const rootAnnouncementSchema = z.intersection(
  change,
  z.strictObject({
    issuedAt: z.iso.datetime({ offset: true }),
    /** The root that signed the announcement. */
    signedBy: keyIdSchema,
    /** ECDSA P-256 / SHA-256 (DER) over `announcementStatement`, base64. */
    signature: z.base64(),
  }),
);

export type RootAnnouncement = z.output<typeof rootAnnouncementSchema>;
export type RootChange = z.output<typeof change>;
type UnsignedAnnouncement = RootChange & { readonly issuedAt: string; readonly signedBy: string };

function announcementStatement(announcement: UnsignedAnnouncement): Buffer {
  const body = announcement.action === 'trust' ? { action: 'trust', rootKey: announcement.rootKey } : { action: 'retire', rootKeyId: announcement.rootKeyId };
  return Buffer.from(`ringmaster.io/root-announcement/v1\n${canonicalJson({ ...body, issuedAt: announcement.issuedAt, signedBy: announcement.signedBy })}`);
}

export async function announce(root: RootSigner, rootChange: RootChange, now: Date): Promise<RootAnnouncement> {
  const unsigned: UnsignedAnnouncement = { ...rootChange, issuedAt: now.toISOString(), signedBy: root.keyId };
  return { ...unsigned, signature: (await root.sign(announcementStatement(unsigned))).toString('base64') } as RootAnnouncement;
}

/** The roots an agent trusts, and the ids of those retired (never trusted again). */
export interface RootTrust {
  readonly roots: readonly TrustedKey[];
  readonly retired: readonly string[];
}

/** How an agent keeps its trust on disk (`trust.json` in its state dir). */
export const rootTrustFileSchema = z.strictObject({ roots: z.array(z.base64()), retired: z.array(keyIdSchema) });

export function rootTrustFile(trust: RootTrust): z.output<typeof rootTrustFileSchema> {
  return { roots: trust.roots.map((root) => root.key.export({ type: 'spki', format: 'der' }).toString('base64')), retired: [...trust.retired] };
}

/**
 * Where an agent starts: the roots it kept (after the announcements it followed), plus the
 * roots of its configuration that were never retired (an operator may add one; a retired one
 * stays retired even if the configuration still names it).
 */
export function startingTrust(configured: readonly TrustedKey[], kept: z.output<typeof rootTrustFileSchema> | undefined): RootTrust {
  const retired = kept?.retired ?? [];
  const roots = new Map<string, TrustedKey>();
  for (const root of [...(kept?.roots.map((text) => trustedRoot(text)) ?? []), ...configured]) if (!retired.includes(root.keyId)) roots.set(root.keyId, root);
  return { roots: [...roots.values()], retired };
}

export type FollowResult = { readonly trust: RootTrust; readonly changed: boolean } | { readonly reason: string };

/**
 * Follows a chain of announcements, in order, from `trust`. An announcement that changes
 * nothing for this agent (a root it already trusts or retired, the retirement of one it does
 * not trust) is passed over unchecked: an agent configured after a rotation skips its beginning. One
 * that would change something must be signed by a root trusted at that point of the chain,
 * and may not leave the agent without a root; otherwise the document carrying it is refused.
 */
export function followAnnouncements(trust: RootTrust, announcements: readonly RootAnnouncement[]): FollowResult {
  let roots = [...trust.roots];
  const retired = new Set(trust.retired);
  let changed = false;
  for (const announcement of announcements) {
    let added: TrustedKey | undefined;
    if (announcement.action === 'trust') {
      try {
        added = trustedRoot(announcement.rootKey);
      } catch (error) {
        return { reason: `the root announcement (trust) names no usable key: it ${(error as Error).message}` };
      }
      if (retired.has(added.keyId) || roots.some((root) => root.keyId === added!.keyId)) continue;
    } else if (!roots.some((root) => root.keyId === announcement.rootKeyId)) {
      // Not noted as retired either: an unchecked retirement must not be able to bar a root for good.
      continue;
    }
    const what = announcement.action === 'trust' ? `trust root ${added!.keyId}` : `retire root ${announcement.rootKeyId}`;
    const signer = roots.find((root) => root.keyId === announcement.signedBy);
    if (!signer) return { reason: `the root announcement (${what}) is signed by root ${announcement.signedBy}, which this agent does not trust` };
    if (!verifyRootSignature(signer, announcementStatement(announcement), Buffer.from(announcement.signature, 'base64'))) {
      return { reason: `the root announcement (${what}) does not verify against root ${signer.keyId}` };
    }
    if (announcement.action === 'trust') {
      roots.push(added!);
    } else {
      const remaining = roots.filter((root) => root.keyId !== announcement.rootKeyId);
      if (remaining.length === 0) return { reason: `the root announcement (${what}) would leave this agent trusting no root` };
      roots = remaining;
      retired.add(announcement.rootKeyId);
    }
    changed = true;
  }
  return { trust: { roots, retired: [...retired].sort() }, changed };
}
