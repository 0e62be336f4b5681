/**
 * The `sandbox` service manager: a VM in a folder, for demos and tests on one machine. The
 * agent runs the daemons itself, as its own child processes (never daemonized: they stay in the
 * agent's process group, so stopping that group stops them all), with every file under the
 * root: real haproxy (master-worker, its master socket beside the runtime socket), real nginx
 * and a real PostgreSQL (initdb under the root, on a port of its own, run as `postgres` when the
 * agent is root). The NFS exports file is written and checked, not exported; k3s cannot run
 * here, and the report says so instead of failing (and names the Kubernetes API standing in
 * for it, if one does).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { closeSync, globSync, openSync } from 'node:fs';
import { chown, mkdir, readFile, stat } from 'node:fs/promises';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { type Layout, layoutUnder } from '../../shared/layout.ts';
import type { ServiceName } from '../../shared/services.ts';
import { readIfExists, writeAtomically } from '../files.ts';
import { runtimeCommand } from '../haproxy-runtime.ts';
import { excerpt, type ServiceManager, type ServiceStep } from './service-manager.ts';

export interface SandboxOptions {
  /** The VM's folder: its documents are rendered for it (`layoutUnder(root)`), and the daemons' own files go there too. */
  readonly root: string;
  /** Services left alone, as k3s is (tests that need only haproxy). */
  readonly notRun?: readonly ServiceName[];
  /** How long a daemon may take to answer after a start or reload. */
  readonly readyTimeoutMs?: number;
  /** What stands in for k3s' Kubernetes API, when something does (the report names it beside "k3s: not run"). */
  readonly kubernetesApi?: string;
}

/** Run daemons stop with these: a fast shutdown (PostgreSQL's SIGTERM would wait for its clients). */
const STOP_SIGNAL: Partial<Record<ServiceName, NodeJS.Signals>> = { postgresql: 'SIGINT' };

const ok = (command: string, output = ''): ServiceStep => ({ command, code: 0, output });
const failed = (command: string, output: string): ServiceStep => ({ command, code: 1, output });

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs a short command to its end (validations, initdb, psql). */
function runToEnd(argv: readonly string[], options: { input?: Buffer | string; uid?: number; gid?: number; cwd?: string } = {}): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const child = execFile(argv[0]!, argv.slice(1), { timeout: 60_000, maxBuffer: 4 * 1024 * 1024, ...(options.uid !== undefined ? { uid: options.uid, gid: options.gid } : {}), ...(options.cwd ? { cwd: options.cwd } : {}) }, (error, stdout, stderr) => {
      const code = error ? (typeof (error as { code?: unknown }).code === 'number' ? (error as { code: number }).code : 1) : 0;
      const missing = (error as NodeJS.ErrnoException | null)?.code === 'ENOENT' ? `${argv[0]} is not installed` : '';
      resolve({ code, output: `${stdout}${stderr}${missing || (error && !stderr ? error.message : '')}` });
    });
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(options.input);
  });
}

/** A TCP port nothing listens on now, on loopback. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** The `postgres` user's uid and gid when the agent is root (PostgreSQL refuses to run as root); the agent's own otherwise. */
async function postgresUser(): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const uid = await runToEnd(['id', '-u', 'postgres']);
  const gid = await runToEnd(['id', '-g', 'postgres']);
  if (uid.code !== 0 || gid.code !== 0) throw new Error('there is no postgres user (apt-get install postgresql makes it): PostgreSQL does not run as root');
  return { uid: Number(uid.output.trim()), gid: Number(gid.output.trim()) };
}

/** Debian keeps PostgreSQL's server programs out of PATH, one folder per major version: the newest. */
function postgresProgram(name: 'initdb' | 'postgres'): string {
  return globSync(`/usr/lib/postgresql/*/bin/${name}`).sort((a, b) => a.localeCompare(b, 'en', { numeric: true })).pop() ?? name;
}

/** The worker pids in haproxy's master CLI answer to `show proc` (the current ones, not the old). */
function haproxyWorkers(showProc: string): string[] {
  const lines = showProc.split('\n');
  const start = lines.findIndex((line) => line.startsWith('# workers'));
  if (start < 0) return [];
  const workers: string[] = [];
  for (const line of lines.slice(start + 1)) {
    if (line.startsWith('#')) break;
    const pid = /^(\d+)\s+worker/.exec(line)?.[1];
    if (pid) workers.push(pid);
  }
  return workers;
}

/** How many reloads haproxy's master counts as failed in its answer to `show proc` (a new config that could not start). */
function haproxyFailedReloads(showProc: string): number | undefined {
  const failed = /^\d+\s+master\s+\d+\s+\[failed:\s*(\d+)\]/m.exec(showProc)?.[1];
  return failed === undefined ? undefined : Number(failed);
}

/** Whether `pid` runs a program whose command line names `marker` (one of ours, from a previous agent). */
async function runsWith(pid: number, marker: string): Promise<boolean> {
  const cmdline = await readIfExists(`/proc/${pid}/cmdline`);
  return cmdline !== undefined && cmdline.toString('utf8').includes(marker);
}

export class SandboxServices implements ServiceManager {
  readonly kind = 'sandbox' as const;
  readonly #root: string;
  readonly #layout: Layout;
  readonly #notRun: ReadonlySet<ServiceName>;
  readonly #readyTimeoutMs: number;
  readonly #kubernetesApi: string | undefined;
  readonly #children = new Map<ServiceName, ChildProcess>();
  #postgresPort: number | undefined;

  constructor(options: SandboxOptions) {
    this.#root = options.root.replace(/\/$/, '');
    this.#layout = layoutUnder(this.#root);
    // The host firewall would be this machine's, shared by every sandboxed VM and its owner: never loaded.
    this.#notRun = new Set<ServiceName>(['k3s', 'nftables', ...(options.notRun ?? [])]);
    this.#readyTimeoutMs = options.readyTimeoutMs ?? 15_000;
    this.#kubernetesApi = options.kubernetesApi;
  }

  /** Where the VM's files are, as its documents name them. */
  get layout(): Layout {
    return this.#layout;
  }

  /** haproxy's master CLI: beside its runtime socket, in the folder haproxy owns. */
  get haproxyMasterSocket(): string {
    return join(dirname(this.#layout.haproxySocket), 'master.sock');
  }

  get #haproxyPidFile(): string {
    return join(dirname(this.#layout.haproxySocket), 'haproxy.pid');
  }

  /** PostgreSQL's own folders: its cluster, its socket, the port it was given. */
  get postgres(): { readonly dataDir: string; readonly socketDir: string; readonly portFile: string } {
    const base = join(this.#root, 'var/lib/postgresql');
    return { dataDir: join(base, 'data'), socketDir: join(base, 'run'), portFile: join(base, 'port') };
  }

  /** The log file of a daemon this sandbox runs. */
  logFile(service: ServiceName): string {
    return join(this.#root, 'var/log/sandbox', `${service}.log`);
  }

  /** Whether the sandbox runs this service now. */
  running(service: ServiceName): boolean {
    return this.#children.has(service);
  }

  validate(service: ServiceName): Promise<ServiceStep> | undefined {
    if (this.#notRun.has(service)) return undefined;
    switch (service) {
      case 'haproxy':
        return this.#check(['haproxy', '-c', '-f', this.#layout.haproxyConfig]);
      case 'nginx':
        // -e: nginx's own early log goes to the sandbox too, not to /var/log/nginx.
        return this.#check(['nginx', '-t', '-q', '-e', join(this.#layout.nginxLogDir, 'error.log'), '-c', this.#layout.nginxConfig]);
      case 'nfs':
        return this.#checkExports();
      case 'postgresql':
      case 'k3s':
      case 'nftables':
        return undefined;
    }
  }

  async reload(service: ServiceName): Promise<ServiceStep> {
    if (this.#notRun.has(service)) return ok(`sandbox: ${service} not run`);
    try {
      switch (service) {
        case 'haproxy':
          return await this.#haproxy();
        case 'nginx':
          return await this.#nginx();
        case 'postgresql':
          return await this.#postgresql();
        case 'nfs':
          return ok('sandbox: exports checked, not exported');
        case 'k3s':
        case 'nftables':
          return ok(`sandbox: ${service} not run`);
      }
    } catch (error) {
      return failed(`sandbox: start ${service}`, (error as Error).message);
    }
  }

  notices(services: readonly ServiceName[]): string[] {
    return services.flatMap((service) => {
      if (service === 'nfs') return ['nfs: exports file written and checked, not exported in sandbox'];
      if (service === 'k3s' && this.#kubernetesApi) return [`k3s: not run in sandbox; Kubernetes API: ${this.#kubernetesApi}`.slice(0, 200)];
      return this.#notRun.has(service) ? [`${service}: not run in sandbox`] : [];
    });
  }

  async resume(services: readonly ServiceName[]): Promise<string[]> {
    const failures: string[] = [];
    for (const service of services) {
      if (this.#children.has(service) || this.#notRun.has(service) || service === 'nfs') continue;
      const step = await this.reload(service);
      if (step.code !== 0) failures.push(`starting ${service} at start failed: ${excerpt(step.output)}`);
    }
    return failures;
  }

  /** Stops one daemon (tests stop haproxy to see the agent start it again). */
  async stopService(service: ServiceName): Promise<void> {
    const child = this.#children.get(service);
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill(STOP_SIGNAL[service] ?? 'SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }

  async stop(): Promise<void> {
    await Promise.all([...this.#children.keys()].map((service) => this.stopService(service)));
  }

  async #check(argv: readonly string[]): Promise<ServiceStep> {
    const result = await runToEnd(argv);
    return { command: argv.join(' '), ...result };
  }

  /** exportfs's syntax, checked line by line: a folder, then one or more `client(options)`. */
  async #checkExports(): Promise<ServiceStep> {
    const command = `sandbox: check ${this.#layout.nfsExportsFile}`;
    const text = await readFile(this.#layout.nfsExportsFile, 'utf8').catch((error: Error) => error);
    if (text instanceof Error) return failed(command, text.message);
    const bad = text
      .split('\n')
      .map((line, index) => ({ line: line.trim(), number: index + 1 }))
      .filter(({ line }) => line !== '' && !line.startsWith('#'))
      .filter(({ line }) => !/^\/\S*(\s+[^\s()]+\([a-z0-9_,=]*\))+$/.test(line));
    return bad.length === 0 ? ok(command) : failed(command, bad.map(({ line, number }) => `line ${number} is not "folder client(options)…": ${line}`).join('\n'));
  }

  /**
   * Starts `argv` as a child of the agent (same process group), its output in the service's
   * log, and waits until `ready` says so; a daemon that exits first fails with its log's end.
   */
  async #start(service: ServiceName, argv: readonly string[], ready: () => Promise<boolean>, options: { uid?: number; gid?: number; cwd?: string } = {}): Promise<ServiceStep> {
    const command = argv.join(' ');
    const log = this.logFile(service);
    await mkdir(dirname(log), { recursive: true });
    const fd = openSync(log, 'a');
    let child: ChildProcess;
    try {
      child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', fd, fd], ...(options.uid !== undefined ? { uid: options.uid, gid: options.gid } : {}), ...(options.cwd ? { cwd: options.cwd } : {}) });
    } finally {
      closeSync(fd);
    }
    const exited = new Promise<string>((resolve) => {
      child.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ENOENT' ? `${argv[0]} is not installed` : error.message));
      child.once('exit', (code, signal) => resolve(`exited (${signal ?? code})`));
    });
    child.once('exit', () => {
      if (this.#children.get(service) === child) this.#children.delete(service);
    });
    this.#children.set(service, child);
    let gone: string | undefined;
    void exited.then((why) => (gone = why));
    const deadline = Date.now() + this.#readyTimeoutMs;
    while (gone === undefined && Date.now() < deadline) {
      if (await ready().catch(() => false)) return ok(command);
      await sleep(50);
    }
    if (gone === undefined) {
      await this.stopService(service);
      gone = `did not answer within ${this.#readyTimeoutMs} ms`;
    }
    const tail = await this.#logTail(service);
    return failed(command, `${service} ${gone}${tail ? `:\n${tail}` : ''}`);
  }

  /** A daemon left running by an earlier agent on this root (its pid file names it) is stopped first: it holds the ports. */
  async #stopLeftover(pidFile: string, marker: string): Promise<void> {
    const pid = Number((await readIfExists(pidFile))?.toString('utf8').split('\n')[0]?.trim());
    if (!Number.isInteger(pid) || pid <= 1 || [...this.#children.values()].some((child) => child.pid === pid) || !(await runsWith(pid, marker))) return;
    process.kill(pid, 'SIGTERM');
    for (let i = 0; i < 200 && (await runsWith(pid, marker)); i++) await sleep(50);
  }

  async #haproxy(): Promise<ServiceStep> {
    const master = this.haproxyMasterSocket;
    const workers = async () => haproxyWorkers(await runtimeCommand(master, 'show proc', 2000));
    if (!this.#children.has('haproxy')) {
      await this.#stopLeftover(this.#haproxyPidFile, this.#layout.haproxyConfig);
      await mkdir(dirname(master), { recursive: true });
      return this.#start('haproxy', ['haproxy', '-W', '-S', master, '-p', this.#haproxyPidFile, '-f', this.#layout.haproxyConfig], async () => (await workers()).length > 0);
    }
    // A reload re-executes the master: its socket is gone for a moment, and the new worker is
    // ready once the master lists it. A config that cannot start (a port another VM holds) is
    // counted as a failed reload while the old worker serves on: said at once, with haproxy's words.
    const showProc = () => runtimeCommand(master, 'show proc', 2000).catch(() => '');
    const first = await showProc();
    const before = new Set(haproxyWorkers(first));
    const failedBefore = haproxyFailedReloads(first) ?? 0;
    const command = `haproxy master: reload (${master})`;
    await runtimeCommand(master, 'reload', 5000).catch(() => '');
    const deadline = Date.now() + this.#readyTimeoutMs;
    while (Date.now() < deadline) {
      const now = await showProc();
      if (haproxyWorkers(now).some((pid) => !before.has(pid))) return ok(command);
      if ((haproxyFailedReloads(now) ?? 0) > failedBefore) return failed(command, `haproxy could not load the new config; the old one serves on:\n${await this.#logTail('haproxy')}`);
      await sleep(50);
    }
    return failed(command, `haproxy started no new worker within ${this.#readyTimeoutMs} ms`);
  }

  /** The last lines of a daemon's log: what it said when it failed. */
  async #logTail(service: ServiceName): Promise<string> {
    return (await readFile(this.logFile(service), 'utf8').catch(() => '')).trim().split('\n').slice(-10).join('\n');
  }

  async #nginx(): Promise<ServiceStep> {
    const child = this.#children.get('nginx');
    if (child) {
      // What `nginx -s reload` sends; the master re-reads the validated file and replaces its workers.
      child.kill('SIGHUP');
      return ok('nginx master: SIGHUP (reload)');
    }
    const pidFile = join(this.#layout.nginxRunDir, 'nginx.pid');
    await this.#stopLeftover(pidFile, this.#layout.nginxConfig);
    const argv = ['nginx', '-e', join(this.#layout.nginxLogDir, 'error.log'), '-c', this.#layout.nginxConfig, '-g', 'daemon off;'];
    return this.#start('nginx', argv, async () => Number((await readIfExists(pidFile))?.toString('utf8').trim()) === this.#children.get('nginx')?.pid);
  }

  /** Starts the cluster (made on first use), then runs the datastore's init SQL in it, as psql on a VM does. */
  async #postgresql(): Promise<ServiceStep> {
    const { dataDir, socketDir, portFile } = this.postgres;
    const user = await postgresUser();
    if (!this.#children.has('postgresql')) {
      await this.#stopLeftover(join(dataDir, 'postmaster.pid'), dataDir);
      const made = await this.#initdb(user);
      if (made) return made;
      const savedPort = Number((await readIfExists(portFile))?.toString('utf8').trim());
      this.#postgresPort = Number.isInteger(savedPort) && savedPort > 0 ? savedPort : await freePort();
      await writeAtomically(portFile, `${this.#postgresPort}\n`, 0o644);
      const argv = [postgresProgram('postgres'), '-D', dataDir, '-k', socketDir, '-p', String(this.#postgresPort), '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off'];
      const started = await this.#start('postgresql', argv, async () => (await runToEnd(['psql', '-X', '-h', socketDir, '-p', String(this.#postgresPort), '-U', 'postgres', '-d', 'postgres', '-tAc', 'select 1'])).code === 0, { ...user, cwd: dataDir });
      if (started.code !== 0) return started;
    }
    const argv = ['psql', '-X', '-h', socketDir, '-p', String(this.#postgresPort), '-U', 'postgres', '-d', 'postgres', '-v', 'ON_ERROR_STOP=1', '-q', '-f', '-'];
    // The agent reads the root-only SQL and hands it over, as it does on a VM.
    const result = await runToEnd(argv, { input: await readFile(this.#layout.datastoreInitFile) });
    return { command: argv.join(' '), ...result };
  }

  /** Makes the cluster under the root when there is none; a failure comes back as the step. */
  async #initdb(user: { uid: number; gid: number } | undefined): Promise<ServiceStep | undefined> {
    const { dataDir, socketDir } = this.postgres;
    if (await readIfExists(join(dataDir, 'PG_VERSION'))) return undefined;
    const base = dirname(dataDir);
    await mkdir(base, { recursive: true, mode: 0o755 });
    for (const [folder, mode] of [[dataDir, 0o700], [socketDir, 0o755]] as const) {
      await mkdir(folder, { recursive: true, mode });
      if (user) await chown(folder, user.uid, user.gid);
    }
    // postgres must reach its folder through every folder above it: say which one stops it.
    if (user) {
      for (let folder = base; folder !== dirname(folder); folder = dirname(folder)) {
        const info = await stat(folder);
        if ((info.mode & 0o001) === 0 && info.uid !== user.uid) return failed('sandbox: initdb', `the postgres user cannot enter ${folder} (mode ${(info.mode & 0o777).toString(8)}): give the sandbox a root others may traverse`);
      }
    }
    const argv = [postgresProgram('initdb'), '-D', dataDir, '-U', 'postgres', '--auth-local=trust', '--auth-host=scram-sha-256', '--no-sync'];
    const result = await runToEnd(argv, { ...user, cwd: dataDir });
    return result.code === 0 ? undefined : { command: argv.join(' '), ...result };
  }
}
