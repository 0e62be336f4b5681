/**
 * What the agent may do for each role, owned by the agent and never sent by a document: the
 * services a role runs, how each is validated and reloaded, and the folders a role may write.
 * A document names services and files; a signed document that names a service or a path its
 * roles never need is refused whole, and no argv from a document is ever run.
 */
import { dirname } from 'node:path/posix';
import type { Layout } from './layout.ts';
import { datastoreInitCommand } from './render/datastore.ts';
import type { KubernetesRole } from './roles.ts';

export const SERVICE_NAMES = ['nftables', 'postgresql', 'k3s', 'haproxy', 'nginx', 'nfs'] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

export interface ServiceCommands {
  /** Checks the new files before anything goes live. */
  readonly validate?: readonly string[];
  readonly reload: readonly string[];
  /**
   * A file the agent reads (as root) and gives `reload` on its standard input: the command
   * may run as another user, who cannot open the root-only file itself.
   */
  readonly reloadInput?: string;
  /**
   * What `reload` loads lives only in the kernel (gone after a reboot): the agent loads it again
   * when it starts, from the document it applied last.
   */
  readonly reloadOnStart?: boolean;
}

/** How each service is checked and (re)loaded on a VM of this layout. */
export function serviceCommands(layout: Layout): Readonly<Record<ServiceName, ServiceCommands>> {
  return {
    nftables: { validate: ['nft', '-c', '-f', layout.firewallRules], reload: layout.reload('nftables'), reloadOnStart: true },
    // The datastore's role and database, prepared before k3s (re)starts; idempotent SQL. psql
    // runs as postgres and reads the SQL (it holds the password: root only) from its stdin.
    postgresql: { reload: datastoreInitCommand(), reloadInput: layout.datastoreInitFile },
    k3s: { reload: layout.reload('k3s') },
    haproxy: { validate: ['haproxy', '-c', '-f', layout.haproxyConfig], reload: layout.reload('haproxy') },
    nginx: { validate: ['nginx', '-t', '-c', layout.nginxConfig], reload: layout.reload('nginx') },
    nfs: { reload: layout.reload('nfs') },
  };
}

/** The services each role runs. */
export const ROLE_SERVICES: Readonly<Record<KubernetesRole, readonly ServiceName[]>> = {
  'k3s-server': ['nftables', 'postgresql', 'k3s', 'nginx'],
  'k3s-agent': ['k3s'],
  webgateway: ['nftables', 'k3s', 'haproxy', 'nginx'],
  'k3s-nfs': ['nfs'],
};

/** The folders each service's files and folders live in, on a VM of this layout. */
function serviceFolders(layout: Layout): Readonly<Record<ServiceName, readonly string[]>> {
  return {
    nftables: [dirname(layout.firewallRules)],
    postgresql: [dirname(layout.datastoreInitFile)],
    k3s: [dirname(layout.k3sConfig), dirname(layout.k3sTokenFile), layout.k3sManifestsDir, dirname(layout.webhookKeyFile)],
    haproxy: [dirname(layout.haproxyConfig), dirname(layout.haproxySocket), dirname(layout.haproxyStateFile)],
    nginx: [dirname(layout.nginxConfig), layout.nginxRunDir, layout.nginxLogDir, layout.nginxTempDir, layout.acmeDir],
    nfs: [dirname(layout.nfsExportsFile), layout.nfsExportDir],
  };
}

/** The folders a VM with these roles may write below (each one itself included). */
export function writableFolders(layout: Layout, roles: readonly KubernetesRole[]): string[] {
  const folders = serviceFolders(layout);
  return [...new Set(roles.flatMap((role) => ROLE_SERVICES[role].flatMap((service) => folders[service])))].sort();
}

/** `path` is one of `folders` or below one: compared segment by segment, no `..` accepted. */
export function isBelow(path: string, folders: readonly string[]): boolean {
  if (!path.startsWith('/') || path.split('/').some((segment) => segment === '..' || segment === '.')) return false;
  return folders.some((folder) => path === folder || path.startsWith(`${folder.replace(/\/$/, '')}/`));
}

/**
 * Why a document asks for more than its roles need (services, or paths outside the roles'
 * folders), or undefined when it does not. Checked before anything is written.
 */
export function beyondRoles(
  document: {
    readonly roles: readonly KubernetesRole[];
    readonly services: ReadonlyArray<{ readonly name: string }>;
    readonly files: ReadonlyArray<{ readonly path: string }>;
    readonly directories: ReadonlyArray<{ readonly path: string }>;
    readonly certificates?: ReadonlyArray<{ readonly certificateFile: string; readonly keyFile: string }> | undefined;
    readonly acme?: { readonly webroot: string } | undefined;
  },
  layout: Layout,
): string | undefined {
  const allowed = new Set<string>(document.roles.flatMap((role) => ROLE_SERVICES[role]));
  const services = document.services.map((service) => service.name).filter((name) => !allowed.has(name));
  if (services.length > 0) return `it names service(s) ${services.join(', ')}, which its roles (${document.roles.join(', ') || 'none'}) do not run`;
  const folders = writableFolders(layout, document.roles);
  // The certificates' files and the challenge webroot are written by the agent itself: the same fence holds.
  const certificatePaths = (document.certificates ?? []).flatMap((certificate) => [certificate.certificateFile, certificate.keyFile]);
  const paths = [...[...document.files, ...document.directories].map((entry) => entry.path), ...certificatePaths, ...(document.acme ? [document.acme.webroot] : [])].filter((path) => !isBelow(path, folders));
  if (paths.length > 0) return `it writes ${paths.slice(0, 3).join(', ')}${paths.length > 3 ? ` and ${paths.length - 3} more` : ''}, outside the folders its roles (${document.roles.join(', ') || 'none'}) own`;
  return undefined;
}
