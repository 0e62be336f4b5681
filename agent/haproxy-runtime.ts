/**
 * haproxy's runtime API over its stats socket (`level admin`): endpoint changes are applied
 * here, without a reload. One connection per command, as haproxy closes it after answering
 * (non-interactive mode).
 */
import { createConnection } from 'node:net';
import type { BackendServer, BackendServerState } from '../shared/contract/agent-report.ts';
import type { HaproxyRuntime, HaproxyServer } from '../shared/schema/document.ts';
import { hostPort } from '../shared/topology.ts';

export class RuntimeError extends Error {}

export function runtimeCommand(socket: string, command: string, timeoutMs = 5000): Promise<string> {
  if (/[\n;]/.test(command)) return Promise.reject(new RuntimeError(`refusing a runtime command with a newline or ";": ${command}`));
  return new Promise((resolve, reject) => {
    const connection = createConnection(socket);
    let answer = '';
    const timer = setTimeout(() => connection.destroy(new RuntimeError(`haproxy did not answer "${command}" within ${timeoutMs} ms`)), timeoutMs);
    connection.setEncoding('utf8');
    connection.on('connect', () => connection.end(`${command}\n`));
    connection.on('data', (chunk) => (answer += chunk));
    connection.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    connection.on('close', () => {
      clearTimeout(timer);
      resolve(answer.trim());
    });
  });
}

/** Fails on haproxy's error answers (it answers errors as text, with no status code). */
async function expectOk(socket: string, command: string): Promise<void> {
  const answer = await runtimeCommand(socket, command);
  if (/^(No such|Unknown|Invalid|Require|.*not found|.*error|.*failed)/i.test(answer)) throw new RuntimeError(`haproxy refused "${command}": ${answer}`);
}

export interface ServerState {
  readonly backend: string;
  readonly server: string;
  readonly address: string;
  readonly port: number;
  /** haproxy's administrative state bits: 0 ready, 1 maint (forced), 8 drain (forced). */
  readonly adminState: number;
  /** haproxy's operational state: 0 stopped (down), 1 starting, 2 running (up), 3 stopping. */
  readonly operationalState: number;
}

/** `show servers state`: one line per server, fields named by the header line. */
export async function serversState(socket: string): Promise<ServerState[]> {
  const answer = await runtimeCommand(socket, 'show servers state');
  const lines = answer.split('\n');
  const header = lines.find((line) => line.startsWith('# be_id'))?.slice(2).split(' ') ?? [];
  const index = (name: string) => header.indexOf(name);
  return lines
    .filter((line) => line && !line.startsWith('#') && /^\d/.test(line))
    .map((line) => line.split(' '))
    .map((fields) => ({
      backend: fields[index('be_name')] ?? '',
      server: fields[index('srv_name')] ?? '',
      address: fields[index('srv_addr')] ?? '',
      port: Number(fields[index('srv_port')] ?? 0),
      adminState: Number(fields[index('srv_admin_state')] ?? 0),
      operationalState: Number(fields[index('srv_op_state')] ?? 0),
    }));
}

/**
 * The commands that bring a backend's pod slots to the document's: address and port first,
 * then the state (`ready`, `drain` keeps open connections and takes no new ones, `maint`).
 * Slots haproxy does not have yet (more pods than `maxExpectedPods`) are added at run time.
 */
export function slotCommands(backend: string, slots: readonly HaproxyServer[], current: ReadonlyMap<string, ServerState>, serverOptions: string): string[] {
  const commands: string[] = [];
  for (const slot of slots) {
    const known = current.get(slot.server);
    if (!known) {
      if (!slot.address || !slot.port) continue;
      commands.push(`add server ${backend}/${slot.server} ${hostPort(slot.address, slot.port)} ${serverOptions}`.trim());
      if (slot.state !== 'maint') commands.push(`enable server ${backend}/${slot.server}`);
      if (/\bcheck\b/.test(serverOptions)) commands.push(`enable health ${backend}/${slot.server}`);
      if (slot.state === 'drain') commands.push(`set server ${backend}/${slot.server} state drain`);
      continue;
    }
    if (slot.address && slot.port && (known.address !== slot.address || known.port !== slot.port)) {
      commands.push(`set server ${backend}/${slot.server} addr ${slot.address} port ${slot.port}`);
    }
    const wanted = slot.state === 'ready' ? 0 : slot.state === 'drain' ? 8 : 1;
    const now = known.adminState & 1 ? 1 : known.adminState & 8 ? 8 : 0;
    if (wanted !== now || (slot.address && known.address !== slot.address)) {
      commands.push(`set server ${backend}/${slot.server} state ${slot.state}`);
      if (slot.state === 'ready') {
        // Kubernetes already says the pod is ready: take it into service now, not after the
        // first health check; and give back the weight a slot drained in the file has lost.
        commands.push(`set server ${backend}/${slot.server} health up`, `set weight ${backend}/${slot.server} 1`);
      }
    }
  }
  return commands;
}

/**
 * Pod servers haproxy still has but the document no longer lists (added at run time while
 * there were more pods than slots): out of service, or haproxy would keep sending traffic to
 * an address no pod has, and never fall back to the backups.
 */
export function retiredServerCommands(backend: string, slots: readonly HaproxyServer[], current: ReadonlyMap<string, ServerState>): string[] {
  const listed = new Set(slots.map((slot) => slot.server));
  return [...current.values()]
    .filter((server) => /^pod\d+$/.test(server.server) && !listed.has(server.server) && (server.adminState & 1) === 0)
    .map((server) => `set server ${backend}/${server.server} state maint`);
}

/**
 * A server's state as haproxy has it: maintenance or drain (set by us, or by haproxy itself),
 * else what its health checks say.
 */
export function serverState(server: ServerState): BackendServerState {
  // Admin bits: 0x01 forced, 0x02 inherited, 0x20 address resolution: maint; 0x08 forced, 0x10
  // inherited: drain. 0x04 only records that the config said `disabled` (it stays once a runtime
  // `state ready` took the server into service: seen on 2.6).
  if (server.adminState & (0x01 | 0x02 | 0x20)) return 'maint';
  if (server.adminState & (0x08 | 0x10)) return 'drain';
  return (['down', 'starting', 'up', 'stopping'] as const)[server.operationalState] ?? 'down';
}

/**
 * Every server of the document's backends as haproxy has it now, each with the pod (or agent)
 * the document says it stands for: what the status page shows per frontend.
 */
export async function backendStates(runtime: HaproxyRuntime, socket: string): Promise<BackendServer[]> {
  const state = await serversState(socket);
  const targets = new Map(runtime.backends.flatMap((backend) => [...backend.slots.map((slot) => [`${backend.name}/${slot.server}`, slot.target] as const), ...runtime.loadBalancers.map((lb) => [`${backend.name}/${lb.server}`, lb.target] as const)]));
  const frontends = new Map(runtime.backends.map((backend) => [backend.name, backend.frontend]));
  return state
    .filter((server) => frontends.has(server.backend))
    .map((server) => {
      const target = targets.get(`${server.backend}/${server.server}`);
      return { frontend: frontends.get(server.backend)!, server: server.server, address: `${hostPort(server.address, server.port)}`, ...(target ? { target } : {}), state: serverState(server) };
    });
}

export async function applyRuntime(socket: string, commands: readonly string[]): Promise<void> {
  for (const command of commands) await expectOk(socket, command);
}
