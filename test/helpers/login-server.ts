/**
 * The login side of a k3s server for tests of what a sudo-srv user gets there: real Unix users
 * (useradd, so the test runs as root) whose homes sit in a temp folder, the kubectl built with the
 * test's kube-apiserver where every user can run it, and the agent's Kubernetes tasks
 * (ServerTasks, as `ringmaster agent` runs them) writing under a folder root. The test stands in
 * for the platform, which creates the users and their homes; the agent never does.
 */
import { execFile } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { onDisk } from '../../agent/files.ts';
import { ServerTasks } from '../../agent/kubernetes/server-tasks.ts';
import type { KubernetesTasks } from '../../shared/schema/document.ts';
import type { KubeApiServer } from './kube-apiserver.ts';

export const run = promisify(execFile);

export class LoginServer {
  /** Holds the homes, the programs, the agent's folder root and its state; 0755 so homes below it are reachable by their users, as /home is. */
  readonly work: string;
  /** The agent's folder root (what it writes to `/etc/...` lands below it). */
  readonly root: string;
  /** kubectl, and a helm stand-in (only its presence is checked): on every user's PATH. */
  readonly bin: string;
  readonly #users: string[] = [];

  constructor(prefix: string) {
    this.work = mkdtempSync(join(tmpdir(), prefix));
    chmodSync(this.work, 0o755);
    this.root = join(this.work, 'root');
    this.bin = join(this.work, 'bin');
  }

  homeOf(user: string): string {
    return join(this.work, 'home', user);
  }

  kubeconfigOf(user: string): string {
    return join(this.homeOf(user), '.kube', 'config');
  }

  /** Puts the programs users are promised where all can run them (the kubectl built with the apiserver sits in root's cache). */
  installPrograms(kube: KubeApiServer): void {
    mkdirSync(this.bin, { recursive: true });
    copyFileSync(kube.kubectl, join(this.bin, 'kubectl'));
    chmodSync(join(this.bin, 'kubectl'), 0o755);
    writeFileSync(join(this.bin, 'helm'), '#!/bin/sh\n', { mode: 0o755 });
  }

  /** What the platform does for a user: the account and, unless told otherwise, a home they own. */
  async addUser(user: string, options: { home: boolean } = { home: true }): Promise<void> {
    await run('useradd', ['--no-create-home', '--home-dir', this.homeOf(user), '--shell', '/bin/sh', user]);
    this.#users.push(user);
    if (!options.home) return;
    mkdirSync(this.homeOf(user), { recursive: true, mode: 0o755 });
    await run('chown', [`${user}:`, this.homeOf(user)]);
  }

  async uidOf(user: string): Promise<number> {
    return Number((await run('id', ['-u', user])).stdout.trim());
  }

  /** A command run by `user` as after an SSH login: their uid, their HOME, a clean environment. */
  asUser(user: string, script: string): Promise<{ stdout: string; stderr: string }> {
    return run('runuser', ['-u', user, '--', 'env', '-i', `HOME=${this.homeOf(user)}`, `PATH=${this.bin}:/usr/bin:/bin`, 'sh', '-c', script], { timeout: 30_000 });
  }

  /** The server agent's Kubernetes tasks against `kube`, keeping kubeconfigs in the users' homes. */
  serverTasks(kube: KubeApiServer, options: { now?: () => Date } = {}): ServerTasks {
    return new ServerTasks({
      kubeconfigPath: kube.adminKubeconfigPath,
      onDisk: (path) => onDisk(this.root, path),
      resourceGroup: 'demo',
      ...(options.now ? { now: options.now } : {}),
      homes: { stateFile: join(this.work, 'state', 'home-kubeconfigs.json'), toolPaths: { programFolders: [this.bin], unitFolders: [] } },
    });
  }

  /** Removes the users this server added and its folder. */
  async remove(): Promise<void> {
    for (const user of this.#users) await run('userdel', [user]).catch(() => undefined);
    rmSync(this.work, { recursive: true, force: true });
  }
}

/** The part of a k3s server's document the Kubernetes tasks read, for `accessUsers` with sudo-srv. */
export function kubernetesTasks(kube: KubeApiServer, accessUsers: string[], kubeconfigTtlHours: number): KubernetesTasks {
  return { accessUsers, kubeconfigRequests: [], kubeconfigTtlHours, apiServerUrl: kube.url, watchedServices: [], drainNodes: [], drainTimeoutSeconds: 60 };
}
