/**
 * Files k3s itself writes on the server VM, which the agent reads (never renders): the cluster
 * admin's kubeconfig and the server CA. Whatever stands in for k3s (a test kube-apiserver in
 * `ringmaster demo`) puts its own there, under a sandboxed VM's folder.
 */

/** The cluster admin's kubeconfig (k3s `write-kubeconfig`). */
export const K3S_ADMIN_KUBECONFIG = '/etc/rancher/k3s/k3s.yaml';

/** The cluster's server CA, the file k3s' `/cacerts` serves and joining nodes hash. */
export const K3S_SERVER_CA = '/var/lib/rancher/k3s/server/tls/server-ca.crt';
