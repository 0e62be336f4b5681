/**
 * The spec's known limitation, enforced: "Changing the VM which runs the k3s server is not
 * supported". The server holds the cluster (its datastore, its CA, every join): another VM
 * as server is a new, empty cluster that every agent and the webgateway would be pointed at.
 * So once a cluster is provisioned and one VM runs its server, an event that would leave any
 * other set of servers (a second one, none, a different one) is refused with this reason and
 * changes nothing. Decommissioning the cluster is the way to start over with another server.
 */
import type { PortalEvent } from '../events/portal-events.ts';
import { topologyOf } from '../topology.ts';
import { effectiveDescription, type RgState } from './rg-state.ts';

export const SERVER_CHANGE_NOT_SUPPORTED = 'changing the VM which runs the k3s server is not supported';
const START_OVER = 'decommission the cluster (cluster.decommissioned) to start over with another server';

/** The server VMs' names, with automatically assigned roles counted as the desired state counts them. */
function serverNames(state: RgState): string[] {
  return topologyOf(effectiveDescription(state).vms).servers.map((vm) => vm.name);
}

/**
 * The VM that runs the k3s server of the provisioned cluster: none without a cluster, and none
 * while there is not exactly one server (two are a `server.duplicate` finding that blocks the
 * cluster, so either of them may still go).
 */
export function runningServer(state: RgState): string | undefined {
  if (!state.description.cluster) return undefined;
  const servers = serverNames(state);
  return servers.length === 1 ? servers[0] : undefined;
}

/** Why `event`, which turned `before` into `after`, must be refused; undefined when the server stays the one it was. */
export function serverReplacementRefusal(before: RgState, after: RgState, event: PortalEvent): string | undefined {
  const server = runningServer(before);
  // A decommissioned cluster has no server to keep.
  if (server === undefined || !after.description.cluster) return undefined;
  const servers = serverNames(after);
  if (servers.length === 1 && servers[0] === server) return undefined;
  const others = servers.filter((name) => name !== server);
  const change =
    event.type === 'vm.deleted'
      ? `${server} cannot be deleted`
      : others.length > 0
        ? `${others.join(', ')} cannot become a k3s-server`
        : `${server} cannot lose the k3s-server role`;
  return `${change}: ${server} runs the k3s server of this cluster, and ${SERVER_CHANGE_NOT_SUPPORTED}; ${START_OVER}`;
}
