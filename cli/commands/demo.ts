/**
 * `ringmaster demo`: the whole product on this machine, in one command. It starts the local
 * control plane (a child `ringmaster serve`, its log in a file) with every VM sandboxed in a
 * folder of its own (`--sandbox-root`), provisions
 * the spec's reference architecture (examples/events/sandbox-demo.yaml: each VM on a
 * 127.0.0.x address), starts one sandboxed agent per VM (a child process with that VM's own
 * store credentials: real haproxy, nginx and PostgreSQL under its folder), starts a few
 * HTTP "pods" for scenario 1's frontend. Their Service and EndpointSlice go into the test
 * kube-apiserver standing in for k3s' API when the tests built one (demo-kubernetes.ts), and
 * reach haproxy through the server's agent, as on a cluster; without it, the demo sends the
 * EndpointSlice through the cluster's signed webhook itself, as the server's watcher would, and
 * says so. It redraws the status table
 * until every VM runs its document and haproxy answers from a pod, prints how long that took,
 * the status page's URL, a `curl` through the webgateway's haproxy and how to stop; Ctrl-C
 * (SIGINT or SIGTERM) stops every process it started and checks none is left.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { postSigned, signRequest } from '../../agent/kubernetes/signed-post.ts';
import type { ConnectionInfo } from '../../local/control-plane.ts';
import { loadOrCreateCredentials } from '../../local/credentials.ts';
import { routeUrl } from '../../shared/contract/routes.ts';
import type { StatusView } from '../../shared/contract/status-view.ts';
import type { EndpointWebhookBody } from '../../shared/events/endpoint-events.ts';
import { K3S_ADMIN_KUBECONFIG } from '../../agent/kubernetes/k3s-files.ts';
import type { KubeApiServer } from '../../local/kube-apiserver.ts';
import { layoutUnder, sandboxRoot } from '../../shared/layout.ts';
import { statusGlance } from '../../shared/status-badges.ts';
import { ApiClient, ApiError } from '../api-client.ts';
import { InputError } from '../input.ts';
import { descendants, running } from '../process-tree.ts';
import { addLoopbackAddresses, createPodsService, installAsK3s, removeLoopbackAddresses, startKubernetesStandIn } from './demo-kubernetes.ts';
import { pageUrl } from './open.ts';
import { readEventsFile, statusText } from './operator.ts';
import { agentEnvironment } from './serve.ts';

export interface DemoOptions {
  /** Where everything goes (default: a new folder in the system's temp folder, removed on stop). */
  readonly dataDir?: string;
  /** Keep the data folder after stopping. */
  readonly keep?: boolean;
  readonly apiPort?: number;
}

const RESOURCE_GROUP = 'demo';
const EVENTS = fileURLToPath(new URL('../../examples/events/sandbox-demo.yaml', import.meta.url));
const CLI = fileURLToPath(new URL('../ringmaster.ts', import.meta.url));
/** Scenario 1's frontend as the demo's events set it: web01's haproxy bind, the pods' port and Service. */
const FRONTEND = { url: 'http://127.0.0.10:8080/', service: 'myapp', podPort: 8888 };
/**
 * The "pods": HTTP servers, each on an address of its own at the frontend's podPort. On loopback
 * addresses; with a Kubernetes API, which refuses those in an EndpointSlice, on addresses of the
 * demo's pod network (its cluster CIDR) added to the loopback interface for the run.
 */
const POD_ADDRESSES = { loopback: ['127.0.0.101', '127.0.0.102', '127.0.0.103'], podNetwork: ['10.42.1.11', '10.42.1.12', '10.42.2.11'] };
/** The demo gives up (and stops everything) when the group is not in sync by then. */
const CONVERGE_TIMEOUT_MS = 120_000;

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** A pod: answers every request with its name and address. */
async function startPod(index: number, address: string): Promise<Server> {
  const name = `myapp-${index + 1}`;
  const server = createServer((_request, response) => response.end(`hello from pod ${name} (${address}:${FRONTEND.podPort})\n`));
  await new Promise<void>((done, fail) => {
    server.once('error', (error: NodeJS.ErrnoException) => fail(new InputError(`pod ${name}`, [`cannot listen on ${address}:${FRONTEND.podPort}: ${error.code ?? error.message} (another demo running?)`])));
    server.listen(FRONTEND.podPort, address, () => done());
  });
  return server;
}

/** The pods' EndpointSlice, every pod ready, as Kubernetes keeps it for their Service. */
function endpointSlice(addresses: readonly string[]) {
  return {
    metadata: { name: `${FRONTEND.service}-demo`, namespace: 'default', labels: { 'kubernetes.io/service-name': FRONTEND.service } },
    addressType: 'IPv4' as const,
    ports: [{ name: 'http', port: FRONTEND.podPort, protocol: 'TCP' as const }],
    endpoints: addresses.map((address, index) => ({ addresses: [address], conditions: { ready: true, serving: true, terminating: false }, targetRef: { kind: 'Pod', namespace: 'default', name: `${FRONTEND.service}-${index + 1}` } })),
  };
}

/** Without a Kubernetes API: the slice as the k3s server's watcher would send it through the signed webhook. */
function webhookBody(addresses: readonly string[]): EndpointWebhookBody {
  const slice = endpointSlice(addresses);
  return { changes: [{ type: 'ADDED', object: { ...slice, metadata: { ...slice.metadata, resourceVersion: '1' } } }], services: [], resync: false, nonce: randomBytes(8).toString('hex') };
}

/** The group's status, or undefined while the control plane has none yet. */
async function statusOf(api: ApiClient): Promise<StatusView | undefined> {
  try {
    return await api.call('getResourceGroup', { rg: RESOURCE_GROUP });
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return undefined;
    throw error;
  }
}

/** What the webgateway's haproxy answers at the frontend (undefined: nothing yet). */
async function throughHaproxy(): Promise<string | undefined> {
  try {
    const response = await fetch(FRONTEND.url, { signal: AbortSignal.timeout(2000) });
    return response.ok ? await response.text() : undefined;
  } catch {
    return undefined;
  }
}

/** Redraws the status in place on a terminal; into a pipe, prints a line when the sync badge changes. */
function liveTable(startedAt: number): (status: StatusView | undefined) => void {
  const tty = process.stdout.isTTY === true;
  let drawn = 0;
  let lastLine = '';
  return (status) => {
    const elapsed = seconds(Date.now() - startedAt);
    if (!tty) {
      const glance = status ? statusGlance(status, new Date()) : undefined;
      const line = glance ? `${glance.sync.label}: ${glance.sync.detail}` : 'waiting for the control plane to reconcile';
      if (line !== lastLine) process.stdout.write(`[${elapsed}] ${line}\n`);
      lastLine = line;
      return;
    }
    const text = `${status ? statusText(status, { wide: false, columns: process.stdout.columns || 120 }) : 'Waiting for the control plane to reconcile…'}\n\n(${elapsed})\n`;
    // Up to where the last drawing started, clear below, draw again.
    process.stdout.write(`${drawn > 0 ? `\x1b[${drawn}F\x1b[J` : ''}${text}`);
    drawn = text.split('\n').length - 1;
  };
}

/** `ringmaster ARGS…` as a child in a process group of its own (stopped as a whole), its output in `log`. */
function startRingmaster(args: readonly string[], log: string, env: Record<string, string> = {}): ChildProcess {
  const fd = openSync(log, 'a');
  try {
    const child = spawn(process.execPath, [CLI, ...args], { detached: true, stdio: ['ignore', fd, fd], env: { ...process.env, ...env } });
    child.on('error', () => undefined);
    return child;
  } finally {
    closeSync(fd);
  }
}

/** One sandboxed agent per VM, with that VM's own store credentials. */
function startAgent(vm: string, context: { sandbox: string; logs: string; info: ConnectionInfo; masterKey: string }): ChildProcess {
  const args = ['agent', '--endpoint', context.info.s3Endpoint, '--root', sandboxRoot(context.sandbox, RESOURCE_GROUP, vm), '--service-manager', 'sandbox'];
  return startRingmaster(args, join(context.logs, `agent-${vm}.log`), agentEnvironment(context.masterKey, RESOURCE_GROUP, vm, context.info.trustedRoots, context.info.apiUrl));
}

/** The control plane, as `ringmaster serve` with every VM's paths under the sandbox; its connection once it is ready. */
async function startControlPlane(dir: string, sandbox: string, logs: string, apiPort: number): Promise<{ child: ChildProcess; info: ConnectionInfo }> {
  const ready = join(dir, 'control-plane.json');
  const log = join(logs, 'control-plane.log');
  const child = startRingmaster(['serve', '--data-dir', join(dir, 'control-plane'), '--api-port', String(apiPort), '--s3-port', '0', '--sandbox-root', sandbox, '--ready-file', ready], log);
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && child.exitCode === null) {
    const text = await readFile(ready, 'utf8').catch(() => '');
    if (text.endsWith('\n')) return { child, info: JSON.parse(text) as ConnectionInfo };
    await sleep(50);
  }
  if (child.exitCode === null && child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
  const tail = (await readFile(log, 'utf8').catch(() => '')).trim().split('\n').slice(-5).join('\n');
  throw new Error(`the control plane did not start (see ${log}):\n${tail}`);
}

/**
 * Stops children (each one's process group: an agent stops its daemons, and they get the
 * signal too), then waits until every process below them is gone, killing stragglers after
 * 15 s. Returns how many processes there were and which are left (none, normally).
 */
async function stopProcessGroups(children: readonly ChildProcess[]): Promise<{ stopped: number; left: number[] }> {
  const pids = children.flatMap((agent) => (agent.pid !== undefined && agent.exitCode === null ? [agent.pid] : []));
  const all = [...pids, ...descendants(pids)];
  const signalGroup = (pid: number, signal: NodeJS.Signals) => {
    try {
      process.kill(-pid, signal);
    } catch {
      // The group is gone already.
    }
  };
  for (const pid of pids) signalGroup(pid, 'SIGTERM');
  const deadline = Date.now() + 15_000;
  while (all.some(running) && Date.now() < deadline) await sleep(100);
  for (const pid of all.filter(running)) {
    signalGroup(pid, 'SIGKILL');
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone in the meantime.
    }
  }
  await sleep(200);
  return { stopped: all.length, left: all.filter(running) };
}

/**
 * Why this user cannot run the demo, checked before anything starts: the sandboxed webgateway's
 * and server's nginx serve ports 80 and 443 (the virtual host with its ACME challenges, the
 * dashboard), as on a VM, and binding them needs root unless the machine lets every user bind
 * from port 80 on. (Everything else runs as any user: PostgreSQL then runs as that user; only
 * the pods' pod-network addresses for the Kubernetes API need root, and without them the demo
 * says so and goes on without it.)
 */
function privilegesProblem(): string[] | undefined {
  if (process.getuid?.() === 0) return undefined;
  const file = '/proc/sys/net/ipv4/ip_unprivileged_port_start';
  let first = 1024;
  try {
    first = Number(readFileSync(file, 'utf8').trim());
  } catch {
    // Not Linux, or no such setting: ports below 1024 are root's.
  }
  if (first <= 80) return undefined;
  return [
    `the demo needs root here: the sandboxed VMs' nginx serves ports 80 and 443 (web01's virtual host, kube01's dashboard), and only root may bind ports below ${first} on this machine (${file}).`,
    'Run it as root (sudo npx ringmaster demo), or let every user bind from port 80 on: sudo sysctl -w net.ipv4.ip_unprivileged_port_start=80',
  ];
}

/** A new folder for the demo, reachable by the postgres user (PostgreSQL's cluster lives under it). */
function demoFolder(given: string | undefined): { dir: string; made: boolean } {
  const dir = resolve(given ?? join(tmpdir(), `ringmaster-demo-${randomBytes(4).toString('hex')}`));
  let entries: string[] = [];
  try {
    entries = readdirSync(dir);
  } catch {
    // Not there yet: made below.
  }
  if (entries.length > 0) throw new InputError(dir, ['the demo needs an empty or new folder (it starts from nothing every time)']);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  return { dir, made: given === undefined };
}

export async function runDemo(options: DemoOptions): Promise<number> {
  const problem = privilegesProblem();
  if (problem) throw new InputError('ringmaster demo', problem);
  const startedAt = Date.now();
  const { dir, made } = demoFolder(options.dataDir);
  const sandbox = join(dir, 'vms');
  const logs = join(dir, 'logs');
  mkdirSync(logs, { recursive: true, mode: 0o755 });
  const agents: ChildProcess[] = [];
  const pods: Server[] = [];
  let controlPlane: ChildProcess | undefined;
  // Started at once, beside the control plane: the API server takes a few seconds.
  const standIn = startKubernetesStandIn();
  let kube: KubeApiServer | undefined;
  let loopbackAdded: readonly string[] = [];
  let stopping: Promise<void> | undefined;
  // Handled for as long as the demo runs: a second Ctrl-C (or `timeout`, which signals the child
  // and then its whole process group) must not kill it half-way through stopping its children.
  const stopRequested = new Promise<string>((done) => {
    process.on('SIGINT', () => done('SIGINT'));
    process.on('SIGTERM', () => done('SIGTERM'));
  });

  const stopAll = (why: string) =>
    (stopping ??= (async () => {
      process.stdout.write(`\nStopping (${why}): ${agents.length} agents and their daemons, ${pods.length} pods, the control plane…\n`);
      // The agents first: they need nothing of the control plane to stop.
      const fromAgents = await stopProcessGroups(agents);
      const fromControlPlane = await stopProcessGroups(controlPlane ? [controlPlane] : []);
      // The API server, once it started (a start still under way is waited for: it ends stopped too).
      kube ??= 'starting' in standIn ? await standIn.starting.catch(() => undefined) : undefined;
      const kubePids = kube?.pids ?? [];
      await kube?.stop();
      const stopped = fromAgents.stopped + fromControlPlane.stopped + kubePids.length;
      const left = [...fromAgents.left, ...fromControlPlane.left, ...kubePids.filter(running)];
      for (const pod of pods) pod.closeAllConnections();
      await Promise.all(pods.map((pod) => new Promise((done) => pod.close(done))));
      await removeLoopbackAddresses(loopbackAdded);
      process.stdout.write(left.length === 0 ? `Stopped: ${stopped} processes, none left running.\n` : `Stopped, but ${left.length} process(es) are still running: ${left.join(', ')}\n`);
      if (made && !options.keep) rmSync(dir, { recursive: true, force: true });
      else process.stdout.write(`Data, logs and the VMs' folders kept in ${dir}\n`);
      if (left.length > 0) process.exitCode = 1;
    })());

  const demo = async (): Promise<void> => {
    process.stdout.write(`Ringmaster demo in ${dir} (logs in ${logs})\n`);
    const started = await startControlPlane(dir, sandbox, logs, options.apiPort ?? 0);
    controlPlane = started.child;
    const { info } = started;
    const api = new ApiClient({ apiUrl: info.apiUrl, token: info.apiToken });
    const { masterKey } = loadOrCreateCredentials(join(info.dataDir, 'credentials.json'));
    const url = pageUrl(info.apiUrl, info.apiToken, RESOURCE_GROUP);
    process.stdout.write(`Control plane on ${info.apiUrl} (S3 ${info.s3Endpoint}); provisioning the reference architecture (${EVENTS})\n`);
    process.stdout.write(`Watch it converge: ${url}\n`);
    await api.call('postEvents', {}, await readEventsFile(EVENTS));
    // With a Kubernetes API the pods need addresses it accepts: without them, the demo goes without it.
    let withoutApi = 'absent' in standIn ? standIn.absent : await addLoopbackAddresses(POD_ADDRESSES.podNetwork);
    if (withoutApi === undefined) loopbackAdded = POD_ADDRESSES.podNetwork;
    // Not used after all: stopped now rather than left running beside the demo (stopping it again at the end does nothing).
    else if ('starting' in standIn) void standIn.starting.then((unused) => unused.stop(), () => undefined);
    const podAddresses = withoutApi === undefined ? POD_ADDRESSES.podNetwork : POD_ADDRESSES.loopback;
    for (const [index, address] of podAddresses.entries()) pods.push(await startPod(index, address));

    const draw = liveTable(startedAt);
    const deadline = startedAt + CONVERGE_TIMEOUT_MS;
    let status: StatusView | undefined;
    // The documents first: an agent started before its document exists waits a poll interval.
    while (!(status && status.documents.length > 0 && status.documents.every((d) => d.generation !== undefined || d.blockedBy.length > 0))) {
      if (Date.now() > deadline) throw new Error('the control plane wrote no documents in time');
      status = await statusOf(api);
      draw(status);
      await sleep(200);
    }
    const vms = status.documents.filter((d) => d.generation !== undefined).map((d) => d.vm);
    // Each VM's folder is its "/": made here, before any agent runs, so that none of them makes
    // the shared folders above it with the mode of its own private ones (PostgreSQL, running as
    // postgres, must pass through them).
    for (const vm of vms) mkdirSync(sandboxRoot(sandbox, RESOURCE_GROUP, vm), { recursive: true, mode: 0o755 });
    const server = status.documents.find((d) => d.roles.includes('k3s-server'))?.vm;
    const agentContext = { sandbox, logs, info, masterKey };
    for (const vm of vms) if (vm !== server) agents.push(startAgent(vm, agentContext));
    // The server's agent once its "k3s" is up, as on a VM: the API server's files where k3s
    // writes its own, and the pods' Service and EndpointSlice in it (the agent's watcher lists
    // them when it starts and sends them through the signed webhook).
    if (withoutApi === undefined && 'starting' in standIn && server) {
      try {
        kube = await standIn.starting;
        installAsK3s(kube, sandboxRoot(sandbox, RESOURCE_GROUP, server));
        await createPodsService(kube, { name: FRONTEND.service, port: FRONTEND.podPort }, endpointSlice(podAddresses));
      } catch (error) {
        withoutApi = `the test kube-apiserver failed (${(error as Error).message.split('\n')[0]})`;
      }
    }
    process.stdout.write(
      withoutApi === undefined
        ? `Kubernetes API: the test kube-apiserver on ${kube!.url} stands in for k3s' (k3s cannot run here); the pods' Service and EndpointSlice are made there, and reach haproxy through ${server}'s agent\n`
        : `No Kubernetes API: ${withoutApi}; the demo sends the pods' EndpointSlice through the cluster's signed webhook itself\n`,
    );
    if (server) agents.push(startAgent(server, agentContext));
    const agentVms = [...vms.filter((vm) => vm !== server), ...(server ? [server] : [])];

    // Without an API, the k3s server's watcher would send the pods' EndpointSlice, signed with the key its document gave it: the demo does, once the server's agent wrote it.
    const keyFile = server && withoutApi !== undefined ? layoutUnder(sandboxRoot(sandbox, RESOURCE_GROUP, server)).webhookKeyFile : undefined;
    let endpointsSent = withoutApi === undefined;
    let answer: string | undefined;
    for (;;) {
      if (Date.now() > deadline) {
        // Whatever was drawn last, the whole table with every error says why.
        if (status) process.stdout.write(`${statusText(status, { wide: true, columns: 0 })}\n`);
        throw new Error(`not in sync after ${seconds(CONVERGE_TIMEOUT_MS)}: see the table above and the agents' logs in ${logs}`);
      }
      const ended = agents.findIndex((agent) => agent.exitCode !== null || agent.signalCode !== null);
      if (ended >= 0) {
        const log = join(logs, `agent-${agentVms[ended]}.log`);
        const tail = (await readFile(log, 'utf8').catch(() => '')).trim().split('\n').slice(-8).join('\n');
        throw new Error(`the agent of ${agentVms[ended]} ended (${agents[ended]!.exitCode ?? agents[ended]!.signalCode}); the end of ${log}:\n${tail}`);
      }
      if (!endpointsSent && keyFile) {
        const key = (await readFile(keyFile, 'utf8').catch(() => '')).trim();
        if (key) {
          const result = await postSigned(signRequest(routeUrl(info.apiUrl, 'postClusterEndpoints', { rg: RESOURCE_GROUP }), key, JSON.stringify(webhookBody(podAddresses))));
          if (result.status !== 202) throw new Error(`the cluster webhook refused the pods' EndpointSlice: ${result.status} ${result.text}`);
          endpointsSent = true;
        }
      }
      status = await statusOf(api);
      draw(status);
      const inSync = status !== undefined && statusGlance(status, new Date()).sync.label === 'in sync';
      answer = endpointsSent && inSync ? await throughHaproxy() : undefined;
      if (answer?.startsWith('hello from pod')) break;
      await sleep(250);
    }
    const tookMs = Date.now() - startedAt;
    process.stdout.write(
      [
        '',
        `All ${vms.length} VMs in sync after ${seconds(tookMs)} (from the start of the demo; ${agents.length} sandboxed agents, ${pods.length} pods).`,
        '',
        `  Status page   ${url}`,
        '                (the token after # stays in your browser; keep the URL to yourself)',
        `  Try           curl ${FRONTEND.url}`,
        `                → ${answer!.trim()}`,
        `  Each VM       ${sandbox}/${RESOURCE_GROUP}/<vm> (k3s does not run in the sandbox; its report says so${withoutApi === undefined ? ', and that the test kube-apiserver stands in for its API' : ''})`,
        ...(withoutApi === undefined ? [`  Kubernetes    kubectl --kubeconfig ${sandbox}/${RESOURCE_GROUP}/${server}${K3S_ADMIN_KUBECONFIG} get endpointslices`] : []),
        '',
        'Stop with Ctrl-C: every process the demo started stops.',
        '',
      ].join('\n'),
    );
  };

  const failure = await Promise.race([demo().then(() => undefined, (error: unknown) => error), stopRequested.then((why) => new Error(`stopped by ${why} before the group was in sync`))]);
  if (failure) {
    const lines = failure instanceof InputError ? failure.lines : [(failure as Error).message];
    process.stderr.write(`ringmaster demo: ${lines.join('\n')}\n`);
    await stopAll('failed');
    return 1;
  }
  await stopAll(await stopRequested);
  return process.exitCode === 1 ? 1 : 0;
}
