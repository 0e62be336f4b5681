/**
 * Automatic role assignment: when the portal provisions a cluster with
 * `roleAssignment: automatic`, VMs that have no role at all get one, following the
 * spec's minimums and topology. A role a VM already has is never changed, and every
 * choice (or why none was possible) is explained as a finding.
 *
 * The result is meant to be persisted (the reducer writes the roles back), so a later,
 * bigger VM never takes the server role away from the one chosen first.
 */
import { compareText } from './compare.ts';
import { type Finding, info, vmSubject, warning } from './findings/finding.ts';
import { type KubernetesRole, MINIMUMS } from './roles.ts';
import type { ResourceGroup } from './schema/resource-group.ts';
import type { Vm } from './schema/vm.ts';
import { shortfalls, topologyOf } from './topology.ts';

export interface RoleAssignment {
  readonly vm: string;
  readonly role: KubernetesRole;
  readonly reason: string;
}

export interface RoleAssignmentResult {
  readonly vms: Vm[];
  readonly assignments: RoleAssignment[];
  readonly findings: Finding[];
}

/** Smaller VMs first: the biggest ones are left for the workloads. */
const bySize = (a: Vm, b: Vm) => a.cpu - b.cpu || a.memoryMiB - b.memoryMiB || compareText(a.name, b.name);
const hasPublic = (vm: Vm) => vm.publicAddresses.length > 0;

interface SingleRole {
  readonly role: KubernetesRole;
  readonly wanted: boolean;
  readonly eligible: (vm: Vm) => string | undefined;
  readonly prefer: (a: Vm, b: Vm) => number;
  readonly why: (vm: Vm) => string;
}

export function assignRoles(rg: ResourceGroup): RoleAssignmentResult {
  if (rg.cluster?.roleAssignment !== 'automatic') return { vms: rg.vms, assignments: [], findings: [] };
  const topology = topologyOf(rg.vms);
  const free = new Set(rg.vms.filter((vm) => vm.roles.length === 0).map((vm) => vm.name));
  const candidates = () => rg.vms.filter((vm) => free.has(vm.name)).sort((a, b) => compareText(a.name, b.name));
  const assignments: RoleAssignment[] = [];
  const findings: Finding[] = [];
  const resourceProblem = (role: KubernetesRole) => (vm: Vm) => {
    const missing = shortfalls(vm, role);
    return missing.length > 0 ? `has ${missing.join(', ')}` : undefined;
  };

  const singles: SingleRole[] = [
    {
      role: 'k3s-server',
      wanted: topology.servers.length === 0,
      eligible: resourceProblem('k3s-server'),
      // The dashboard is served from the server, so a public address counts first.
      prefer: (a, b) => Number(hasPublic(b)) - Number(hasPublic(a)) || bySize(a, b),
      why: (vm) => `meets the k3s-server minimum (${MINIMUMS['k3s-server'].label})${hasPublic(vm) ? ' and has a public address for the dashboard' : ''}`,
    },
    {
      role: 'webgateway',
      wanted: topology.webgateways.length === 0,
      eligible: (vm) => (hasPublic(vm) ? resourceProblem('webgateway')(vm) : 'has no public address'),
      prefer: bySize,
      why: () => `has a public address and meets the webgateway minimum (${MINIMUMS.webgateway.label})`,
    },
    {
      role: 'k3s-nfs',
      wanted: rg.cluster.nfs && topology.nfs.length === 0,
      eligible: resourceProblem('k3s-nfs'),
      prefer: (a, b) => Number(hasPublic(a)) - Number(hasPublic(b)) || bySize(a, b),
      why: () => `meets the k3s-nfs minimum (${MINIMUMS['k3s-nfs'].label})`,
    },
  ];

  for (const single of singles) {
    if (!single.wanted) continue;
    const pool = candidates();
    const fitting = pool.filter((vm) => single.eligible(vm) === undefined).sort(single.prefer);
    const chosen = fitting[0];
    if (chosen) {
      free.delete(chosen.name);
      assignments.push({ vm: chosen.name, role: single.role, reason: single.why(chosen) });
    } else {
      const reasons = pool.map((vm) => `${vm.name} ${single.eligible(vm)}`);
      findings.push(
        warning(
          'roles.no-candidate',
          { kind: 'cluster', name: rg.name },
          `No VM without roles can take the ${single.role} role (${MINIMUMS[single.role].label})` +
            (reasons.length > 0 ? `: ${reasons.join('; ')}.` : ': there is no VM without roles left.'),
        ),
      );
    }
  }

  for (const vm of candidates()) {
    if (hasPublic(vm)) {
      findings.push(info('roles.unassigned', vmSubject(vm.name), `${vm.name} was given no role: it has a public address and k3s agents never get one.`));
      continue;
    }
    const missing = shortfalls(vm, 'k3s-agent');
    if (missing.length > 0) {
      findings.push(
        info('roles.unassigned', vmSubject(vm.name), `${vm.name} was given no role: as a k3s-agent it has ${missing.join(', ')}.`),
      );
      continue;
    }
    assignments.push({ vm: vm.name, role: 'k3s-agent', reason: `meets the k3s-agent minimum (${MINIMUMS['k3s-agent'].label}) and has no public address` });
  }

  for (const assignment of assignments) {
    findings.push(info('roles.assigned', vmSubject(assignment.vm), `${assignment.vm} became ${assignment.role}: it ${assignment.reason}.`));
  }
  const roleOf = new Map(assignments.map((a) => [a.vm, a.role]));
  const vms = rg.vms.map((vm) => {
    const role = roleOf.get(vm.name);
    return role ? { ...vm, roles: [role] } : vm;
  });
  return { vms, assignments, findings };
}
