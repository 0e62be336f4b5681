/**
 * What each service needs on the VM before the agent can run its commands: the programs it
 * calls and the systemd units it reloads. Checked before anything is written, so a VM that
 * lacks them is told what by name rather than failing on `spawn ENOENT` or a systemctl error.
 * Where to look is the caller's (a VM's folders by default; tests pass their own).
 */
import type { ServiceName } from './services.ts';

export interface Prerequisite {
  /** What the report calls it. */
  readonly name: string;
  readonly kind: 'program' | 'unit';
  /** The file's name in one of the folders searched for its kind. */
  readonly file: string;
}

/** Where programs and systemd units are looked for. */
export interface PrerequisitePaths {
  readonly programFolders: readonly string[];
  readonly unitFolders: readonly string[];
}

/** A Debian VM's: programs on root's PATH, units where packages and the k3s installer put them. */
export const DEFAULT_PREREQUISITE_PATHS: PrerequisitePaths = {
  programFolders: ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'],
  unitFolders: ['/etc/systemd/system', '/usr/local/lib/systemd/system', '/usr/lib/systemd/system', '/lib/systemd/system'],
};

const program = (file: string, name = file): Prerequisite => ({ name, kind: 'program', file });
const unit = (file: string, name: string): Prerequisite => ({ name, kind: 'unit', file });
const SYSTEMCTL = program('systemctl', 'systemd (systemctl)');

/** Matches the commands of `serviceCommands` on a production layout. */
export const SERVICE_PREREQUISITES: Readonly<Record<ServiceName, readonly Prerequisite[]>> = {
  nftables: [program('nft', 'nftables (nft)')],
  postgresql: [program('psql', 'the PostgreSQL client (psql)'), program('runuser'), unit('postgresql.service', 'the PostgreSQL server (postgresql.service)')],
  k3s: [program('k3s', 'the k3s binary'), SYSTEMCTL, unit('k3s.service', 'the k3s systemd unit (k3s.service)')],
  haproxy: [program('haproxy'), SYSTEMCTL, unit('haproxy.service', 'the haproxy systemd unit (haproxy.service)')],
  nginx: [program('nginx'), SYSTEMCTL, unit('nginx.service', 'the nginx systemd unit (nginx.service)')],
  nfs: [program('exportfs', 'the NFS server tools (exportfs)'), unit('nfs-server.service', 'the NFS server (nfs-server.service)')],
};

/**
 * What users with sudo-srv are promised on the k3s server after SSH login (the spec: kubectl and
 * helm). Missing ones are reported by name but block nothing: the cluster runs without them.
 */
export const LOGIN_TOOLS: readonly Prerequisite[] = [program('kubectl', 'kubectl (the k3s installer links it to k3s)'), program('helm')];

export interface PrerequisiteCandidates {
  readonly prerequisite: Prerequisite;
  readonly candidates: readonly string[];
}

/** What `services` need, each once, with the paths it may be found at. */
export function prerequisitesOf(services: readonly ServiceName[], paths: PrerequisitePaths): PrerequisiteCandidates[] {
  return candidatesOf(services.flatMap((service) => SERVICE_PREREQUISITES[service]), paths);
}

/** Each prerequisite once, with the paths it may be found at. */
export function candidatesOf(prerequisites: readonly Prerequisite[], paths: PrerequisitePaths): PrerequisiteCandidates[] {
  const needed = [...new Map(prerequisites.map((p) => [`${p.kind}:${p.file}`, p])).values()];
  return needed.map((prerequisite) => ({
    prerequisite,
    candidates: (prerequisite.kind === 'program' ? paths.programFolders : paths.unitFolders).map((folder) => `${folder.replace(/\/$/, '')}/${prerequisite.file}`),
  }));
}

/** The reason an apply cannot start, naming what is missing; undefined when nothing is. */
export function missingPrerequisitesReason(missing: readonly Prerequisite[]): string | undefined {
  if (missing.length === 0) return undefined;
  return `this VM lacks what its roles need: ${missing.map((p) => p.name).join(', ')} (see "What a VM needs" in the README)`;
}
