/**
 * `ringmaster demo`'s stand-in for k3s' Kubernetes API: k3s cannot run on this machine, but the
 * tests build a real etcd and kube-apiserver (scripts/build-kube-binaries.sh, cached). When they
 * are there, the demo starts them on 127.0.0.1 and puts what k3s would put where k3s puts it
 * under the server VM's folder (the admin kubeconfig, the server CA), so the server's agent runs
 * its Kubernetes tasks unchanged; the pods' Service and EndpointSlice are then created in that
 * API server, and the agent's watcher carries them to haproxy.
 *
 * The API server refuses loopback endpoint addresses (127.0.0.0/8), so the pods then listen on
 * pod-network addresses of the demo's cluster CIDR, added to this machine's loopback interface
 * for the demo's run (`ip address add … dev lo`, root only) and removed when it stops.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { V1EndpointSlice } from '@kubernetes/client-node';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { K3S_ADMIN_KUBECONFIG, K3S_SERVER_CA } from '../../agent/kubernetes/k3s-files.ts';
import { cachedKubeBinDir, type KubeApiServer, startKubeApiServer } from '../../local/kube-apiserver.ts';

const execFileAsync = promisify(execFile);

/** The cluster name the stand-in's admin kubeconfig carries: the server's report names it. */
export const STAND_IN_CLUSTER = 'test-kube-apiserver';

/** Why the demo runs without a Kubernetes API, or the API server starting. */
export type KubernetesStandIn = { readonly starting: Promise<KubeApiServer> } | { readonly absent: string };

/** Starts etcd and kube-apiserver when the tests' build of them is cached (never builds: that takes minutes). */
export function startKubernetesStandIn(): KubernetesStandIn {
  const binDir = cachedKubeBinDir();
  if (!binDir) return { absent: 'no test kube-apiserver built on this machine (`npm test` builds one, or scripts/build-kube-binaries.sh)' };
  return { starting: startKubeApiServer({ binDir, clusterName: STAND_IN_CLUSTER }) };
}

/** Puts the API server's admin kubeconfig and CA where k3s writes its own, under the server VM's folder. */
export function installAsK3s(kube: KubeApiServer, serverRoot: string): void {
  const place = (path: string, content: string, mode: number) => {
    const file = join(serverRoot, path);
    mkdirSync(dirname(file), { recursive: true, mode: 0o755 });
    writeFileSync(file, content, { mode });
  };
  // k3s writes both 0600 (the server's `write-kubeconfig-mode`); the CA is public, but k3s' folder is root's.
  place(K3S_SERVER_CA, kube.caData, 0o600);
  place(K3S_ADMIN_KUBECONFIG, readFileSync(kube.adminKubeconfigPath, 'utf8'), 0o600);
}

/**
 * Adds each address to the loopback interface; undefined when all were added, else why not
 * (with those added removed again). An address already there (a demo killed before it could
 * remove it) is taken as added.
 */
export async function addLoopbackAddresses(addresses: readonly string[]): Promise<string | undefined> {
  const added: string[] = [];
  for (const address of addresses) {
    try {
      await execFileAsync('ip', ['address', 'add', `${address}/32`, 'dev', 'lo']);
      added.push(address);
    } catch (error) {
      const text = `${(error as { stderr?: string }).stderr ?? ''}`.trim() || (error as Error).message;
      if (/File exists/.test(text)) {
        added.push(address);
        continue;
      }
      await removeLoopbackAddresses(added);
      return `cannot add the pods' address ${address} to the loopback interface (${text.split('\n')[0]})`;
    }
  }
  return undefined;
}

export async function removeLoopbackAddresses(addresses: readonly string[]): Promise<void> {
  await Promise.all(addresses.map((address) => execFileAsync('ip', ['address', 'del', `${address}/32`, 'dev', 'lo']).catch(() => undefined)));
}

/** What a Deployment's pods and their Service would leave in the API: the Service, and its EndpointSlice with the pods ready. */
export async function createPodsService(kube: KubeApiServer, service: { name: string; port: number }, slice: V1EndpointSlice): Promise<void> {
  // Loaded only here: the demo without a Kubernetes API never loads the client.
  const { CoreV1Api, DiscoveryV1Api, KubeConfig } = await import('@kubernetes/client-node');
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(kube.adminKubeconfigPath);
  await kubeConfig.makeApiClient(CoreV1Api).createNamespacedService({ namespace: 'default', body: { metadata: { name: service.name }, spec: { ports: [{ name: 'http', port: service.port, protocol: 'TCP' }] } } });
  await kubeConfig.makeApiClient(DiscoveryV1Api).createNamespacedEndpointSlice({ namespace: 'default', body: slice });
}
