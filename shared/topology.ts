/** Who does what in a resource group, read off the VMs' roles. */
import { type KubernetesRole, isKubernetesRole, MINIMUMS, NODE_ROLES } from './roles.ts';
import type { Vm } from './schema/vm.ts';

export interface Topology {
  readonly servers: readonly Vm[];
  readonly agents: readonly Vm[];
  readonly webgateways: readonly Vm[];
  readonly nfs: readonly Vm[];
  /** Every VM that runs k3s (server, agents, webgateways): each needs a node subnet. */
  readonly nodes: readonly Vm[];
  /** Every VM with any Kubernetes role. */
  readonly members: readonly Vm[];
}

export function kubernetesRolesOf(vm: Vm): KubernetesRole[] {
  return vm.roles.filter(isKubernetesRole).sort();
}

export function topologyOf(vms: readonly Vm[]): Topology {
  const withRole = (role: KubernetesRole) => vms.filter((vm) => vm.roles.includes(role));
  return {
    servers: withRole('k3s-server'),
    agents: withRole('k3s-agent'),
    webgateways: withRole('webgateway'),
    nfs: withRole('k3s-nfs'),
    nodes: vms.filter((vm) => NODE_ROLES.some((role) => vm.roles.includes(role))),
    members: vms.filter((vm) => kubernetesRolesOf(vm).length > 0),
  };
}

/** The address a VM is reached at on the srv network: IPv4 first, as flannel host-gw uses it. */
export function srvAddress(vm: Vm): string | undefined {
  return vm.srvAddresses.find((address) => !address.includes(':')) ?? vm.srvAddresses[0];
}

/** Every address the VM has (srv first, then public), each once: what "every address" means on it. */
export function ownAddresses(vm: Vm): string[] {
  return [...new Set([...vm.srvAddresses, ...vm.publicAddresses])];
}

/** The ways a VM falls short of a role's minimum, as phrases; empty when it meets it. */
export function shortfalls(vm: Vm, role: KubernetesRole): string[] {
  const minimum = MINIMUMS[role];
  const result: string[] = [];
  if (vm.cpu < minimum.cpu) result.push(`${vm.cpu} CPU (needs ${minimum.cpu})`);
  if (vm.memoryMiB < minimum.memoryMiB) {
    result.push(`${formatGiB(vm.memoryMiB)} RAM (needs ${formatGiB(minimum.memoryMiB)})`);
  }
  const usable = vm.disks.filter((disk) => minimum.diskKind === 'any' || disk.kind === minimum.diskKind);
  const diskGiB = usable.reduce((sum, disk) => sum + disk.sizeGiB, 0);
  const kind = minimum.diskKind === 'ssd' ? 'SSD' : 'disk';
  if (diskGiB < minimum.diskGiB) result.push(`${diskGiB} GiB ${kind} (needs ${minimum.diskGiB})`);
  return result;
}

function formatGiB(mib: number): string {
  const gib = mib / 1024;
  return `${Number.isInteger(gib) ? gib : gib.toFixed(1)} GiB`;
}

/** Bracketed for URLs and `host:port` strings when the address is IPv6. */
export function hostPort(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}
