/**
 * The `renewer` function, daily on a schedule: a new online key, delegated by the active root,
 * with root announcements when the configured roots changed (shared/contract/signing-credentials.ts).
 * The only function that may sign with a root (one KMS `Sign` a day, a few more on a
 * rotation) and the only one that writes the signing credentials; signers only read them.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import type { RootSigner } from '../../shared/contract/delegation.ts';
import { readSigningCredentials, renewSigningCredentials } from '../../shared/contract/signing-credentials.ts';

export interface RenewerDependencies {
  /** The stored credentials' text (undefined or a placeholder before the first renewal). */
  readonly read: () => Promise<string | undefined>;
  readonly write: (text: string) => Promise<void>;
  /** The configured roots, oldest first; the last one is active. */
  readonly roots: () => Promise<readonly RootSigner[]>;
  readonly logger: Logger;
  readonly now?: () => Date;
}

export function createRenewerHandler(deps: RenewerDependencies) {
  return async (): Promise<{ keyId: string; rootKeyId: string; notAfter: string; announcements: number }> => {
    const text = await deps.read();
    const previous = readSigningCredentials(text);
    // The stack's placeholder is alphanumeric; JSON that does not read is damage, and starting over would lose the announcements agents follow.
    if (!previous && text?.trimStart().startsWith('{')) throw new Error('the signing secret holds JSON that is not signing credentials: not overwritten (its root announcements would be lost); restore its previous version');
    const renewed = await renewSigningCredentials(previous, await deps.roots(), deps.now?.() ?? new Date());
    await deps.write(JSON.stringify(renewed));
    const { delegation } = renewed;
    const announced = renewed.announcements.length - (previous?.announcements.length ?? 0);
    // Public facts only: ids and dates, never the online key.
    deps.logger.info('signing credentials renewed', { keyId: delegation.keyId, rootKeyId: delegation.rootKeyId, notAfter: delegation.notAfter, trustedRoots: renewed.roots, newAnnouncements: announced });
    return { keyId: delegation.keyId, rootKeyId: delegation.rootKeyId, notAfter: delegation.notAfter, announcements: renewed.announcements.length };
  };
}
