/**
 * Where things live on a VM and how services are reloaded. The defaults are a production
 * VM's; tests and dry runs pass their own (a temp folder, no systemd), so real haproxy and
 * nginx can check what we render without touching /etc.
 */

export type DaemonName = 'nftables' | 'k3s' | 'haproxy' | 'nginx' | 'nfs';

export interface Layout {
  readonly k3sConfig: string;
  /** The token this node joins with: the server token on the server, the agent token on agents and the webgateway. */
  readonly k3sTokenFile: string;
  /** The server only: the agent token it accepts from agents and the webgateway (k3s `agent-token-file`). */
  readonly k3sAgentTokenFile: string;
  readonly k3sManifestsDir: string;
  readonly webhookKeyFile: string;
  readonly datastoreInitFile: string;
  readonly haproxyConfig: string;
  readonly haproxySocket: string;
  readonly haproxyStateFile: string;
  readonly nginxConfig: string;
  readonly nginxRunDir: string;
  readonly nginxLogDir: string;
  readonly nginxTempDir: string;
  readonly acmeDir: string;
  readonly acmeWebroot: string;
  readonly nfsExportsFile: string;
  readonly nfsExportDir: string;
  /** The server's and the webgateway's nftables rules (see render/firewall.ts). */
  readonly firewallRules: string;
  /** The command that reloads (or restarts) a daemon after its files changed. */
  readonly reload: (daemon: DaemonName) => string[];
  /**
   * Set only for a sandboxed VM (`sandboxLayouts`): a folder on a machine whose network it
   * shares with other sandboxed VMs. A bind on every address then means the VM's own addresses
   * (its srv and public ones), and haproxy refuses a port another VM holds instead of sharing
   * it (see render/haproxy.ts). Absent on a real VM, whose documents it never changes.
   */
  readonly sharedMachine?: true;
}

function systemdReload(daemon: DaemonName): string[] {
  switch (daemon) {
    case 'k3s':
      // k3s has no reload; a restart leaves running pods alone (containerd keeps them).
      return ['systemctl', 'restart', 'k3s.service'];
    case 'nfs':
      return ['exportfs', '-ra'];
    case 'nftables':
      // One transaction (the file replaces our table whole); the kernel keeps it until a reboot.
      return ['nft', '-f', FIREWALL_RULES];
    default:
      return ['systemctl', 'reload', `${daemon}.service`];
  }
}

const FIREWALL_RULES = '/etc/nftables.d/ringmaster-k3s.nft';

export const DEFAULT_LAYOUT: Layout = {
  k3sConfig: '/etc/rancher/k3s/config.yaml',
  k3sTokenFile: '/var/lib/ringmaster/k3s-token',
  k3sAgentTokenFile: '/var/lib/ringmaster/k3s-agent-token',
  k3sManifestsDir: '/var/lib/rancher/k3s/server/manifests',
  webhookKeyFile: '/var/lib/ringmaster/webhook-key',
  datastoreInitFile: '/var/lib/ringmaster/k3s-datastore.sql',
  haproxyConfig: '/etc/haproxy/haproxy.cfg',
  haproxySocket: '/run/haproxy/admin.sock',
  haproxyStateFile: '/var/lib/haproxy/server-state',
  nginxConfig: '/etc/nginx/nginx.conf',
  nginxRunDir: '/run/nginx',
  nginxLogDir: '/var/log/nginx',
  nginxTempDir: '/var/cache/nginx',
  acmeDir: '/var/lib/acme',
  acmeWebroot: '/var/lib/acme/acme-challenge',
  nfsExportsFile: '/etc/exports.d/kubernetes.exports',
  nfsExportDir: '/srv/nfs/kubernetes',
  firewallRules: FIREWALL_RULES,
  reload: systemdReload,
};

/** A layout (the production one by default) moved under `root` (for tests and dry runs); commands stay as they are. */
export function layoutUnder(root: string, reload: Layout['reload'] = DEFAULT_LAYOUT.reload, base: Layout = DEFAULT_LAYOUT): Layout {
  const prefix = root.replace(/\/$/, '');
  const moved = Object.fromEntries(Object.entries(base).map(([key, value]) => [key, typeof value === 'string' ? `${prefix}${value}` : value]));
  return { ...(moved as unknown as Layout), reload };
}

/**
 * Where each VM of a group keeps its files: one layout for every VM (production VMs; a test's
 * single folder), or one per VM, so sandboxed VMs run side by side on one machine, each in a
 * folder of its own (`ringmaster serve --sandbox-root`).
 */
export type VmLayouts = Layout | ((resourceGroup: string, vm: string) => Layout);

export function layoutOfVm(layouts: VmLayouts | undefined, resourceGroup: string, vm: string): Layout {
  if (layouts === undefined) return DEFAULT_LAYOUT;
  return typeof layouts === 'function' ? layouts(resourceGroup, vm) : layouts;
}

/** The folder a sandboxed VM lives in: the control plane renders its documents for it, its agent runs there. */
export function sandboxRoot(root: string, resourceGroup: string, vm: string): string {
  return `${root.replace(/\/$/, '')}/${resourceGroup}/${vm}`;
}

/** Every VM of every group in a folder of its own below `root`, sharing this machine's network. */
export function sandboxLayouts(root: string): VmLayouts {
  return (resourceGroup, vm) => ({ ...layoutUnder(sandboxRoot(root, resourceGroup, vm)), sharedMachine: true });
}
