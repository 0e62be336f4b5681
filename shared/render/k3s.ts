/**
 * k3s configuration files (`/etc/rancher/k3s/config.yaml`): keys are k3s's own flag names.
 * The server uses PostgreSQL as its datastore and flannel host-gw over the srv interface;
 * the server and the webgateway carry the control-plane taint so no workload lands on them.
 * What k3s' sources and docs say about each choice is in docs/k3s-notes.md.
 */
import type { Layout } from '../layout.ts';
import type { Model } from '../model.ts';
import type { Vm } from '../schema/vm.ts';
import { hostPort, srvAddress } from '../topology.ts';

/**
 * Keeps workloads off the server and the webgateway. It is a taint k3s' service load balancer
 * tolerates (its svclb DaemonSets tolerate `node-role.kubernetes.io/control-plane` and
 * `…/master` with NoSchedule, and `CriticalAddonsOnly`): the platform's own
 * `node-role.kubernetes.io/server` is tolerated by none of them, so no load balancer port would
 * answer on those two VMs, where the spec says any Kubernetes VM serves them.
 */
export const SERVER_TAINT = 'node-role.kubernetes.io/control-plane=true:NoSchedule';
export const ROLE_LABEL = 'ringmaster.io/role';
const HEADER = '# Managed by Ringmaster: changes here are overwritten.\n';

type ConfigValue = string | readonly string[] | undefined;

/**
 * k3s's config.yaml holds only strings and lists of strings here, so each value is written as
 * a JSON string, which is a valid YAML double-quoted scalar. This replaces the yaml library
 * for the one file every node gets: it took ~23 µs per document, a quarter of the desired-state
 * time of a 253-agent group (bench/); this takes about 1 µs.
 */
export function k3sConfigYaml(config: Readonly<Record<string, ConfigValue>>): string {
  let text = HEADER;
  for (const [key, value] of Object.entries(config)) {
    if (value === undefined) continue;
    if (typeof value === 'string') text += `${key}: ${JSON.stringify(value)}\n`;
    else text += `${key}:${value.length === 0 ? ' []' : ''}\n${value.map((item) => `  - ${JSON.stringify(item)}\n`).join('')}`;
  }
  return text;
}

function nodeIp(model: Model, vm: Vm): string {
  const v4 = srvAddress(vm) ?? '';
  const v6 = vm.srvAddresses.find((address) => address.includes(':'));
  return model.cluster?.network.dualStack && v6 && v6 !== v4 ? `${v4},${v6}` : v4;
}

export function apiServerUrl(server: Vm): string {
  const host = server.fqdn ?? server.publicAddresses[0] ?? srvAddress(server) ?? server.name;
  return `https://${host.includes(':') ? `[${host}]` : host}:6443`;
}

/**
 * kube-proxy opens NodePorts only on the node's srv addresses (and loopback, where the server's
 * nginx reaches the dashboard), never on the public addresses of the server or the webgateway:
 * "all traffic from outside the resource group must pass through the webgateway".
 */
function nodePortAddresses(vm: Vm): string {
  const own = vm.srvAddresses.map((address) => (address.includes(':') ? `${address}/128` : `${address}/32`));
  return `nodeport-addresses=${[...own, '127.0.0.0/8'].join(',')}`;
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
  const config: Record<string, ConfigValue> = {
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
    // Agents and the webgateway join with this one: it cannot join a server.
    'agent-token-file': layout.k3sAgentTokenFile,
    'tls-san': sans,
    'node-taint': [SERVER_TAINT],
    'node-label': [`${ROLE_LABEL}=k3s-server`],
    'kube-controller-manager-arg': dual
      ? [`node-cidr-mask-size-ipv4=${network.nodeCidrMaskSize}`, `node-cidr-mask-size-ipv6=${dual.nodeCidrMaskSize}`]
      : [`node-cidr-mask-size=${network.nodeCidrMaskSize}`],
    'kube-proxy-arg': [nodePortAddresses(vm)],
    'write-kubeconfig-mode': '0600',
  };
  return k3sConfigYaml(config);
}

export function renderAgentConfig(model: Model, vm: Vm, server: Vm, layout: Layout, role: 'k3s-agent' | 'webgateway'): string {
  const config: Record<string, ConfigValue> = {
    server: joinUrl(server),
    // The agent token (see renderServerConfig), never the server token.
    'token-file': layout.k3sTokenFile,
    'node-name': vm.name,
    'node-ip': nodeIp(model, vm),
    'flannel-iface': model.cluster!.network.srvInterface,
    'node-label': [`${ROLE_LABEL}=${role}`],
    'kube-proxy-arg': [nodePortAddresses(vm)],
    // The webgateway joins only for routes to the pod network, never to run pods.
    ...(role === 'webgateway' ? { 'node-taint': [SERVER_TAINT] } : {}),
  };
  return k3sConfigYaml(config);
}
