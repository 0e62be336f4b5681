/** Cluster-wide settings the portal fixes when it provisions the cluster. */
import { z } from 'zod';
import { anyCidr, hostName, ipv4Cidr, ipv6Cidr } from './primitives.ts';

export const dualStackSchema = z.strictObject({
  clusterCidr: ipv6Cidr.default('fd42::/56'),
  serviceCidr: ipv6Cidr.default('fd43::/112'),
  nodeCidrMaskSize: z.number().int().min(64, 'must be between 64 and 120').max(120, 'must be between 64 and 120').default(64),
});

/** Defaults are the spec's: 253 nodes with 253 pods each ("Known limitations"). */
export const networkSchema = z.strictObject({
  clusterCidr: ipv4Cidr.default('10.42.0.0/16'),
  serviceCidr: ipv4Cidr.default('10.43.0.0/16'),
  clusterDns: z.ipv4({ error: 'must be an IPv4 address inside serviceCidr' }).default('10.43.0.10'),
  nodeCidrMaskSize: z.number().int().min(16, 'must be between 16 and 30').max(30, 'must be between 16 and 30').default(24),
  /** flannel host-gw runs over the srv network ("Networking"). */
  srvInterface: z.string().regex(/^[A-Za-z0-9_.-]{1,15}$/, 'must be a network interface name').default('ethsrv'),
  dualStack: dualStackSchema.optional(),
});

export const dashboardSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /** Defaults to the k3s server's fqdn. */
  hostname: hostName.optional(),
  vpnOnly: z.boolean().default(false),
  /** The networks VPN clients come from; required when `vpnOnly` is set. */
  vpnNetworks: z.array(anyCidr).default([]),
});

/** TokenRequest's `expirationSeconds` must be at least 600 (k8s.io/kubernetes pkg/apis/authentication/validation: MinTokenAgeSec). */
export const KUBECONFIG_TTL_MIN_HOURS = 10 / 60;

export const pollSchema = z.strictObject({
  /** Webgateways follow pods: a short interval keeps endpoint propagation well under 2 s. */
  webgatewaySeconds: z.number().min(0.2, 'must be at least 0.2').max(3600).default(1),
  defaultSeconds: z.number().min(1, 'must be at least 1').max(3600).default(30),
});

export const clusterSchema = z.strictObject({
  network: networkSchema.default(() => networkSchema.parse({})),
  dashboard: dashboardSchema.default(() => dashboardSchema.parse({})),
  /** `automatic`: the control plane gives roles to VMs that have none (see role-assignment.ts). */
  roleAssignment: z.enum(['manual', 'automatic'], { error: 'must be "manual" or "automatic"' }).default('manual'),
  /** With automatic assignment: also pick a `k3s-nfs` VM. */
  nfs: z.boolean().default(false),
  /**
   * Lifetime of issued kubeconfig tokens: hours, not years. Fractions allowed down to 10 minutes
   * (1/6), the shortest token Kubernetes' TokenRequest API issues (shorter requests are refused).
   */
  kubeconfigTtlHours: z
    .number()
    .min(KUBECONFIG_TTL_MIN_HOURS, 'must be at least 10 minutes (1/6 hour, e.g. 0.1667): Kubernetes issues no shorter token')
    .max(24 * 31, 'must be at most 744 hours (31 days)')
    .default(12),
  /**
   * An external PostgreSQL for k3s. Absent (the default): the server's own PostgreSQL, which
   * its document prepares (role and database `kubernetes`, see render/datastore.ts).
   */
  datastoreEndpoint: z.string().regex(/^postgres(ql)?:\/\/\S+$/, 'must be a postgres:// URL').optional(),
  drainTimeoutSeconds: z.number().int().min(30, 'must be at least 30').max(86400).default(600),
  poll: pollSchema.default(() => pollSchema.parse({})),
  /**
   * How a frontend change reaches a group's webgateways: `canary` (the default) gives it to one
   * gateway first and to the others once that one applied it; `all-at-once` to every gateway.
   */
  gatewayRollout: z.enum(['canary', 'all-at-once'], { error: 'must be "canary" or "all-at-once"' }).default('canary'),
});

export type ClusterSettings = z.output<typeof clusterSchema>;
export type NetworkSettings = z.output<typeof networkSchema>;
