/**
 * Users' own files on the k3s server, written as the users themselves. The platform creates the
 * Unix users and their homes; the agent never does. A home belongs to its user, who can put a
 * symbolic link anywhere in it: root writing there could be led to `/etc/shadow`. So every
 * read, write and removal in a home runs as that user (uid and gid of the account), and can do
 * nothing the user could not do anyway.
 */
import { execFile, spawn } from 'node:child_process';

export interface UnixAccount {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
}

/** Finds a login by name the way the system does (NSS: /etc/passwd, LDAP, …); undefined when there is none. */
export type AccountLookup = (user: string) => Promise<UnixAccount | undefined>;

/** `getent passwd NAME`: exit 2 means no such user. */
export const lookupAccount: AccountLookup = (user) =>
  new Promise((resolve, reject) => {
    execFile('getent', ['passwd', user], { timeout: 10_000 }, (error, stdout) => {
      if (error) {
        // execFile's error carries the exit status in `code` (a number) when the program ran.
        if ((error as { code?: unknown }).code === 2) return resolve(undefined);
        return reject(new Error(`getent passwd ${user}: ${error.message.split('\n')[0]}`));
      }
      resolve(parsePasswdLine(stdout.trim().split('\n')[0] ?? '', user));
    });
  });

/** One passwd(5) line (`name:x:uid:gid:gecos:home:shell`), when it is `user`'s and well formed. */
export function parsePasswdLine(line: string, user: string): UnixAccount | undefined {
  const fields = line.split(':');
  if (fields.length < 7 || fields[0] !== user) return undefined;
  const uid = Number(fields[2]);
  const gid = Number(fields[3]);
  const home = fields[5]!;
  if (!Number.isInteger(uid) || !Number.isInteger(gid) || !home.startsWith('/')) return undefined;
  return { name: user, uid, gid, home };
}

/** Runs a small shell script as `account` (its uid, gid and home), `input` on its stdin; resolves with stdout. */
export function runAsUser(account: UnixAccount, script: string, args: readonly string[] = [], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', script, 'sh', ...args], {
      uid: account.uid,
      gid: account.gid,
      cwd: '/',
      env: { HOME: account.home, USER: account.name, LOGNAME: account.name, PATH: '/usr/bin:/bin' },
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: 30_000,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(stdout);
      else reject(new Error(`as ${account.name}: ${stderr.trim().split('\n')[0] || `exit ${code}`}`));
    });
    child.stdin.on('error', () => undefined); // a script that exits early closes its stdin
    child.stdin.end(input ?? '');
  });
}
