/**
 * N sandboxed webgateways of one resource group against the local control plane: the control
 * plane in this process, its documents rendered for a folder per VM as `ringmaster serve
 * --sandbox-root` renders them, and per gateway the real agent as its own process
 * (`ringmaster agent --service-manager sandbox`) running the real haproxy under its folder.
 * Each gateway has a loopback address of its own (srv and public). The group has the k3s server
 * its documents need (its agent is not run) and one k3s-agent, whose service load balancer
 * (k3s' servicelb, which cannot run here) is stood in for by an HTTP server on the agent's
 * address at every frontend's `lbServicePort`: the frontends' backup servers answer.
 *
 * For tests that need several gateways side by side (one per address, which one answered).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runtimeCommand } from '../../agent/haproxy-runtime.ts';
import { ApiClient, ApiError } from '../../cli/api-client.ts';
import { agentEnvironment } from '../../cli/commands/serve.ts';
import { type LocalControlPlane, startLocalControlPlane } from '../../local/control-plane.ts';
import { loadOrCreateCredentials } from '../../local/credentials.ts';
import type { AgentReport } from '../../shared/contract/agent-report.ts';
import type { DocumentView, StatusView } from '../../shared/contract/status-view.ts';
import type { PortalEventInput } from '../../shared/events/portal-events.ts';
import { type Layout, layoutOfVm, sandboxLayouts, sandboxRoot } from '../../shared/layout.ts';
import type { FrontendInput } from '../../shared/schema/frontend.ts';
import { waitFor } from './control-plane-process.ts';
import { ROOT } from './fixtures.ts';
import { loopbackAddress } from './tls-gateway.ts';

export interface SandboxedGateway {
  readonly vm: string;
  /** Its srv and public address: where its haproxy listens for a frontend bound to every address. */
  readonly address: string;
  /** Its folder (its "/"). */
  readonly root: string;
  /** Its paths, as its documents name them. */
  readonly layout: Layout;
  /** A command to its haproxy's runtime API (its answer). */
  runtime(command: string): Promise<string>;
  /** HTTP requests its haproxy took on a frontend since it started (`show stat`: the frontend's `req_tot`). */
  requests(frontend: string): Promise<number>;
  /** Its agent's output so far. */
  log(): string;
  /** Whether its agent runs. */
  running(): boolean;
}

export interface SandboxedGroup {
  readonly resourceGroup: string;
  readonly controlPlane: LocalControlPlane;
  readonly api: ApiClient;
  readonly gateways: readonly SandboxedGateway[];
  /** The k3s-agent's address, where the stood-in load balancer answers `lb <agent>` at every `lbServicePort`. */
  readonly loadBalancer: string;
  /** Sends portal events of this group (each gets an id and a time). */
  send(events: ReadonlyArray<Pick<PortalEventInput, 'type' | 'payload'>>): Promise<void>;
  /** The group's status (documents joined with the agents' reports). */
  status(): Promise<StatusView>;
  /** A VM's line of the status, once `until` holds for it. */
  waitForVm(vm: string, until: (view: DocumentView) => boolean, what: string, timeoutMs?: number): Promise<DocumentView>;
  /** Stops every agent (and so its haproxy), the load balancer and the control plane; removes the folders. */
  stop(): Promise<void>;
}

export interface SandboxedGatewaysOptions {
  /** How many webgateways: web01, web02, … */
  readonly count: number;
  /** The group's frontends by name, as the portal sends them. */
  readonly frontends: Readonly<Record<string, FrontendInput>>;
  /** Default `gateways`. */
  readonly resourceGroup?: string;
  /** Loopback slots (see loopbackAddress) for this group's addresses, so parallel tests never share one (default 40). */
  readonly addressSlot?: number;
  /** How frontend changes reach the gateways (default: the product's, a canary first). */
  readonly gatewayRollout?: 'canary' | 'all-at-once';
}

const CLI = `${ROOT}cli/ringmaster.ts`;

/** The stand-in of the k3s-agent's service load balancer: answers every request with its name. */
async function startLoadBalancer(address: string, port: number, name: string): Promise<Server> {
  const server = createServer((_request, response) => response.end(`lb ${name} (${address}:${port})\n`));
  await new Promise<void>((done, fail) => {
    server.once('error', fail);
    server.listen(port, address, () => done());
  });
  return server;
}

/** The frontend's total HTTP requests in haproxy's `show stat` CSV (header `# pxname,svname,…,req_tot,…`). */
function frontendRequests(csv: string, frontend: string): number {
  const [header = '', ...rows] = csv.trim().split('\n');
  const columns = header.replace(/^# /, '').split(',');
  const row = rows.map((line) => line.split(',')).find((cells) => cells[0] === `fe_${frontend}` && cells[1] === 'FRONTEND');
  if (!row) throw new Error(`haproxy has no frontend fe_${frontend}:\n${csv}`);
  return Number(row[columns.indexOf('req_tot')]);
}

export async function startSandboxedGateways(options: SandboxedGatewaysOptions): Promise<SandboxedGroup> {
  const rg = options.resourceGroup ?? 'gateways';
  const slot = options.addressSlot ?? 40;
  const work = mkdtempSync(join(tmpdir(), 'ringmaster-gateways-'));
  // The VMs' folders stand for their "/": anyone may pass through.
  const vms = join(work, 'vms');
  mkdirSync(vms, { recursive: true, mode: 0o755 });
  const layouts = sandboxLayouts(vms);
  const controlPlane = await startLocalControlPlane({ dataDir: join(work, 'control-plane'), apiPort: 0, s3Port: 0, layout: layouts });
  const { info } = controlPlane;
  const api = new ApiClient({ apiUrl: info.apiUrl, token: info.apiToken });
  const { masterKey } = loadOrCreateCredentials(join(info.dataDir, 'credentials.json'));

  const names = Array.from({ length: options.count }, (_, i) => `web${String(i + 1).padStart(2, '0')}`);
  const addresses = names.map((_, i) => loopbackAddress(slot + i));
  const loadBalancer = loopbackAddress(slot + options.count);
  const server = loopbackAddress(slot + options.count + 1);
  let sequence = 0;
  const send: SandboxedGroup['send'] = async (events) => {
    const stamped = events.map((event) => ({ ...event, id: `${rg}-${Date.now()}-${++sequence}`, resourceGroup: rg, occurredAt: new Date().toISOString() }));
    await api.call('postEvents', {}, stamped as PortalEventInput[]);
  };
  const vm = (name: string, roles: string[], address: string, extra: Record<string, unknown> = {}) => ({
    type: 'vm.upserted' as const,
    payload: { vm: { name, roles, cpu: 4, memoryMiB: 8192, disks: [{ sizeGiB: 50, kind: 'ssd' }], srvAddresses: [address], ...extra } },
  });
  await send([
    // Agents poll every 2 s (a nudge tells them at once anyway); no dashboard: the server's agent is not run.
    { type: 'cluster.provisioned', payload: { settings: { dashboard: { enabled: false }, poll: { defaultSeconds: 2 }, ...(options.gatewayRollout ? { gatewayRollout: options.gatewayRollout } : {}) } } },
    vm('kube01', ['k3s-server'], server),
    vm('kube02', ['k3s-agent'], loadBalancer),
    ...names.map((name, i) => vm(name, ['webgateway'], addresses[i]!, { publicAddresses: [addresses[i]!] })),
    ...Object.entries(options.frontends).map(([name, frontend]) => ({ type: 'frontend.upserted' as const, payload: { name, frontend } })),
  ] as Array<Pick<PortalEventInput, 'type' | 'payload'>>);

  const lbPorts = [...new Set(Object.values(options.frontends).flatMap((frontend) => (frontend.lbServicePort === undefined ? [] : [frontend.lbServicePort])))];
  const balancers: Server[] = [];
  const agents: ChildProcess[] = [];
  const outputs = names.map(() => '');
  const stop = async () => {
    await Promise.all(
      agents.map(
        (agent) =>
          new Promise<void>((done) => {
            if (agent.exitCode !== null || agent.signalCode !== null) return done();
            agent.once('exit', () => done());
            // The agent stops its haproxy (its child) on SIGTERM.
            agent.kill('SIGTERM');
          }),
      ),
    );
    await Promise.all(balancers.map((balancer) => new Promise((done) => balancer.close(done))));
    await controlPlane.stop();
    rmSync(work, { recursive: true, force: true });
  };
  try {
    for (const port of lbPorts) balancers.push(await startLoadBalancer(loadBalancer, port, 'kube02'));
    const status = async (): Promise<StatusView> => api.call('getResourceGroup', { rg });
    // The documents first: an agent started before its document exists waits a poll.
    await waitFor(`the documents of ${names.join(', ')}`, async () => {
      const documents = await status().catch((error: unknown) => (error instanceof ApiError && error.status === 404 ? undefined : Promise.reject(error)));
      return names.every((name) => documents?.documents.some((d) => d.vm === name && d.generation !== undefined)) ? true : undefined;
    });
    for (const [i, name] of names.entries()) {
      const root = sandboxRoot(vms, rg, name);
      mkdirSync(root, { recursive: true, mode: 0o755 });
      const log = join(work, `agent-${name}.log`);
      const fd = openSync(log, 'a');
      const agent = spawn(process.execPath, [CLI, 'agent', '--endpoint', info.s3Endpoint, '--root', root, '--service-manager', 'sandbox'], {
        stdio: ['ignore', fd, fd],
        // Its log goes to a file of its own, read when a test fails: all of it.
        env: { ...process.env, ...agentEnvironment(masterKey, rg, name, info.trustedRoots, info.apiUrl), RINGMASTER_LOG_LEVEL: 'DEBUG' },
      });
      closeSync(fd);
      agent.on('exit', () => (outputs[i] = readFileSync(log, 'utf8')));
      agents.push(agent);
    }
    const gateways = names.map((name, i): SandboxedGateway => {
      const layout = layoutOfVm(layouts, rg, name);
      const runtime = (command: string) => runtimeCommand(layout.haproxySocket, command, 2000);
      return {
        vm: name,
        address: addresses[i]!,
        root: sandboxRoot(vms, rg, name),
        layout,
        runtime,
        requests: async (frontend) => frontendRequests(await runtime('show stat'), frontend),
        log: () => (agents[i]!.exitCode === null ? readFileSync(join(work, `agent-${name}.log`), 'utf8') : outputs[i]!),
        running: () => agents[i]!.exitCode === null && agents[i]!.signalCode === null,
      };
    });
    const waitForVm: SandboxedGroup['waitForVm'] = (name, until, what, timeoutMs = 30_000) =>
      waitFor(`${name}: ${what}`, async () => {
        const view = (await status()).documents.find((d) => d.vm === name);
        return view && until(view) ? view : undefined;
      }, timeoutMs);
    return { resourceGroup: rg, controlPlane, api, gateways, loadBalancer, send, status, waitForVm, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** The agent's report in a status line, when it wrote a readable one. */
export function reportOf(view: DocumentView): AgentReport | undefined {
  return view.agent && !('invalid' in view.agent) ? view.agent : undefined;
}
