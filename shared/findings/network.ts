/** Findings about the cluster network: CIDRs that overlap, a DNS address outside, too few node subnets. */
import type { Model } from '../model.ts';
import { names } from '../model.ts';
import { contains, overlaps, parseAddress, parseNetwork, subnetCount } from '../net.ts';
import { clusterSubject, error, type Finding, vmSubject, warning } from './finding.ts';

export function networkFindings(model: Model): Finding[] {
  const { cluster, topology, rg } = model;
  if (!cluster) return [];
  const findings: Finding[] = [];
  const subject = clusterSubject(rg.name);
  const network = cluster.network;
  const members = names(topology.members);

  const clusterNet = parseNetwork(network.clusterCidr);
  const serviceNet = parseNetwork(network.serviceCidr);
  const families: Array<{ label: string; cluster: typeof clusterNet; service: typeof serviceNet; mask: number }> = [
    { label: 'IPv4', cluster: clusterNet, service: serviceNet, mask: network.nodeCidrMaskSize },
  ];
  if (network.dualStack) {
    families.push({
      label: 'IPv6',
      cluster: parseNetwork(network.dualStack.clusterCidr),
      service: parseNetwork(network.dualStack.serviceCidr),
      mask: network.dualStack.nodeCidrMaskSize,
    });
  }

  for (const family of families) {
    if (overlaps(family.cluster, family.service)) {
      findings.push(error('network.cidr-overlap', subject, `The ${family.label} cluster network ${family.cluster.text} overlaps the service network ${family.service.text}.`, members));
    }
    if (family.mask <= family.cluster.prefix) {
      findings.push(
        error('network.node-mask', subject, `The per-node ${family.label} mask /${family.mask} must be longer than the cluster network's /${family.cluster.prefix} (${family.cluster.text}).`, members),
      );
    } else {
      const capacity = subnetCount(family.cluster, family.mask);
      if (topology.nodes.length > capacity) {
        findings.push(
          error(
            'network.too-small',
            subject,
            `The ${family.label} cluster network ${family.cluster.text} with a /${family.mask} per node holds ${capacity} nodes, but ${topology.nodes.length} VMs run k3s; new agents cannot join until the network is larger.`,
            names(topology.agents),
          ),
        );
      }
    }
    for (const vm of model.vms) {
      for (const address of [...vm.srvAddresses, ...vm.publicAddresses]) {
        const parsed = parseAddress(address);
        for (const net of [family.cluster, family.service]) {
          if (parsed && contains(net, parsed)) {
            findings.push(
              error('network.cidr-overlaps-vm', vmSubject(vm.name), `${vm.name}'s address ${address} lies inside the cluster's ${net.text}; pods and services would shadow it.`, members),
            );
          }
        }
      }
    }
  }
  const dns = parseAddress(network.clusterDns);
  if (!dns || !contains(serviceNet, dns)) {
    findings.push(error('network.dns-outside-services', subject, `The cluster DNS address ${network.clusterDns} lies outside the service network ${network.serviceCidr}.`, members));
  }
  if (network.dualStack) {
    for (const vm of topology.nodes) {
      if (!vm.srvAddresses.some((address) => address.includes(':'))) {
        findings.push(error('network.dual-stack-address', vmSubject(vm.name), `${vm.name} has no IPv6 srv address, which a dual-stack cluster needs for every node.`, [vm.name]));
      }
    }
  }
  if (cluster.dashboard.enabled && cluster.dashboard.vpnOnly && cluster.dashboard.vpnNetworks.length === 0) {
    findings.push(warning('dashboard.no-vpn-networks', subject, 'The dashboard is VPN-only but no VPN network is configured, so nobody can reach it.'));
  }
  return findings;
}
