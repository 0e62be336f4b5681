/**
 * The Kubernetes roles of the spec ("Reference architecture and minimal resource
 * requirements") and the minimum resources each one needs.
 */

export const KUBERNETES_ROLES = ['webgateway', 'k3s-server', 'k3s-agent', 'k3s-nfs'] as const;
export type KubernetesRole = (typeof KUBERNETES_ROLES)[number];

export function isKubernetesRole(role: string): role is KubernetesRole {
  return (KUBERNETES_ROLES as readonly string[]).includes(role);
}

/** Roles that run a k3s process (server, or agent; the webgateway is a tainted agent). */
export const NODE_ROLES: readonly KubernetesRole[] = ['k3s-server', 'k3s-agent', 'webgateway'];

export interface Minimum {
  readonly cpu: number;
  readonly memoryMiB: number;
  readonly diskGiB: number;
  /** `ssd` when the spec asks for SSD; HDD requirements are met by any disk. */
  readonly diskKind: 'ssd' | 'any';
  readonly label: string;
}

const GiB = 1024;

export const MINIMUMS: Readonly<Record<KubernetesRole, Minimum>> = {
  webgateway: { cpu: 1, memoryMiB: 4 * GiB, diskGiB: 30, diskKind: 'any', label: '1 CPU, 4 GiB RAM, 30 GiB disk' },
  'k3s-server': { cpu: 2, memoryMiB: 8 * GiB, diskGiB: 30, diskKind: 'ssd', label: '2 CPU, 8 GiB RAM, 30 GiB SSD' },
  'k3s-agent': { cpu: 4, memoryMiB: 8 * GiB, diskGiB: 30, diskKind: 'any', label: '4 CPU, 8 GiB RAM, 30 GiB disk' },
  'k3s-nfs': { cpu: 1, memoryMiB: 8 * GiB, diskGiB: 50, diskKind: 'ssd', label: '1 CPU, 8 GiB RAM, 50 GiB SSD' },
};
