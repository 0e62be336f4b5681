/** NFS exports of a k3s-nfs VM: the export folder, open to every agent's srv address. */
import type { Layout } from '../layout.ts';
import type { Vm } from '../schema/vm.ts';
import { srvAddress } from '../topology.ts';

const OPTIONS = 'rw,sync,no_subtree_check,no_root_squash';

export function renderExports(agents: readonly Vm[], layout: Layout): string {
  const clients = agents
    .map((agent) => srvAddress(agent))
    .filter((address): address is string => address !== undefined)
    .sort()
    .map((address) => `${address}(${OPTIONS})`);
  const header = '# Managed by Ringmaster: changes here are overwritten.\n';
  if (clients.length === 0) return `${header}# No k3s-agent yet: nothing is exported.\n`;
  return `${header}${layout.nfsExportDir} ${clients.join(' ')}\n`;
}
