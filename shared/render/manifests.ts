/**
 * Auto-deploy manifests for the k3s server (k3s applies every file in its manifests
 * folder): one nfs-subdir-external-provisioner per k3s-nfs VM with its own StorageClass,
 * and the Kubernetes dashboard, reachable through the server's nginx.
 */
import { stringify } from 'yaml';
import type { Layout } from '../layout.ts';
import type { Vm } from '../schema/vm.ts';
import { srvAddress } from '../topology.ts';

export const NFS_PROVISIONER_CHART = { repo: 'https://kubernetes-sigs.github.io/nfs-subdir-external-provisioner/', version: '4.0.18' };
export const DASHBOARD_CHART = { repo: 'https://kubernetes.github.io/dashboard/', version: '7.13.0' };
/** The dashboard's HTTPS NodePort, which the server's nginx proxies to. */
export const DASHBOARD_NODE_PORT = 30443;

const HEADER = '# Managed by Ringmaster: changes here are overwritten.\n';

function helmChart(name: string, chart: string, source: { repo: string; version: string }, targetNamespace: string, values: unknown): string {
  return (
    HEADER +
    stringify({
      apiVersion: 'helm.cattle.io/v1',
      kind: 'HelmChart',
      metadata: { name, namespace: 'kube-system' },
      spec: { repo: source.repo, chart, version: source.version, targetNamespace, createNamespace: true, valuesContent: stringify(values) },
    })
  );
}

export function storageClassName(nfsVm: Vm): string {
  return `nfs-${nfsVm.name}`;
}

export function renderNfsProvisioner(nfsVm: Vm, layout: Layout): string {
  return helmChart(`nfs-${nfsVm.name}`, 'nfs-subdir-external-provisioner', NFS_PROVISIONER_CHART, 'kube-system', {
    fullnameOverride: `nfs-provisioner-${nfsVm.name}`,
    nfs: { server: srvAddress(nfsVm), path: layout.nfsExportDir },
    storageClass: { name: storageClassName(nfsVm), defaultClass: false, archiveOnDelete: true },
  });
}

export function renderDashboard(): string {
  return helmChart('kubernetes-dashboard', 'kubernetes-dashboard', DASHBOARD_CHART, 'kubernetes-dashboard', {
    kong: { proxy: { type: 'NodePort', http: { enabled: false }, tls: { nodePort: DASHBOARD_NODE_PORT } } },
  });
}
