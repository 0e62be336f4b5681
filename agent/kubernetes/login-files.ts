/**
 * What a user with `sudo-srv` meets after logging in to the k3s server, as the spec describes
 * it: `KUBECONFIG` set for login shells, and the `kubernetes-make-kubeconfig` command. These are
 * the agent's own files, the same on every server: no document sends them (a document that could
 * put a program on root's PATH would make its writer root, see shared/services.ts).
 */
import { readIfExists, writeAtomically } from '../files.ts';

export const LOGIN_FILES = {
  /** Read by login shells (/etc/profile runs every script here). */
  profileScript: '/etc/profile.d/ringmaster-kubeconfig.sh',
  /** The command the spec names, on every user's PATH. */
  makeKubeconfig: '/usr/local/bin/kubernetes-make-kubeconfig',
  /** Who has `sudo-srv` here, for the command: world-readable, holds names only. */
  accessUsers: '/etc/ringmaster/kubeconfig-users',
} as const;

const PROFILE_SCRIPT = `# Installed by the ringmaster agent on the k3s server: kubectl, helm and other tools use the
# kubeconfig the agent keeps in the home of each user with sudo-srv (renewed before it expires).
if [ -z "\${KUBECONFIG:-}" ] && [ -r "$HOME/.kube/config" ]; then
  export KUBECONFIG="$HOME/.kube/config"
fi
`;

/** The command prints the caller's own kubeconfig (the one the agent keeps current), never anyone else's. */
export function makeKubeconfigScript(accessUsersFile: string): string {
  return `#!/bin/sh
# kubernetes-make-kubeconfig: prints a kubeconfig for you (users with sudo-srv), for kubectl on
# another machine, the API or the dashboard. Installed by the ringmaster agent on the k3s server.
# Usage: kubernetes-make-kubeconfig > "$USER-$(hostname).kubeconfig"
set -u
me=$(id -un)
if ! grep -qxF -- "$me" '${accessUsersFile}' 2>/dev/null; then
  echo "kubernetes-make-kubeconfig: $me does not have the sudo-srv permission in this resource group" >&2
  exit 2
fi
home=$(getent passwd "$me" | cut -d: -f6)
config="$home/.kube/config"
if [ ! -r "$config" ]; then
  echo "kubernetes-make-kubeconfig: $config is not there yet: the agent writes it within a minute of sudo-srv being granted" >&2
  exit 1
fi
cat "$config"
echo "kubernetes-make-kubeconfig: keep this file secret: it grants unlimited access to the cluster (its token expires; run this again for a fresh one)" >&2
`;
}

/** Writes the login files under `onDisk` where they differ, and the list of users with access. */
export async function installLoginFiles(onDisk: (path: string) => string, accessUsers: readonly string[]): Promise<void> {
  const wanted: Array<[string, string, number]> = [
    [LOGIN_FILES.profileScript, PROFILE_SCRIPT, 0o644],
    [LOGIN_FILES.makeKubeconfig, makeKubeconfigScript(onDisk(LOGIN_FILES.accessUsers)), 0o755],
    [LOGIN_FILES.accessUsers, [...new Set(accessUsers)].sort().map((user) => `${user}\n`).join(''), 0o644],
  ];
  for (const [path, content, mode] of wanted) {
    const target = onDisk(path);
    if ((await readIfExists(target))?.toString('utf8') === content) continue;
    await writeAtomically(target, content, mode);
  }
}
