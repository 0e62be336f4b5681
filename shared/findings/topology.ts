/** Findings about who runs what: the server, role conflicts, resources, public addresses. */
import type { Model } from '../model.ts';
import { names } from '../model.ts';
import { MINIMUMS, NODE_ROLES } from '../roles.ts';
import { kubernetesRolesOf, shortfalls } from '../topology.ts';
import { clusterSubject, error, type Finding, info, vmSubject, warning } from './finding.ts';

export function topologyFindings(model: Model): Finding[] {
  const { rg, cluster, topology } = model;
  const findings: Finding[] = [];
  const members = names(topology.members);
  const subject = clusterSubject(rg.name);

  if (!cluster) {
    if (members.length > 0) {
      findings.push(
        error('cluster.not-provisioned', subject, `VMs carry Kubernetes roles (${members.join(', ')}) but no cluster was provisioned for resource group ${rg.name}.`, members),
      );
    }
    return findings;
  }

  if (topology.servers.length === 0) {
    findings.push(error('server.missing', subject, 'The cluster has no k3s-server VM; every cluster needs exactly one.', members));
  } else if (topology.servers.length > 1) {
    findings.push(
      error(
        'server.duplicate',
        subject,
        `The cluster has ${topology.servers.length} k3s-server VMs (${names(topology.servers).join(', ')}); it needs exactly one. No cluster VM is changed until only one is left.`,
        members,
      ),
    );
  }
  if (topology.agents.length === 0 && topology.servers.length > 0) {
    findings.push(warning('agent.missing', subject, 'The cluster has no k3s-agent VM, so nothing can run workloads.'));
  }
  if (topology.webgateways.length === 0 && model.frontends.length > 0) {
    findings.push(warning('webgateway.missing', subject, `Frontends are configured (${model.frontends.map((f) => f.name).join(', ')}) but no VM has the webgateway role.`));
  }
  if (!rg.secrets.clusterToken && topology.nodes.length > 0) {
    findings.push(error('secrets.cluster-token-missing', subject, 'The cluster has no token yet, so no node can join.', names(topology.nodes)));
  }
  if (cluster.datastoreEndpoint === undefined && !rg.secrets.datastorePassword && topology.servers.length > 0) {
    findings.push(
      error('secrets.datastore-password-missing', subject, "The server's own PostgreSQL has no password yet and no external datastoreEndpoint is set, so k3s cannot start.", names(topology.servers)),
    );
  }
  if (!rg.users.some((user) => user.permissions.includes('sudo-srv'))) {
    findings.push(info('access.no-users', subject, 'No user has the sudo-srv permission, so nobody gets cluster access.'));
  }

  const serverBlocksAll = topology.servers.length === 1 && topology.servers[0]?.srvAddresses.length === 0;
  for (const vm of topology.members) {
    const roles = kubernetesRolesOf(vm);
    const nodeRoles = roles.filter((role) => NODE_ROLES.includes(role));
    if (nodeRoles.length > 1) {
      findings.push(
        error('roles.conflict', vmSubject(vm.name), `${vm.name} has the roles ${nodeRoles.join(' and ')}; a VM runs one k3s node, and control plane and workloads never share a VM.`, [vm.name]),
      );
    }
    if (roles.includes('k3s-agent') && vm.publicAddresses.length > 0) {
      findings.push(
        error('agent.public-address', vmSubject(vm.name), `${vm.name} is a k3s-agent with public addresses (${vm.publicAddresses.join(', ')}); agents never get public addresses, traffic must pass the webgateway.`, [vm.name]),
      );
    }
    if (nodeRoles.length > 0 || roles.includes('k3s-nfs')) {
      if (vm.srvAddresses.length === 0) {
        const blocks = serverBlocksAll && roles.includes('k3s-server') ? members : [vm.name];
        findings.push(error('vm.no-srv-address', vmSubject(vm.name), `${vm.name} has no srv address; the cluster network runs over the srv network.`, blocks));
      }
    }
    for (const role of roles) {
      const missing = shortfalls(vm, role);
      if (missing.length > 0) {
        findings.push(
          warning('resources.below-minimum', vmSubject(vm.name), `${vm.name} (${role}) has ${missing.join(', ')}; the spec's minimum is ${MINIMUMS[role].label}.`),
        );
      }
    }
  }
  for (const gateway of topology.webgateways) {
    if (gateway.publicAddresses.length === 0) {
      findings.push(warning('webgateway.no-public-address', vmSubject(gateway.name), `${gateway.name} is a webgateway without a public address, so it cannot accept traffic from the internet.`));
    }
  }
  return findings;
}
