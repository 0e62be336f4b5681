/**
 * Maintenance: a k3s-agent in maintenance is drained first, one agent of a resource group at a
 * time (the earliest request goes first); servers and webgateways are never drained.
 */
import { compareText } from '../compare.ts';
import type { Model } from '../model.ts';
import type { Vm } from '../schema/vm.ts';
import { type Finding, info, vmSubject } from './finding.ts';

const requestedTime = (vm: Vm) => (vm.maintenance.requestedAt ? Date.parse(vm.maintenance.requestedAt) : Number.POSITIVE_INFINITY);

/** Agents waiting for maintenance, in the order they are drained. */
export function maintenanceQueue(model: Model): Vm[] {
  return model.topology.agents
    .filter((vm) => vm.maintenance.state === 'requested')
    // The one already draining first; then by the instant requested (offsets differ: compare
    // times, not strings), then by name.
    .sort((a, b) => Number(b.maintenance.draining) - Number(a.maintenance.draining) || requestedTime(a) - requestedTime(b) || compareText(a.name, b.name));
}

export function maintenanceFindings(model: Model): Finding[] {
  const findings: Finding[] = [];
  const [draining, ...waiting] = maintenanceQueue(model);
  if (draining) {
    findings.push(info('maintenance.draining', vmSubject(draining.name), `${draining.name} is cordoned and drained for maintenance.`));
  }
  for (const vm of waiting) {
    findings.push(info('maintenance.waiting', vmSubject(vm.name), `${vm.name} waits for maintenance until ${draining?.name} is finished: one agent at a time.`));
  }
  for (const vm of model.vms) {
    if (vm.maintenance.state !== 'requested') continue;
    if (vm.roles.includes('k3s-server') || vm.roles.includes('webgateway')) {
      findings.push(info('maintenance.not-drained', vmSubject(vm.name), `${vm.name} goes into maintenance without a drain: servers and webgateways are never drained.`));
    }
  }
  return findings;
}
