/**
 * k3s configuration files (`/etc/rancher/k3s/config.yaml`): keys are k3s's own flag names.
 * The server uses PostgreSQL as its datastore and flannel host-gw over the srv interface;
 * the server and the webgateway carry the server taint so no workload lands on them.
 */
import { stringify } from 'yaml';
import type { Layout } from '../layout.ts';
import type { Model } from '../model.ts';
import type { Vm } from '../schema/vm.ts';
import { hostPort, srvAddress } from '../topology.ts';

export const SERVER_TAINT = 'node-role.kubernetes.io/server=true:NoSchedule';
export const ROLE_LABEL = 'ringmaster.io/role';
const HEADER = '# Managed by Ringmaster: changes here are overwritten.\n';

function nodeIp(model: Model, vm: Vm): string {
  const v4 = srvAddress(vm) ?? '';
  const v6 = vm.srvAddresses.find((address) => address.includes(':'));
  return model.cluster?.network.dualStack && v6 && v6 !== v4 ? `${v4},${v6}` : v4;
}

export function apiServerUrl(server: Vm): string {
  const host = server.fqdn ?? server.publicAddresses[0] ?? srvAddress(server) ?? server.name;
  return `https://${host.includes(':') ? `[${host}]` : host}:6443`;
}

/** Agents join through the srv network, never over the internet. */
function joinUrl(server: Vm): string {
  return `https://${hostPort(srvAddress(server) ?? server.name, 6443)}`;
}

/** `datastoreEndpoint`: the external one configured, or the server's own PostgreSQL (secret). */
export function renderServerConfig(model: Model, vm: Vm, layout: Layout, datastoreEndpoint: string): string {
  const network = model.cluster!.network;
  const dual = network.dualStack;
  const sans = [...new Set([vm.fqdn, ...vm.publicAddresses, ...vm.srvAddresses].filter((s): s is string => Boolean(s)))].sort();
  const config = {
    'node-name': vm.name,
    'node-ip': nodeIp(model, vm),
    'advertise-address': srvAddress(vm),
    'flannel-backend': 'host-gw',
    'flannel-iface': network.srvInterface,
    'cluster-cidr': dual ? `${network.clusterCidr},${dual.clusterCidr}` : network.clusterCidr,
    'service-cidr': dual ? `${network.serviceCidr},${dual.serviceCidr}` : network.serviceCidr,
    'cluster-dns': network.clusterDns,
    'datastore-endpoint': datastoreEndpoint,
    'token-file': layout.k3sTokenFile,
    'tls-san': sans,
    'node-taint': [SERVER_TAINT],
    'node-label': [`${ROLE_LABEL}=k3s-server`],
    'kube-controller-manager-arg': dual
      ? [`node-cidr-mask-size-ipv4=${network.nodeCidrMaskSize}`, `node-cidr-mask-size-ipv6=${dual.nodeCidrMaskSize}`]
      : [`node-cidr-mask-size=${network.nodeCidrMaskSize}`],
    'write-kubeconfig-mode': '0600',
  };
  return HEADER + stringify(config);
}

export function renderAgentConfig(model: Model, vm: Vm, server: Vm, layout: Layout, role: 'k3s-agent' | 'webgateway'): string {
  const config = {
    server: joinUrl(server),
    'token-file': layout.k3sTokenFile,
    'node-name': vm.name,
    'node-ip': nodeIp(model, vm),
    'flannel-iface': model.cluster!.network.srvInterface,
    'node-label': [`${ROLE_LABEL}=${role}`],
    // The webgateway joins only for routes to the pod network, never to run pods.
    ...(role === 'webgateway' ? { 'node-taint': [SERVER_TAINT] } : {}),
  };
  return HEADER + stringify(config);
}
