/**
 * The Kubernetes roles of the spec ("Reference architecture and minimal resource
 * requirements") and the minimum resources each one needs.
 */

export const KUBERNETES_ROLES = ['webgateway', 'k3s-server', 'k3s-agent', 'k3s-nfs'] as const;
export type KubernetesRole = (typeof KUBERNETES_ROLES)[number];

export function isKubernetesRole(role: string): role is KubernetesRole {
  return (KUBERNETES_ROLES as readonly string[]).includes(role);
}

/**
 * Edits (insert, delete, substitute, swap two neighbours) from `a` to `b`, stopping at `limit + 1`:
 * enough to tell a typo of a role from a role of its own.
 */
function editDistance(a: string, b: string, limit: number): number {
  if (Math.abs(a.length - b.length) > limit) return limit + 1;
  // rows[i][j]: edits from a[0, i) to b[0, j) (optimal string alignment).
  const rows: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const row = rows[i]!;
      const above = rows[i - 1]!;
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row[j] = Math.min(above[j]! + 1, row[j - 1]! + 1, above[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) row[j] = Math.min(row[j]!, rows[i - 2]![j - 2]! + 1);
    }
  }
  return rows[a.length]![b.length]!;
}

/**
 * Why `role` is refused, or undefined. A VM carries roles of the whole platform (`postgresql`,
 * …), so any other role is fine, but one that is almost a Kubernetes role (`k3s-agnet`,
 * `webgatway`) or claims the `k3s-` prefix is a typo: accepted, it would leave the VM out of
 * the cluster with an empty document and no word why.
 */
export function unknownRoleProblem(role: string): string | undefined {
  if (isKubernetesRole(role)) return undefined;
  const near = KUBERNETES_ROLES.filter((known) => editDistance(role, known, 2) <= 2);
  if (near.length === 0 && !role.startsWith('k3s')) return undefined;
  const suggestion = near.length > 0 ? ` (did you mean ${near.map((r) => `"${r}"`).join(' or ')}?)` : '';
  return `unknown Kubernetes role "${role}"${suggestion}: the Kubernetes roles are ${KUBERNETES_ROLES.join(', ')}`;
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
