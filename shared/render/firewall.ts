/**
 * The spec: "All traffic from outside the resource group must pass through the webgateway."
 * k3s forwards some traffic into the cluster by destination NAT on every address of a node:
 * ServiceLB's host ports (a LoadBalancer service's port on every node, the webgateway's public
 * addresses included) and NodePorts. kube-proxy's `nodeport-addresses` limits the latter (see
 * k3s.ts); nothing in k3s limits the former. So the server and the webgateway, the VMs with
 * public addresses, refuse any connection that arrives on an interface other than the srv
 * network (or loopback, or the cluster's own) and that k3s would forward into the cluster. What
 * the VM itself serves (haproxy, nginx, SSH) is not forwarded and stays untouched: no port list
 * to keep in step with the frontends.
 */
import type { Layout } from '../layout.ts';

export const FIREWALL_TABLE = 'ringmaster-k3s';

/** The cluster's own interfaces: pods (cni0) and flannel's tunnels between nodes. */
const CLUSTER_INTERFACES = ['cni0', 'flannel*'];

/**
 * An nftables script that replaces our table as one transaction (`nft -f`): created if missing,
 * deleted, made again, so a reload never leaves a window without the rule or with two.
 */
export function renderFirewall(srvInterface: string, layout: Layout): string {
  const accepted = ['lo', srvInterface];
  return [
    `# Managed by Ringmaster (${layout.firewallRules}): changes here are overwritten.`,
    '# Connections from outside the srv network that k3s would forward into the cluster (ServiceLB',
    '# host ports, NodePorts) are dropped: outside traffic reaches pods only through the webgateway.',
    `table inet ${FIREWALL_TABLE}`,
    `delete table inet ${FIREWALL_TABLE}`,
    `table inet ${FIREWALL_TABLE} {`,
    '  chain forward {',
    '    type filter hook forward priority filter - 10; policy accept;',
    `    ct status dnat iifname != { ${accepted.map((name) => `"${name}"`).join(', ')} } ${CLUSTER_INTERFACES.map((name) => `iifname != "${name}"`).join(' ')} counter drop`,
    '  }',
    '}',
    '',
  ].join('\n');
}
