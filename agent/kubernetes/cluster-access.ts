/**
 * Cluster access for users with `sudo-srv` (replaces the platform's `kubernetes-make-kubeconfig`):
 * each user gets a ServiceAccount and a ClusterRoleBinding to `cluster-admin` (the spec: a
 * kubeconfig grants unlimited access), and kubeconfigs carry a token from the TokenRequest API
 * that expires. Revoking deletes the binding and the ServiceAccount: every token issued for it
 * stops working at once, because the API server checks that the account (by uid) still exists.
 */
import { createHash } from 'node:crypto';
import { CoreV1Api, type KubeConfig, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { ignoreConflict, ignoreNotFound } from './api-errors.ts';

export const ACCESS_NAMESPACE = 'ringmaster-access';
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY = 'ringmaster';
export const USER_ANNOTATION = 'ringmaster.io/user';
const MANAGED_SELECTOR = `${MANAGED_BY_LABEL}=${MANAGED_BY}`;

/** A login name as a Kubernetes object name; names that need changing get a hash so two never meet. */
export function serviceAccountName(user: string): string {
  if (/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(user)) return `user-${user}`;
  const cleaned = user.replace(/[^a-z0-9-]/g, '-').replace(/^-+|-+$/g, '');
  const hash = createHash('sha256').update(user).digest('hex').slice(0, 8);
  return `user-${cleaned ? `${cleaned}-` : ''}${hash}`;
}

const bindingName = (user: string) => `ringmaster-${serviceAccountName(user)}`;
const metadataFor = (name: string, user: string) => ({ name, labels: { [MANAGED_BY_LABEL]: MANAGED_BY }, annotations: { [USER_ANNOTATION]: user } });

export interface AccessResult {
  readonly granted: readonly string[];
  readonly revoked: readonly string[];
}

export class ClusterAccess {
  readonly #core: CoreV1Api;
  readonly #rbac: RbacAuthorizationV1Api;

  constructor(kubeConfig: KubeConfig) {
    this.#core = kubeConfig.makeApiClient(CoreV1Api);
    this.#rbac = kubeConfig.makeApiClient(RbacAuthorizationV1Api);
  }

  /** Makes the ServiceAccount and binding of `user` exist (creating what is missing). */
  async grant(user: string): Promise<void> {
    const name = serviceAccountName(user);
    await ignoreConflict(this.#core.createNamespace({ body: { metadata: { name: ACCESS_NAMESPACE, labels: { [MANAGED_BY_LABEL]: MANAGED_BY } } } }));
    await ignoreConflict(this.#core.createNamespacedServiceAccount({ namespace: ACCESS_NAMESPACE, body: { metadata: metadataFor(name, user) } }));
    await ignoreConflict(
      this.#rbac.createClusterRoleBinding({
        body: {
          metadata: metadataFor(bindingName(user), user),
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
          subjects: [{ kind: 'ServiceAccount', name, namespace: ACCESS_NAMESPACE }],
        },
      }),
    );
  }

  /**
   * Grants everyone listed and revokes everyone else we granted before: after this, exactly
   * the listed users can use their kubeconfigs. Idempotent.
   */
  async reconcile(users: readonly string[]): Promise<AccessResult> {
    const wanted = new Set(users);
    // Any failure stops the round (and is reported): revoking from a partial picture could miss someone.
    const accounts = await this.#core.listNamespacedServiceAccount({ namespace: ACCESS_NAMESPACE, labelSelector: MANAGED_SELECTOR });
    const bindings = await this.#rbac.listClusterRoleBinding({ labelSelector: MANAGED_SELECTOR });
    const existing = new Set(accounts.items.map((a) => a.metadata?.annotations?.[USER_ANNOTATION]).filter((u): u is string => !!u));
    const granted: string[] = [];
    for (const user of [...wanted].sort()) {
      if (existing.has(user) && bindings.items.some((b) => b.metadata?.name === bindingName(user))) continue;
      await this.grant(user);
      granted.push(user);
    }
    const revoked = new Set<string>();
    for (const binding of bindings.items) {
      const user = binding.metadata?.annotations?.[USER_ANNOTATION];
      if (user !== undefined && wanted.has(user)) continue;
      await ignoreNotFound(this.#rbac.deleteClusterRoleBinding({ name: binding.metadata!.name! }));
      if (user) revoked.add(user);
    }
    for (const account of accounts.items) {
      const user = account.metadata?.annotations?.[USER_ANNOTATION];
      if (user !== undefined && wanted.has(user)) continue;
      await ignoreNotFound(this.#core.deleteNamespacedServiceAccount({ name: account.metadata!.name!, namespace: ACCESS_NAMESPACE }));
      if (user) revoked.add(user);
    }
    return { granted, revoked: [...revoked].sort() };
  }

  /** A token for `user`'s ServiceAccount from the TokenRequest API, valid for `ttlSeconds`. */
  async token(user: string, ttlSeconds: number): Promise<{ token: string; expiresAt: string }> {
    const response = await this.#core.createNamespacedServiceAccountToken({
      name: serviceAccountName(user),
      namespace: ACCESS_NAMESPACE,
      body: { spec: { audiences: [], expirationSeconds: ttlSeconds } },
    });
    const token = response.status?.token;
    const expiresAt = response.status?.expirationTimestamp;
    if (!token || !expiresAt) throw new Error('the TokenRequest API answered without a token');
    return { token, expiresAt: new Date(expiresAt).toISOString() };
  }
}

export interface KubeconfigParts {
  readonly clusterName: string;
  readonly user: string;
  readonly serverUrl: string;
  /** Base64 PEM of the CA that signs the API server's certificate. */
  readonly caData: string;
  readonly token: string;
}

/** A kubeconfig as `kubectl` and the dashboard read it: one cluster, one user, one context. */
export function renderKubeconfig(parts: KubeconfigParts): string {
  const context = `${parts.user}@${parts.clusterName}`;
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: parts.clusterName, cluster: { server: parts.serverUrl, 'certificate-authority-data': parts.caData } }],
    users: [{ name: parts.user, user: { token: parts.token } }],
    contexts: [{ name: context, context: { cluster: parts.clusterName, user: parts.user } }],
    'current-context': context,
  });
}

/**
 * Issues a kubeconfig for `user`: grants access (idempotent), asks for a token with the TTL,
 * and writes the cluster's CA and public URL next to it.
 */
export async function issueKubeconfig(
  access: ClusterAccess,
  options: { user: string; ttlHours: number; serverUrl: string; caData: string; clusterName: string },
): Promise<{ kubeconfig: string; expiresAt: string }> {
  await access.grant(options.user);
  const { token, expiresAt } = await access.token(options.user, Math.round(options.ttlHours * 3600));
  return { kubeconfig: renderKubeconfig({ clusterName: options.clusterName, user: options.user, serverUrl: options.serverUrl, caData: options.caData, token }), expiresAt };
}

/** The CA of the cluster the admin kubeconfig points at, as base64 PEM. */
export function clusterCaData(kubeConfig: KubeConfig, readFile: (path: string) => Buffer): string {
  const cluster = kubeConfig.getCurrentCluster();
  if (cluster?.caData) return cluster.caData;
  if (cluster?.caFile) return readFile(cluster.caFile).toString('base64');
  throw new Error('the admin kubeconfig names no certificate authority for its cluster');
}
