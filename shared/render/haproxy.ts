/**
 * haproxy.cfg for the webgateway: one frontend and one backend per
 * `flyingcircus.kubernetes.frontend` entry, exactly as the spec describes. Pod servers sit in
 * stable slots at `podPort`; every agent's load balancer at `lbServicePort` is a `backup`
 * (the only servers when there is no `podPort`), and when no pod is up all backups share the
 * traffic (`option allbackups`). Connections that fail are retried on
 * another server; in http mode so are idempotent requests whose response never started.
 * A non-idempotent request (POST, PATCH, ...) is never sent twice.
 *
 * One model, two outputs: the config file, and the runtime section the agent applies through
 * haproxy's runtime API, so endpoint changes never reload haproxy.
 */
import { createHash } from 'node:crypto';
import { sha256Hex } from '../hash.ts';
import { findService, type PodEndpoint, podEndpoints } from '../endpoints.ts';
import { type Finding, frontendSubject, info, warning } from '../findings/finding.ts';
import type { Layout } from '../layout.ts';
import type { Model } from '../model.ts';
import type { HaproxyBackend, HaproxyRuntime, HaproxyServer, LoadBalancer } from '../schema/document.ts';
import type { Frontend } from '../schema/frontend.ts';
import { assignSlots, type SlotTable } from '../slots.ts';
import { parseBind } from '../schema/bind.ts';
import type { Vm } from '../schema/vm.ts';
import { hostPort, ownAddresses, srvAddress } from '../topology.ts';

/** Address of a free slot: never contacted, the server is `disabled` (maint). */
const PLACEHOLDER = { address: '127.0.0.1', port: 1 };

export interface HaproxyPlan {
  readonly config: string;
  /** `sha256:<hex>` of `config`, so the document need not hash it again. */
  readonly configSha256: string;
  readonly runtime: HaproxyRuntime;
  readonly slots: Record<string, SlotTable>;
  readonly findings: Finding[];
}

/**
 * http backends: a pod that dies with requests in flight (accepted, then reset or closed with
 * no answer) costs no idempotent request. Those whose response never started (an empty
 * response) are sent again, on another server
 * (`option redispatch 1`), within `retries`. Only idempotent methods (RFC 9110: GET, HEAD,
 * OPTIONS, PUT, DELETE, TRACE) are: a POST, PATCH, CONNECT or any other method caught the same
 * way fails (502) rather than risk being processed twice. A slow answer (`timeout server`)
 * is not retried: a heavy GET must not run four times. To retry, haproxy keeps a copy
 * of the request in a buffer: a request larger than one buffer (`tune.bufsize`, 16 kB with
 * the headers) is never retried beyond a failed connection, which is accepted. A response
 * that has started (even a partial one) is never retried. `retry-on` here replaces the
 * defaults' list, it does not add to it. haproxy ignores `retry-on` in tcp mode: tcp backends
 * keep the connection retries only.
 */
const HTTP_RETRIES = [
  '    option http-server-close',
  '    # Idempotent requests whose response never started are retried on another server; other methods are never sent twice.',
  '    retry-on conn-failure empty-response',
  '    http-request disable-l7-retry unless METH_GET || METH_HEAD || METH_OPTIONS || METH_PUT || METH_DELETE || METH_TRACE',
];

export const backendName = (frontend: Frontend) => `be_${frontend.name}`;
const frontendName = (frontend: Frontend) => `fe_${frontend.name}`;

function joinOptions(...parts: string[]): string {
  return parts.map((part) => part.trim()).filter(Boolean).join(' ');
}

function podOptions(frontend: Frontend): string {
  return joinOptions('check', frontend.sslBackend ? 'ssl verify none' : '', frontend.extraPodTemplateOptions, frontend.haproxyExtraConfig);
}

function loadBalancerOptions(frontend: Frontend, backup: boolean): string {
  return joinOptions('check', backup ? 'backup' : '', frontend.sslBackend ? 'ssl verify none' : '', frontend.haproxyExtraConfig);
}

function serverLine(server: HaproxyServer, options: string): string {
  const target = hostPort(server.address ?? PLACEHOLDER.address, server.port ?? PLACEHOLDER.port);
  const state = server.state === 'maint' ? ' disabled' : server.state === 'drain' ? ' weight 0' : '';
  const comment = server.target ? `  # ${server.target}` : '';
  return `    server ${server.server} ${target} ${options}${state}${comment}`;
}

function slotServers(frontend: Frontend, pods: readonly PodEndpoint[], table: SlotTable): HaproxyServer[] {
  const byKey = new Map(pods.map((pod) => [pod.key, pod]));
  return table.map((key, index) => {
    const pod = key === null ? undefined : byKey.get(key);
    const server = `pod${index + 1}`;
    if (!pod) return { server, state: 'maint' as const };
    return { server, address: pod.address, port: pod.port, state: pod.state, target: pod.key };
  });
}

/** Every agent's load balancer: the same servers for every frontend, only the port differs. */
function loadBalancers(model: Model): LoadBalancer[] {
  return model.topology.agents.flatMap((agent) => {
    const address = srvAddress(agent);
    return address ? [{ server: `lb-${agent.name}`, address, target: agent.name }] : [];
  });
}

/** Each agent's server line up to its port: the same for every backend. */
function loadBalancerLinePrefixes(agents: readonly LoadBalancer[]): string[] {
  return agents.map((agent) => `\n    server ${agent.server} ${agent.address.includes(':') ? `[${agent.address}]` : agent.address}:`);
}

/**
 * Every agent's server line for one backend. These are agents x frontends lines (25,300 for
 * the spec's largest group with 100 frontends): one native join per backend builds them.
 */
function loadBalancerLines(prefixes: readonly string[], port: number, options: string): string {
  const suffix = `${port} ${options}`;
  return prefixes.length === 0 ? '' : prefixes.join(suffix) + suffix;
}

/**
 * A frontend's bind lines on one webgateway. On a real VM they are the frontend's binds as
 * written. A sandboxed VM shares this machine's network with the others (`layout.sharedMachine`):
 * there a bind on every address would take the port on every VM's address, so it means the
 * VM's own addresses instead, as it does on a real VM.
 */
function bindLines(frontend: Frontend, layout: Layout, gateway: Vm | undefined): string[] {
  const own = gateway && layout.sharedMachine ? ownAddresses(gateway) : [];
  return frontend.binds.flatMap((text) => {
    const bind = parseBind(text);
    if (own.length === 0 || typeof bind === 'string' || bind.address !== undefined) return [`    bind ${text}`];
    return own.map((address) => `    bind ${hostPort(address, bind.port)}  # ${text}: this sandboxed VM's own address`);
  });
}

function renderGlobal(model: Model, layout: Layout): string[] {
  const lines = [
    '# Managed by Ringmaster: changes here are overwritten.',
    `# Resource group ${model.rg.name}: one frontend and backend per flyingcircus.kubernetes.frontend entry.`,
    'global',
    '    log /dev/log local0',
    // haproxy sets SO_REUSEPORT by default: two sandboxed VMs binding one port would share it
    // silently, the kernel splitting connections between them. Without it the second one fails.
    ...(layout.sharedMachine ? ['    # A sandboxed VM: a port another VM holds is an error, never shared.', '    noreuseport'] : []),
    `    stats socket ${layout.haproxySocket} mode 600 level admin expose-fd listeners`,
    '    stats timeout 30s',
    `    server-state-file ${layout.haproxyStateFile}`,
    '',
    'defaults',
    '    log global',
    '    option dontlognull',
    '    timeout connect 5s',
    '    timeout client 60s',
    '    timeout server 60s',
    '    timeout tunnel 1h',
    '    timeout http-request 10s',
    '    # A connection that fails is retried, each time on another server. http backends also',
    '    # retry idempotent requests whose response never started (see there).',
    '    retries 3',
    '    option redispatch 1',
    '    retry-on conn-failure',
    '    load-server-state-from-file global',
    '    default-server inter 2s fall 2 rise 1',
  ];
  if (model.frontends.some((frontend) => frontend.servicePort !== undefined && frontend.podPort === undefined)) {
    lines.push('', 'resolvers cluster', `    nameserver coredns ${hostPort(model.cluster?.network.clusterDns ?? '10.43.0.10', 53)}`, '    accepted_payload_size 8192', '    hold valid 10s');
  }
  return lines;
}

/** `gateway`: the webgateway the config is for; it matters only to a sandboxed VM's binds (see `bindLines`). */
export function planHaproxy(model: Model, layout: Layout, previousSlots: Readonly<Record<string, SlotTable>> = {}, gateway?: Vm): HaproxyPlan {
  // The config is built as chunks: the structure (everything but pod slot lines) is hashed
  // chunk by chunk, so the file is joined once and the structure never. The load-balancer
  // lines (agents x frontends of them) enter the structure hash as what determines them: the
  // agents' block rendered once, and each backend's port and options.
  const global = renderGlobal(model, layout).join('\n');
  const full: string[] = [global];
  const agents = loadBalancers(model);
  const prefixes = loadBalancerLinePrefixes(agents);
  const structureHash = createHash('sha256').update(global).update(loadBalancerLines(prefixes, 1, '')).update('\0');
  const backends: HaproxyBackend[] = [];
  const slots: Record<string, SlotTable> = {};
  const findings: Finding[] = [];

  for (const frontend of model.frontends) {
    const mode = frontend.mode;
    const head = [
      '',
      '',
      `frontend ${frontendName(frontend)}`,
      `    mode ${mode}`,
      `    option ${mode === 'http' ? 'httplog' : 'tcplog'}`,
      ...bindLines(frontend, layout, gateway),
      `    default_backend ${backendName(frontend)}`,
      '',
      `backend ${backendName(frontend)}`,
      `    mode ${mode}`,
      '    balance leastconn',
      // Without it haproxy sends everything to the first backup alone when no pod is up: one
      // agent's load balancer would take all the traffic the pods had.
      ...(frontend.podPort !== undefined && frontend.lbServicePort !== undefined ? ['    # All pods down: traffic is spread over every load-balancer backup, not only the first.', '    option allbackups'] : []),
      // One server connection per request: a pod that goes away never holds a pooled
      // connection a request could be sent on, and a moved slot is followed at the very next
      // request. A new connection to a vanished pod fails before anything is sent, and is
      // retried on another server (the defaults' `retry-on conn-failure`, all that tcp gets).
      ...(mode === 'http' ? HTTP_RETRIES : []),
    ].join('\n');
    structureHash.update(head);
    full.push(head);

    const pods = podEndpoints(frontend, model.rg.endpoints);
    const table = frontend.podPort === undefined ? [] : assignSlots(previousSlots[frontend.name], pods.map((pod) => pod.key), frontend.maxExpectedPods);
    if (frontend.podPort !== undefined) slots[frontend.name] = table;
    const podServers = slotServers(frontend, pods, table);
    const options = podOptions(frontend);
    // The slot lines are left out of the structure, but their options are not: changing them needs a reload.
    structureHash.update(`\0pods ${options}\0`);
    for (const server of podServers) full.push(`\n${serverLine(server, options)}`);

    if (frontend.servicePort !== undefined && frontend.podPort === undefined && frontend.lbServicePort === undefined) {
      const fqdn = `${frontend.serviceName}.${frontend.namespace}.svc.cluster.local`;
      const line = `\n    server svc ${fqdn}:${frontend.servicePort} ${joinOptions(loadBalancerOptions(frontend, false), 'resolvers cluster init-addr none')}`;
      structureHash.update(line);
      full.push(line);
    }
    const backup = frontend.podPort !== undefined;
    if (frontend.lbServicePort !== undefined) {
      const lbOptions = loadBalancerOptions(frontend, backup);
      structureHash.update(`\0lb ${frontend.lbServicePort} ${lbOptions}\0`);
      full.push(loadBalancerLines(prefixes, frontend.lbServicePort, lbOptions));
    }

    backends.push({
      name: backendName(frontend),
      frontend: frontend.name,
      serverOptions: options,
      slots: podServers,
      ...(frontend.lbServicePort !== undefined ? { loadBalancerPort: frontend.lbServicePort, loadBalancersAreBackup: backup } : {}),
    });
    if (pods.length > frontend.maxExpectedPods) {
      findings.push(
        warning('frontend.pods-beyond-expected', frontendSubject(frontend.name), `Frontend ${frontend.name} has ${pods.length} pods, more than maxExpectedPods (${frontend.maxExpectedPods}); all get traffic (servers are added at run time), but raise maxExpectedPods.`),
      );
    }
    if (frontend.podPort !== undefined && !findService(model.rg.endpoints, frontend)) {
      findings.push(info('frontend.no-endpoints', frontendSubject(frontend.name), `No endpoints of service ${frontend.namespace}/${frontend.serviceName} observed yet${frontend.lbServicePort !== undefined && agents.length > 0 ? '; traffic goes to the load balancer backups' : ''}.`));
    }
  }
  full.push('\n');
  // Joined once into a flat string, which hashes fastest in one call.
  const config = full.join('');

  return {
    config,
    configSha256: `sha256:${sha256Hex(config)}`,
    slots,
    findings,
    runtime: {
      socket: layout.haproxySocket,
      serverStateFile: layout.haproxyStateFile,
      configPath: layout.haproxyConfig,
      structureHash: `sha256:${structureHash.digest('hex')}`,
      loadBalancers: agents,
      backends,
    },
  };
}
