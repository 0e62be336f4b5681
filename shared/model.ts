/** The resource group as the checks and renderers see it: roles settled, defaults resolved. */
import { compareText } from './compare.ts';
import type { ClusterSettings } from './schema/cluster.ts';
import { type Frontend, resolveFrontend } from './schema/frontend.ts';
import type { ResourceGroup } from './schema/resource-group.ts';
import type { Vm } from './schema/vm.ts';
import { type Topology, topologyOf } from './topology.ts';

export interface Model {
  readonly rg: ResourceGroup;
  readonly cluster: ClusterSettings | undefined;
  readonly vms: readonly Vm[];
  readonly topology: Topology;
  /** Sorted by name, so every rendering is in a stable order. */
  readonly frontends: readonly Frontend[];
}

export function buildModel(rg: ResourceGroup, vms: readonly Vm[] = rg.vms): Model {
  const sortedVms = [...vms].sort((a, b) => compareText(a.name, b.name));
  const frontends = Object.entries(rg.frontends)
    .sort(([a], [b]) => compareText(a, b))
    .map(([name, frontend]) => resolveFrontend(name, frontend));
  return { rg, cluster: rg.cluster, vms: sortedVms, topology: topologyOf(sortedVms), frontends };
}

export const names = (vms: readonly Vm[]): string[] => vms.map((vm) => vm.name);
