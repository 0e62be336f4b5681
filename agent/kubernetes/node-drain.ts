/**
 * Maintenance of a k3s agent VM, as the server's document asks (`drainNodes`, at most one):
 * label and cordon the node, evict its pods through the Eviction API so PodDisruptionBudgets
 * are honoured (a 429 means "not now": tried again on the next round, never forced), skip
 * DaemonSet and mirror pods (they belong to the node), and report each step. A node we
 * labelled that the document no longer lists is unlabelled, and uncordoned if we cordoned it.
 * Pods no controller owns are left alone and named: evicting them would lose them.
 */
import { CoreV1Api, type KubeConfig, PatchStrategy, setHeaderOptions, type V1Pod } from '@kubernetes/client-node';
import type { KubernetesReport } from '../../shared/contract/agent-report.ts';
import { describeApiError, ignoreNotFound, statusOf } from './api-errors.ts';

export const MAINTENANCE_LABEL = 'ringmaster.io/maintenance';
export const MAINTENANCE_VALUE = 'drain';
export const DRAIN_STARTED_ANNOTATION = 'ringmaster.io/drain-started-at';
/** Set only when we made the node unschedulable: a node an admin had cordoned stays cordoned afterwards. */
export const CORDONED_BY_US_ANNOTATION = 'ringmaster.io/cordoned-by-ringmaster';

/** One node's progress, as the server's report carries it (see shared/contract/agent-report.ts). */
export type DrainProgress = KubernetesReport['drain'][number];

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

/** Pods that belong to the node and are not drained: DaemonSet pods, static (mirror) pods, finished pods. */
function staysOnNode(pod: V1Pod): boolean {
  if (pod.metadata?.ownerReferences?.some((owner) => owner.kind === 'DaemonSet')) return true;
  if (pod.metadata?.annotations?.['kubernetes.io/config.mirror'] !== undefined) return true;
  return pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
}

export class NodeDrainer {
  readonly #core: CoreV1Api;
  readonly #now: () => Date;

  constructor(kubeConfig: KubeConfig, now: () => Date = () => new Date()) {
    this.#core = kubeConfig.makeApiClient(CoreV1Api);
    this.#now = now;
  }

  /** One round: drain what is listed, give back what is not. Safe to run again at any time. */
  async reconcile(drainNodes: readonly string[], timeoutSeconds: number): Promise<DrainProgress[]> {
    const progress: DrainProgress[] = [];
    for (const node of drainNodes) progress.push(await this.#drain(node, timeoutSeconds));
    const labelled = await this.#core.listNode({ labelSelector: `${MAINTENANCE_LABEL}=${MAINTENANCE_VALUE}` });
    for (const node of labelled.items) {
      const name = node.metadata?.name;
      if (!name || drainNodes.includes(name)) continue;
      const ours = node.metadata?.annotations?.[CORDONED_BY_US_ANNOTATION] === 'true';
      await this.#core.patchNode(
        {
          name,
          body: {
            metadata: { labels: { [MAINTENANCE_LABEL]: null }, annotations: { [DRAIN_STARTED_ANNOTATION]: null, [CORDONED_BY_US_ANNOTATION]: null } },
            ...(ours ? { spec: { unschedulable: null } } : {}),
          },
        },
        mergePatch,
      );
      progress.push({
        node: name,
        phase: 'uncordoned',
        remainingPods: 0,
        blockedPods: [],
        safeToTakeDown: false,
        message: ours ? 'maintenance finished: the node takes pods again' : 'maintenance finished; the node stays cordoned, as it was before the maintenance',
      });
    }
    return progress;
  }

  async #drain(name: string, timeoutSeconds: number): Promise<DrainProgress> {
    const node = await ignoreNotFound(this.#core.readNode({ name }));
    if (!node) return { node: name, phase: 'missing', remainingPods: 0, blockedPods: [], safeToTakeDown: true, message: 'no such node in the cluster: nothing runs there' };
    let startedAt = node.metadata?.annotations?.[DRAIN_STARTED_ANNOTATION];
    if (!startedAt || node.metadata?.labels?.[MAINTENANCE_LABEL] !== MAINTENANCE_VALUE || node.spec?.unschedulable !== true) {
      // The start time lives on the node itself, so a restarted agent keeps the same deadline.
      startedAt ??= this.#now().toISOString();
      const cordoning = node.spec?.unschedulable !== true;
      await this.#core.patchNode(
        {
          name,
          body: {
            metadata: { labels: { [MAINTENANCE_LABEL]: MAINTENANCE_VALUE }, annotations: { [DRAIN_STARTED_ANNOTATION]: startedAt, ...(cordoning ? { [CORDONED_BY_US_ANNOTATION]: 'true' } : {}) } },
            spec: { unschedulable: true },
          },
        },
        mergePatch,
      );
    }
    const pods = await this.#core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${name}` });
    const leaving = pods.items.filter((pod) => !staysOnNode(pod));
    const blocked: string[] = [];
    const unmanaged: string[] = [];
    const errors: string[] = [];
    for (const pod of leaving) {
      if (pod.metadata?.deletionTimestamp) continue; // already on its way out
      const podName = pod.metadata!.name!;
      const namespace = pod.metadata!.namespace!;
      // No controller would start it again elsewhere: evicting it would lose it (kubectl drain refuses too without --force).
      if (!pod.metadata?.ownerReferences?.some((owner) => owner.controller)) {
        unmanaged.push(`${namespace}/${podName}`);
        continue;
      }
      try {
        await this.#core.createNamespacedPodEviction({ name: podName, namespace, body: { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: podName, namespace } } });
      } catch (error) {
        const status = statusOf(error);
        if (status === 404) continue;
        // 429: a PodDisruptionBudget allows no disruption now. 500 with several budgets is the same answer.
        if (status === 429 || status === 500) blocked.push(`${namespace}/${podName}`);
        else errors.push(`${namespace}/${podName}: ${describeApiError(error)}`);
      }
    }
    const remaining = (await this.#core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${name}` })).items.filter((pod) => !staysOnNode(pod));
    const overdue = this.#now().getTime() - Date.parse(startedAt) > timeoutSeconds * 1000;
    if (remaining.length === 0) {
      return { node: name, phase: 'drained', remainingPods: 0, blockedPods: [], startedAt, safeToTakeDown: true, message: 'cordoned and drained: safe to take down' };
    }
    const terminating = remaining.filter((pod) => pod.metadata?.deletionTimestamp).length;
    const waiting = [
      `${remaining.length} pod(s) still on the node`,
      ...(terminating ? [`${terminating} terminating (waiting for the kubelet)`] : []),
      ...(blocked.length ? [`a PodDisruptionBudget refused ${blocked.length} eviction(s)`] : []),
      ...(unmanaged.length ? [`${unmanaged.length} pod(s) with no controller are not evicted (they would be lost): move or delete them: ${unmanaged.slice(0, 10).join(', ')}`] : []),
      ...errors.slice(0, 5),
    ].join('; ');
    return {
      node: name,
      phase: overdue ? 'postponed' : 'evicting',
      remainingPods: remaining.length,
      blockedPods: [...blocked, ...unmanaged].sort(),
      startedAt,
      safeToTakeDown: false,
      message: overdue ? `postponed, not forced: ${waiting} after ${timeoutSeconds} s; evictions are tried again` : waiting,
    };
  }
}
