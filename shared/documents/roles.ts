/**
 * One renderer per role: each adds the files, folders and services its role needs to a
 * VM's document. A VM with several roles (say k3s-agent and k3s-nfs) gets each part.
 */
import { compareText } from '../compare.ts';
import { dirname } from 'node:path/posix';
import type { AcmeSettings } from '../certificates/acme-settings.ts';
import type { Layout } from '../layout.ts';
import type { Model } from '../model.ts';
import { maintenanceQueue } from '../findings/maintenance.ts';
import type { HaproxyPlan } from '../render/haproxy.ts';
import { localDatastoreEndpoint, renderDatastoreInit } from '../render/datastore.ts';
import { apiServerUrl, renderAgentConfig, renderServerConfig } from '../render/k3s.ts';
import { DASHBOARD_NODE_PORT, renderDashboard, renderNfsProvisioner } from '../render/manifests.ts';
import { renderExports } from '../render/nfs.ts';
import { renderFirewall } from '../render/firewall.ts';
import { certificateFiles, frontendVirtualHosts, renderNginx, tlsHosts, type VirtualHost } from '../render/nginx.ts';
import type { KubernetesTasks } from '../schema/document.ts';
import { SUDO_SRV } from '../schema/user.ts';
import type { Vm } from '../schema/vm.ts';
import { ownAddresses } from '../topology.ts';
import type { DocumentParts } from './builder.ts';

export interface RenderContext {
  readonly model: Model;
  /** Where the VM being rendered keeps its files. */
  readonly layout: Layout;
  /** Where any VM of the group keeps its files (the server's manifests name the NFS VMs' folders). */
  readonly layoutOf: (vm: string) => Layout;
  readonly haproxy: HaproxyPlan;
  /** Where the server's endpoint watcher posts; absent until the control plane has a URL. */
  readonly apiUrl: string | undefined;
  /**
   * The join tokens, each hashed once for every node: the server token (only the server's
   * document holds it: with it a node could join as a server), the agent token the server
   * accepts, and what agents and the webgateway join with (the same, with the CA's hash once known).
   */
  readonly tokens: { readonly server: SecretFileContent; readonly accepted: SecretFileContent; readonly join: SecretFileContent };
  /** Kubeconfig requests the server's agent answers. */
  readonly kubeconfigRequests: ReadonlyArray<{ readonly eventId: string; readonly user: string }>;
  /** Where the VMs with TLS hosts order their certificates. */
  readonly acme: AcmeSettings;
}

export interface SecretFileContent {
  readonly content: string;
  readonly sha256: string;
}

/**
 * k3s' config and the token the node joins with. The server also gets the agent token it
 * accepts (k3s `agent-token-file`); agents and the webgateway get that one as their own token,
 * at the same path the server token had, so an update overwrites it there.
 */
function k3sFiles(parts: DocumentParts, ctx: RenderContext, config: string, node: 'server' | 'agent', configIsSecret = false): void {
  const { layout, tokens } = ctx;
  parts
    .directory(dirname(layout.k3sConfig))
    .directory(dirname(layout.k3sTokenFile), '0700')
    .file({ path: layout.k3sConfig, mode: '0600', content: config, secret: configIsSecret })
    .file({ path: layout.k3sTokenFile, mode: '0600', ...(node === 'server' ? tokens.server : tokens.join), secret: true });
  if (node === 'server') parts.file({ path: layout.k3sAgentTokenFile, mode: '0600', ...tokens.accepted, secret: true });
  parts.service({ name: 'k3s', files: [layout.k3sConfig, layout.k3sTokenFile, ...(node === 'server' ? [layout.k3sAgentTokenFile] : [])] });
}

/** The server's and the webgateway's host firewall (they have public addresses), loaded before k3s (re)starts. */
function hostFirewall(parts: DocumentParts, ctx: RenderContext): void {
  const { layout, model } = ctx;
  parts
    .directory(dirname(layout.firewallRules))
    .file({ path: layout.firewallRules, mode: '0644', content: renderFirewall(model.cluster!.network.srvInterface, layout) })
    .service({ name: 'nftables', files: [layout.firewallRules] });
}

function nginxFiles(parts: DocumentParts, layout: Layout, vhosts: readonly VirtualHost[]): void {
  if (vhosts.length === 0) return;
  for (const dir of [dirname(layout.nginxConfig), layout.nginxRunDir, layout.nginxLogDir, layout.nginxTempDir, layout.acmeWebroot]) parts.directory(dir);
  parts
    .file({ path: layout.nginxConfig, mode: '0644', content: renderNginx(vhosts, layout) })
    .service({ name: 'nginx', files: [layout.nginxConfig] });
  for (const host of tlsHosts(vhosts)) parts.certificate({ host, ...certificateFiles(host, layout) });
}

export function renderServer(parts: DocumentParts, vm: Vm, ctx: RenderContext): KubernetesTasks {
  const { model, layout } = ctx;
  const cluster = model.cluster!;
  let datastoreEndpoint = cluster.datastoreEndpoint;
  const password = model.rg.secrets.datastorePassword;
  if (datastoreEndpoint === undefined && password !== undefined) {
    datastoreEndpoint = localDatastoreEndpoint(password);
    parts
      .directory(dirname(layout.datastoreInitFile), '0700')
      .file({ path: layout.datastoreInitFile, mode: '0600', content: renderDatastoreInit(password), secret: true })
      .service({ name: 'postgresql', files: [layout.datastoreInitFile] });
  }
  hostFirewall(parts, ctx);
  // The endpoint carries the datastore's password, or may: the config is a secret file.
  // (Without either, a topology finding withholds this document: see secrets.datastore-password-missing.)
  k3sFiles(parts, ctx, renderServerConfig(model, vm, layout, datastoreEndpoint ?? ''), 'server', true);
  parts.directory(layout.k3sManifestsDir);
  for (const nfsVm of model.topology.nfs) {
    parts.file({ path: `${layout.k3sManifestsDir}/ringmaster-nfs-${nfsVm.name}.yaml`, mode: '0600', content: renderNfsProvisioner(nfsVm, ctx.layoutOf(nfsVm.name)) });
  }
  const dashboardHost = cluster.dashboard.hostname ?? vm.fqdn;
  if (cluster.dashboard.enabled) {
    parts.file({ path: `${layout.k3sManifestsDir}/ringmaster-dashboard.yaml`, mode: '0600', content: renderDashboard() });
    if (dashboardHost) {
      const vpn = cluster.dashboard.vpnOnly;
      nginxFiles(parts, layout, [
        {
          serverName: dashboardHost,
          forceSSL: true,
          addresses: vm.publicAddresses,
          // VPN-only with no VPN network configured fails closed: `deny all`.
          locations: [{ path: '/', proxyPass: `https://127.0.0.1:${DASHBOARD_NODE_PORT}`, ...(vpn ? { allow: cluster.dashboard.vpnNetworks } : {}) }],
        },
      ]);
    }
  }
  const { webhookKey } = model.rg.secrets;
  if (webhookKey && ctx.apiUrl) {
    parts.file({ path: layout.webhookKeyFile, mode: '0600', content: `${webhookKey}\n`, secret: true });
  }
  const accessUsers = model.rg.users.filter((user) => user.permissions.includes(SUDO_SRV)).map((user) => user.name).sort();
  const watched = new Map(model.frontends.map((f) => [`${f.namespace}/${f.serviceName}`, { namespace: f.namespace, service: f.serviceName }]));
  return {
    accessUsers,
    kubeconfigRequests: ctx.kubeconfigRequests.filter((request) => accessUsers.includes(request.user)).map((request) => ({ user: request.user, requestId: request.eventId })),
    kubeconfigTtlHours: cluster.kubeconfigTtlHours,
    apiServerUrl: apiServerUrl(vm),
    watchedServices: [...watched.entries()].sort(([a], [b]) => compareText(a, b)).map(([, value]) => value),
    drainNodes: maintenanceQueue(model).slice(0, 1).map((agent) => agent.name),
    drainTimeoutSeconds: cluster.drainTimeoutSeconds,
    ...(model.rg.secrets.clusterCaHash ? { clusterCaHash: model.rg.secrets.clusterCaHash } : {}),
    ...(webhookKey && ctx.apiUrl ? { controlPlane: { apiUrl: ctx.apiUrl, keyFile: layout.webhookKeyFile } } : {}),
  };
}

export function renderAgent(parts: DocumentParts, vm: Vm, server: Vm, ctx: RenderContext): void {
  k3sFiles(parts, ctx, renderAgentConfig(ctx.model, vm, server, ctx.layout, 'k3s-agent'), 'agent');
}

export function renderWebgateway(parts: DocumentParts, vm: Vm, server: Vm, ctx: RenderContext): void {
  const { layout, model } = ctx;
  hostFirewall(parts, ctx);
  k3sFiles(parts, ctx, renderAgentConfig(model, vm, server, layout, 'webgateway'), 'agent');
  parts
    .directory(dirname(layout.haproxyConfig))
    .directory(dirname(layout.haproxySocket))
    .directory(dirname(layout.haproxyStateFile))
    .file({ path: layout.haproxyConfig, mode: '0644', content: ctx.haproxy.config, sha256: ctx.haproxy.configSha256 })
    .service({ name: 'haproxy', files: [layout.haproxyConfig] });
  // A sandboxed VM's haproxy listens on its own addresses only (render/haproxy.ts): nginx reaches it there.
  nginxFiles(parts, layout, frontendVirtualHosts(model.frontends, vm.publicAddresses, layout.sharedMachine ? ownAddresses(vm)[0] : undefined));
}

export function renderNfs(parts: DocumentParts, ctx: RenderContext): void {
  const { layout, model } = ctx;
  parts
    .directory(layout.nfsExportDir, '0755', 'nobody', 'nogroup')
    .directory(dirname(layout.nfsExportsFile))
    .file({ path: layout.nfsExportsFile, mode: '0644', content: renderExports(model.topology.agents, layout) })
    .service({ name: 'nfs', files: [layout.nfsExportsFile] });
}
