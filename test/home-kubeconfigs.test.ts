/**
 * The spec's "Interaction": a user with sudo-srv logs in to the k3s server and kubectl works
 * (KUBECONFIG set by the login profile), `kubernetes-make-kubeconfig` prints a kubeconfig for
 * them, and the file is renewed before it expires and removed when sudo-srv goes. Against a real
 * kube-apiserver and the real kubectl, with real Unix users: the test stands in for the
 * platform, which creates the users and their homes (it never is the agent's job); the agent's
 * Kubernetes tasks (ServerTasks, as `ringmaster agent` runs them) do the rest under a folder root.
 */
import { lstatSync, mkdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { onDisk } from '../agent/files.ts';
import { LOGIN_FILES } from '../agent/kubernetes/login-files.ts';
import type { ServerTasks } from '../agent/kubernetes/server-tasks.ts';
import { type KubeApiServer, startKubeApiServer } from './helpers/kube-apiserver.ts';
import { kubernetesTasks, LoginServer, run } from './helpers/login-server.ts';

const server = new LoginServer('ringmaster-homes-');
const { work, root, bin } = server;
const suffix = process.pid.toString(36);
const alice = `rmt-alice-${suffix}`;
const bob = `rmt-bob-${suffix}`;
const carol = `rmt-carol-${suffix}`; // a Unix user without sudo-srv
const dave = `rmt-dave-${suffix}`; // sudo-srv, but the platform has not made his home
const homeOf = (user: string) => server.homeOf(user);
const kubeconfigOf = (user: string) => server.kubeconfigOf(user);
const uidOf = (user: string) => server.uidOf(user);
const asUser = (user: string, script: string) => server.asUser(user, script);

let kube: KubeApiServer;
let tasks: ServerTasks;
let clock = 0; // ms added to the agent's clock: renewal time comes without waiting hours
let accessUsers: string[] = [];

const serverTasks = () => kubernetesTasks(kube, accessUsers, 1);

beforeAll(async () => {
  kube = await startKubeApiServer();
  server.installPrograms(kube);
  for (const user of [alice, bob, carol]) await server.addUser(user);
  await server.addUser(dave, { home: false });
  tasks = server.serverTasks(kube, { now: () => new Date(Date.now() + clock) });
}, 180_000);

afterAll(async () => {
  await tasks?.stop();
  await kube?.stop();
  await server.remove();
});

describe('a sudo-srv user on the k3s server (real kube-apiserver, real kubectl, real Unix users)', () => {
  let aliceFirst: string;

  test('after a round every user with sudo-srv has ~/.kube/config, their own, 0600; kubectl works after login', async () => {
    // bob had a kubeconfig of his own for another cluster: it is kept beside ours, not lost.
    mkdirSync(join(homeOf(bob), '.kube'), { recursive: true });
    writeFileSync(kubeconfigOf(bob), 'apiVersion: v1\nkind: Config\n# bob\'s own\n');
    await run('chown', ['-R', `${bob}:`, join(homeOf(bob), '.kube')]);
    accessUsers = [alice, bob];
    const report = await tasks.update(serverTasks());
    expect(report?.errors).toEqual([]);
    expect(report?.homeKubeconfigs?.map((k) => k.user)).toEqual([alice, bob].sort());
    for (const user of [alice, bob]) {
      const stats = statSync(kubeconfigOf(user));
      expect(stats.uid).toBe(await uidOf(user));
      expect(stats.mode & 0o777).toBe(0o600);
      // Logged in (the profile script sets KUBECONFIG), kubectl is that user's ServiceAccount, admin of the cluster.
      const profile = onDisk(root, LOGIN_FILES.profileScript);
      const { stdout } = await asUser(user, `. ${profile}; echo "$KUBECONFIG"; kubectl auth whoami -o jsonpath='{.status.userInfo.username}'; echo; kubectl get namespaces -o name`);
      const [kubeconfigVar, whoami, ...namespaces] = stdout.trim().split('\n');
      expect(kubeconfigVar).toBe(kubeconfigOf(user));
      expect(whoami).toMatch(new RegExp(`^system:serviceaccount:ringmaster-access:user-${user}$`));
      expect(namespaces).toContain('namespace/default');
    }
    expect(readFileSync(`${kubeconfigOf(bob)}.before-ringmaster`, 'utf8')).toContain("bob's own");
    aliceFirst = readFileSync(kubeconfigOf(alice), 'utf8');
    const renewsAt = Date.parse(report!.homeKubeconfigs![0]!.renewsAt);
    const expiresAt = Date.parse(report!.homeKubeconfigs![0]!.expiresAt);
    // 1 h tokens: renewed 40 min in, with 20 min left.
    expect((expiresAt - renewsAt) / 60_000).toBeGreaterThan(19);
    expect((expiresAt - renewsAt) / 60_000).toBeLessThan(21);
  }, 60_000);

  test('kubernetes-make-kubeconfig prints a kubeconfig kubectl uses; for a user without sudo-srv it refuses with exit 2', async () => {
    const command = onDisk(root, LOGIN_FILES.makeKubeconfig);
    const { stdout, stderr } = await asUser(alice, command);
    expect(stderr).toMatch(/keep this file secret/);
    const printed = join(work, 'printed.kubeconfig');
    writeFileSync(printed, stdout);
    const who = await run(join(bin, 'kubectl'), ['--kubeconfig', printed, 'auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}']);
    expect(who.stdout).toBe(`system:serviceaccount:ringmaster-access:user-${alice}`);
    const refused = await asUser(carol, command).then(() => undefined, (error: { code: number; stderr: string }) => error);
    expect(refused?.code).toBe(2);
    expect(refused?.stderr).toMatch(/does not have the sudo-srv permission/);
  }, 60_000);

  test('a round before renewal time changes nothing; at two thirds of the lifetime the file holds a new token', async () => {
    await tasks.round();
    expect(readFileSync(kubeconfigOf(alice), 'utf8')).toBe(aliceFirst);
    clock = 41 * 60_000;
    const report = await tasks.round();
    expect(report.errors).toEqual([]);
    const renewed = readFileSync(kubeconfigOf(alice), 'utf8');
    expect(renewed).not.toBe(aliceFirst);
    const token = (text: string) => /token: (\S+)/.exec(text)![1]!;
    expect(token(renewed)).not.toBe(token(aliceFirst));
    // The old token is not revoked early (a shell using it keeps working): it ends at its own expiry, which the apiserver enforces.
    const claims = (text: string) => JSON.parse(Buffer.from(token(text).split('.')[1]!, 'base64url').toString('utf8')) as { exp: number; iat: number };
    expect(claims(aliceFirst).exp - claims(aliceFirst).iat).toBe(3600);
    const { stdout } = await asUser(alice, 'kubectl get namespaces -o name');
    expect(stdout).toContain('namespace/default');
  }, 60_000);

  test('a symbolic link in a home does not lead the agent to write elsewhere (it writes as the user)', async () => {
    const target = join(work, 'root-only-target');
    writeFileSync(target, 'root secret\n', { mode: 0o600 });
    rmSync(kubeconfigOf(alice));
    symlinkSync(target, kubeconfigOf(alice));
    const report = await tasks.round();
    expect(report.errors).toEqual([]);
    expect(readFileSync(target, 'utf8')).toBe('root secret\n');
    expect(lstatSync(kubeconfigOf(alice)).isSymbolicLink()).toBe(false);
    expect(statSync(kubeconfigOf(alice)).uid).toBe(await uidOf(alice));
  }, 60_000);

  test('users without an account or a home are reported by name; the others are served', async () => {
    accessUsers = [alice, bob, dave, 'rmt-nobody'];
    const report = await tasks.update(serverTasks());
    expect(report?.homeKubeconfigs?.map((k) => k.user)).toEqual([alice, bob].sort());
    expect(report?.errors).toEqual(
      expect.arrayContaining([expect.stringMatching(new RegExp(`${dave}: the home .* of ${dave} does not exist`)), expect.stringMatching(/there is no Unix user rmt-nobody/)]),
    );
  }, 60_000);

  test('sudo-srv taken away: the file is gone and its token refused; the user\'s own earlier file stays', async () => {
    const bobsLast = readFileSync(kubeconfigOf(bob), 'utf8');
    accessUsers = [alice];
    const report = await tasks.update(serverTasks());
    expect(report?.errors).toEqual([]);
    expect(report?.revoked).toContain(bob);
    expect(() => lstatSync(kubeconfigOf(bob))).toThrow(/ENOENT/);
    expect(readFileSync(`${kubeconfigOf(bob)}.before-ringmaster`, 'utf8')).toContain("bob's own");
    const saved = join(work, 'bob-last.kubeconfig');
    writeFileSync(saved, bobsLast);
    const refused = await run(join(bin, 'kubectl'), ['--kubeconfig', saved, 'get', 'namespaces']).then(() => 'allowed', (error: { stderr: string }) => error.stderr);
    expect(refused).toMatch(/Unauthorized|must be logged in|Forbidden/);
    const command = onDisk(root, LOGIN_FILES.makeKubeconfig);
    const gone = await asUser(bob, command).then(() => undefined, (error: { code: number }) => error);
    expect(gone?.code).toBe(2);
  }, 60_000);

  test('a server without helm says so by name, and the users keep their kubeconfigs', async () => {
    rmSync(join(bin, 'helm'));
    const report = await tasks.round();
    expect(report.errors).toEqual([expect.stringMatching(/^users with sudo-srv lack helm on this server/)]);
    expect(report.homeKubeconfigs?.map((k) => k.user)).toEqual([alice]);
  }, 60_000);
});
