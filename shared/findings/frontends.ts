/** Findings about frontends: ports the spec makes exclusive, binds that collide, vhosts named twice. */
import type { Model } from '../model.ts';
import { names } from '../model.ts';
import { isLoopback } from '../net.ts';
import { ownAddresses } from '../topology.ts';
import { type BindAddress, bindsCollide, parseBind } from '../schema/bind.ts';
import type { Frontend } from '../schema/frontend.ts';
import type { Vm } from '../schema/vm.ts';
import { error, type Finding, frontendSubject, info, warning } from './finding.ts';

/** The ports nginx listens on for the virtual hosts it serves on a webgateway. */
export const NGINX_PORTS = [80, 443] as const;

export function frontendFindings(model: Model): Finding[] {
  const findings: Finding[] = [];
  const gateways = names(model.topology.webgateways);
  const binds: Array<{ frontend: string; bind: BindAddress }> = [];

  for (const frontend of model.frontends) {
    const subject = frontendSubject(frontend.name);
    const ports = (['lbServicePort', 'servicePort', 'podPort'] as const).filter((key) => frontend[key] !== undefined);
    if (ports.length === 0) {
      findings.push(error('frontend.no-port', subject, `Frontend ${frontend.name} names none of lbServicePort, servicePort or podPort, so it has nowhere to send traffic.`, gateways));
    } else if (frontend.servicePort !== undefined && ports.length > 1) {
      findings.push(
        error('frontend.exclusive-ports', subject, `Frontend ${frontend.name} sets servicePort together with ${ports.filter((p) => p !== 'servicePort').join(' and ')}; servicePort excludes the others, choose one.`, gateways),
      );
    }
    if (frontend.podPort !== undefined && frontend.lbServicePort === undefined) {
      findings.push(info('frontend.no-backup', subject, `Frontend ${frontend.name} has no lbServicePort, so there are no backup servers when the pod network fails.`));
    }
    if (frontend.lbServicePort !== undefined && model.topology.agents.length === 0) {
      findings.push(warning('frontend.no-agents', subject, `Frontend ${frontend.name} uses the load balancer on port ${frontend.lbServicePort}, but the cluster has no k3s-agent to run it.`));
    }
    for (const text of frontend.binds) {
      const bind = parseBind(text);
      if (typeof bind !== 'string') binds.push({ frontend: frontend.name, bind });
    }
  }

  for (let i = 0; i < binds.length; i++) {
    for (let j = i + 1; j < binds.length; j++) {
      const a = binds[i]!;
      const b = binds[j]!;
      if (a.frontend !== b.frontend && bindsCollide(a.bind, b.bind)) {
        findings.push(
          error('frontend.bind-conflict', frontendSubject(b.frontend), `Frontend ${b.frontend} binds ${b.bind.text}, which collides with ${a.bind.text} of frontend ${a.frontend}.`, gateways),
        );
      }
    }
  }

  findings.push(...virtualHostFindings(model.frontends, gateways));
  for (const gateway of model.topology.webgateways) findings.push(...gatewayBindFindings(gateway, binds, model.frontends));
  return findings;
}

function virtualHostFindings(frontends: readonly Frontend[], gateways: string[]): Finding[] {
  const owner = new Map<string, string>();
  const findings: Finding[] = [];
  for (const frontend of frontends) {
    for (const host of Object.keys(frontend.virtualHosts)) {
      const key = host.toLowerCase();
      const first = owner.get(key);
      if (first) {
        findings.push(error('frontend.vhost-duplicate', frontendSubject(frontend.name), `Virtual host ${host} of frontend ${frontend.name} is already served by frontend ${first}.`, gateways));
      } else owner.set(key, frontend.name);
    }
  }
  return findings;
}

/** A bind must name an address the gateway has, and must not take nginx's ports on nginx's addresses. */
function gatewayBindFindings(gateway: Vm, binds: ReadonlyArray<{ frontend: string; bind: BindAddress }>, frontends: readonly Frontend[]): Finding[] {
  const findings: Finding[] = [];
  const own = new Set(ownAddresses(gateway));
  const nginxServes = frontends.some((frontend) => Object.keys(frontend.virtualHosts).length > 0);
  const nginxAddresses = gateway.publicAddresses.length > 0 ? gateway.publicAddresses : [undefined];
  for (const { frontend, bind } of binds) {
    const subject = frontendSubject(frontend);
    if (bind.address !== undefined && !own.has(bind.address) && !isLoopback(bind.address)) {
      findings.push(error('frontend.bind-foreign-address', subject, `Frontend ${frontend} binds ${bind.text}, but webgateway ${gateway.name} has no address ${bind.address}.`, [gateway.name]));
    }
    if (!nginxServes) continue;
    for (const port of NGINX_PORTS) {
      if (nginxAddresses.some((address) => bindsCollide(bind, { address, port, text: '' }))) {
        findings.push(
          error('frontend.bind-nginx-conflict', subject, `Frontend ${frontend} binds ${bind.text}, where nginx on ${gateway.name} serves the virtual hosts (port ${port}).`, [gateway.name]),
        );
      }
    }
  }
  return findings;
}
