/**
 * Where a group's Kubernetes dashboard is (the portal's "Kubernetes" button): the nginx virtual
 * host the k3s server's document serves it on (shared/documents/roles.ts), so the link and the
 * virtual host come from the same rule: the dashboard's `hostname`, else the server's fqdn.
 */
import { z } from 'zod';
import type { ResourceGroup } from './schema/resource-group.ts';
import { topologyOf } from './topology.ts';

export const dashboardLinkSchema = z.strictObject({
  url: z.string(),
  /** Reachable from the VPN's networks only. */
  vpnOnly: z.boolean(),
});

export type DashboardLink = z.output<typeof dashboardLinkSchema>;

/** The host the server's nginx serves the dashboard on; undefined when it serves none. */
export function dashboardHost(rg: ResourceGroup): string | undefined {
  const cluster = rg.cluster;
  if (!cluster?.dashboard.enabled) return undefined;
  const server = topologyOf(rg.vms).servers[0];
  if (!server) return undefined;
  return cluster.dashboard.hostname ?? server.fqdn;
}

/** The dashboard's link, or null when the group has none (no cluster, no server, disabled, no host name). */
export function dashboardLink(rg: ResourceGroup): DashboardLink | null {
  const host = dashboardHost(rg);
  return host === undefined ? null : { url: `https://${host}/`, vpnOnly: rg.cluster!.dashboard.vpnOnly };
}
