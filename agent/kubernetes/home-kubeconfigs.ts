/**
 * The spec's "kubectl … directly after login via SSH": every user with `sudo-srv` finds a
 * kubeconfig of their own in `~/.kube/config` on the k3s server (their own ServiceAccount's
 * token, owned by them, 0600), renewed at two thirds of its lifetime and removed when they lose
 * `sudo-srv` (their ServiceAccount goes too, so the token stops working at once). What was
 * written is remembered in a root-only file of the agent's state, so a restart neither
 * re-issues every kubeconfig nor forgets whose file to remove.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { readIfExists, writeAtomically } from '../files.ts';
import { type AccountLookup, lookupAccount, runAsUser, type UnixAccount } from './unix-accounts.ts';

const recordSchema = z.strictObject({
  user: z.string(),
  path: z.string(),
  issuedAt: z.iso.datetime({ offset: true }),
  expiresAt: z.iso.datetime({ offset: true }),
  sha256: z.string(),
});
const recordsSchema = z.record(z.string(), recordSchema);

export type HomeKubeconfigRecord = z.output<typeof recordSchema>;

/** Where a user's kubeconfig lives, as kubectl looks for it by default. */
export const homeKubeconfigPath = (home: string) => `${home.replace(/\/$/, '')}/.kube/config`;

/** When a kubeconfig is replaced: at two thirds of its lifetime, so the one in use always has a third left. */
export function renewsAt(record: Pick<HomeKubeconfigRecord, 'issuedAt' | 'expiresAt'>): Date {
  const issued = Date.parse(record.issuedAt);
  return new Date(issued + ((Date.parse(record.expiresAt) - issued) * 2) / 3);
}

/** Whether the kubeconfig recorded for a user must be written (again) now. */
export function needsWriting(record: HomeKubeconfigRecord | undefined, path: string, present: boolean, now: Date): boolean {
  return record === undefined || record.path !== path || !present || now.getTime() >= renewsAt(record).getTime();
}

export interface HomeKubeconfigEntry {
  readonly user: string;
  readonly expiresAt: string;
  readonly renewsAt: string;
}

export interface HomeKubeconfigsOptions {
  /** The agent's root-only record of what it wrote (in its state folder). */
  readonly stateFile: string;
  readonly lookup?: AccountLookup;
  readonly now?: () => Date;
  readonly log?: (message: string, fields?: Record<string, unknown>) => void;
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

// Run as the user (see unix-accounts.ts). A file of their own that was there before is kept
// beside it, once, rather than overwritten: it may reach another cluster.
const WRITE_SCRIPT = [
  'set -e',
  'umask 077',
  'dir="$1/.kube"',
  'mkdir -p "$dir"',
  'if [ "$2" = first ] && [ -e "$dir/config" ] && [ ! -e "$dir/config.before-ringmaster" ]; then mv "$dir/config" "$dir/config.before-ringmaster"; fi',
  'tmp=$(mktemp "$dir/.config.XXXXXX")',
  'cat > "$tmp"',
  'mv -f "$tmp" "$dir/config"',
].join('\n');
const PRESENT_SCRIPT = '[ -f "$1" ] && [ ! -L "$1" ]';
const READ_SCRIPT = 'if [ -f "$1" ] && [ ! -L "$1" ]; then cat "$1"; fi';

export class HomeKubeconfigs {
  readonly #options: HomeKubeconfigsOptions;
  readonly #lookup: AccountLookup;

  constructor(options: HomeKubeconfigsOptions) {
    this.#options = options;
    this.#lookup = options.lookup ?? lookupAccount;
  }

  #now(): Date {
    return this.#options.now?.() ?? new Date();
  }

  async #load(): Promise<Record<string, HomeKubeconfigRecord>> {
    const text = await readIfExists(this.#options.stateFile);
    if (!text) return {};
    const parsed = recordsSchema.safeParse(JSON.parse(text.toString('utf8')));
    // A record we cannot read is started afresh: every user gets a new kubeconfig, nothing is lost.
    return parsed.success ? parsed.data : {};
  }

  /**
   * Makes each user's kubeconfig current (issuing through `issue` only when one is due) and
   * removes the ones of users no longer listed. Per-user failures are returned, never thrown:
   * one user without a home does not hold back the others.
   */
  async reconcile(users: readonly string[], issue: (user: string) => Promise<{ kubeconfig: string; expiresAt: string }>): Promise<{ kubeconfigs: HomeKubeconfigEntry[]; errors: string[] }> {
    const records = await this.#load();
    const errors: string[] = [];
    const kubeconfigs: HomeKubeconfigEntry[] = [];
    for (const user of [...new Set(users)].sort()) {
      try {
        const account = await this.#account(user);
        const path = homeKubeconfigPath(account.home);
        const present = await runAsUser(account, PRESENT_SCRIPT, [path]).then(() => true, () => false);
        let record = records[user];
        if (needsWriting(record, path, present, this.#now())) {
          const issued = await issue(user);
          await runAsUser(account, WRITE_SCRIPT, [account.home, record ? 'again' : 'first'], issued.kubeconfig);
          record = { user, path, issuedAt: this.#now().toISOString(), expiresAt: issued.expiresAt, sha256: sha256(issued.kubeconfig) };
          records[user] = record;
          this.#options.log?.('kubeconfig written to the user\'s home', { user, path, expiresAt: issued.expiresAt });
        }
        kubeconfigs.push({ user, expiresAt: record!.expiresAt, renewsAt: renewsAt(record!).toISOString() });
      } catch (error) {
        errors.push(`kubeconfig in the home of ${user}: ${(error as Error).message.slice(0, 300)}`);
      }
    }
    const wanted = new Set(users);
    for (const record of Object.values(records)) {
      if (wanted.has(record.user)) continue;
      try {
        await this.#remove(record);
        delete records[record.user];
      } catch (error) {
        errors.push(`removing the kubeconfig of ${record.user}: ${(error as Error).message.slice(0, 300)}`);
      }
    }
    await writeAtomically(this.#options.stateFile, `${JSON.stringify(records, null, 2)}\n`, 0o600);
    return { kubeconfigs, errors };
  }

  async #account(user: string): Promise<UnixAccount> {
    const account = await this.#lookup(user);
    if (!account) throw new Error(`there is no Unix user ${user} on this VM (the platform creates the users with sudo-srv)`);
    const home = await runAsUser(account, '[ -d "$1" ] && echo yes || true', [account.home]);
    if (home.trim() !== 'yes') throw new Error(`the home ${account.home} of ${user} does not exist (the platform creates it)`);
    return account;
  }

  /** Removes the file only while it is the one written (a file the user put there since is theirs). */
  async #remove(record: HomeKubeconfigRecord): Promise<void> {
    const account = await this.#lookup(record.user);
    // No account left: no home to clean, and the token was revoked with the ServiceAccount.
    if (!account) return;
    const content = await runAsUser(account, READ_SCRIPT, [record.path]);
    if (content !== '' && sha256(content) === record.sha256) await runAsUser(account, 'rm -f "$1"', [record.path]);
    this.#options.log?.('kubeconfig removed from the user\'s home', { user: record.user, path: record.path });
  }
}
