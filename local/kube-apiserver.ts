/**
 * A real etcd + kube-apiserver on this machine, envtest style (the TypeScript port of
 * test/kube/smoke.sh): what the tests run their Kubernetes code against, and what `ringmaster
 * demo` runs in place of the k3s server's API (k3s itself cannot run here). Both listen on free
 * 127.0.0.1 ports with a throwaway CA, an admin client certificate in group system:masters and a
 * service-account key pair, all made by the openssl CLI in a temp dir that stop() removes. The
 * binaries are the ones scripts/build-kube-binaries.sh builds and caches (a cold build takes
 * minutes: nothing here builds them). Process output goes to etcd.log and kube-apiserver.log in
 * that dir; a failed start quotes their last lines in the thrown error.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { accessSync, closeSync, constants, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { stringify } from 'yaml';

export interface KubeApiServer {
  /** https://127.0.0.1:<port> */
  readonly url: string;
  /** Path and PEM of the CA that signed the apiserver's self-made serving certificate. */
  readonly caFile: string;
  readonly caData: string;
  /** Kubeconfig with the cluster (`clusterName`), user 'admin' (client certificate in system:masters, embedded), current context set. */
  readonly adminKubeconfigPath: string;
  /** http://127.0.0.1:<port>, plain HTTP like envtest's etcd. */
  readonly etcdUrl: string;
  /** The temp work dir (pki, etcd data, certs, logs); removed by stop(). */
  readonly dir: string;
  /** Process start to healthy (etcd /health) and to ready (apiserver /readyz = ok). */
  readonly startupMs: { readonly etcd: number; readonly apiserver: number };
  /** The pids of etcd and kube-apiserver (while they run). */
  readonly pids: readonly number[];
  /** SIGTERM both processes (apiserver first), SIGKILL after 5 s, remove dir. Idempotent. */
  stop(): Promise<void>;
}

const execFileAsync = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));

const ETCD_TIMEOUT_MS = 30_000;
const APISERVER_TIMEOUT_MS = 120_000;
const STOP_GRACE_MS = 5_000;
const LOG_TAIL_LINES = 30;

/**
 * Where scripts/build-kube-binaries.sh caches kube-apiserver, etcd and kubectl, keyed by the
 * versions in the wrapper go.mod files (computed as the script does: no subprocess), whether
 * or not they are there yet.
 */
export function kubeCacheDir(): string | undefined {
  const version = (goMod: string, module: string, prefix: string): string | undefined => {
    const path = join(ROOT, goMod);
    if (!existsSync(path)) return undefined;
    for (const line of readFileSync(path, 'utf8').split('\n')) {
      const [name, v] = line.trim().split(/\s+/);
      if (name === module && v?.startsWith(prefix)) return v;
    }
    return undefined;
  };
  const k8s = version('test/kube/apiserver/go.mod', 'k8s.io/kubernetes', 'v1.');
  const etcd = version('test/kube/etcd/go.mod', 'go.etcd.io/etcd/server/v3', 'v3.');
  if (!k8s || !etcd) return undefined;
  const cache = process.env.RINGMASTER_KUBE_CACHE || join(process.env.HOME ?? '', '.cache/ringmaster/kube');
  return join(cache, `${k8s}-${etcd}`);
}

/** The cached kube-apiserver and etcd's folder when both are there (the tests built them), else undefined: nothing is built here. */
export function cachedKubeBinDir(): string | undefined {
  const dir = kubeCacheDir();
  return dir !== undefined && ['kube-apiserver', 'etcd'].every((binary) => isExecutable(join(dir, binary))) ? dir : undefined;
}

export function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

// Pids this module started and has not seen exit yet, and work dirs not yet removed. Under plain
// node the 'exit' handler below SIGKILLs those pids and removes those dirs. Under jest it never
// fires: jest gives each test file a copy of `process` whose events the real process never emits
// (and hides the real one), so the children are also started with a parent-death signal (see
// spawnLogged) and unref'd so they cannot keep jest alive; their dir then stays behind in tmpdir.
const livePids = new Set<number>();
const liveDirs = new Set<string>();
let exitHandlerInstalled = false;
function installExitHandler(): void {
  if (exitHandlerInstalled) return;
  exitHandlerInstalled = true;
  process.on('exit', () => {
    for (const pid of livePids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
  });
}

// util-linux setpriv execs the program with PR_SET_PDEATHSIG, so the kernel SIGKILLs it when the
// test process dies in any way (even SIGKILL of a jest worker); the pid stays the program's own.
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find(isExecutable);

interface Logged {
  readonly child: ChildProcess;
  readonly log: string;
  /** Set when the process could not be started or has exited. */
  exited(): string | undefined;
}

function spawnLogged(program: string, args: readonly string[], log: string): Logged {
  const fd = openSync(log, 'a');
  const [command, argv] = SETPRIV ? [SETPRIV, ['--pdeathsig', 'SIGKILL', '--', program, ...args]] : [program, [...args]];
  let exit: string | undefined;
  let child: ChildProcess;
  try {
    child = spawn(command, argv, { stdio: ['ignore', fd, fd] });
  } finally {
    closeSync(fd); // the child has its own copy
  }
  child.on('error', (error) => (exit ??= `could not start: ${error.message}`));
  child.on('exit', (code, signal) => {
    exit ??= `exited with ${signal ?? code}`;
    if (child.pid !== undefined) livePids.delete(child.pid);
  });
  if (child.pid !== undefined) livePids.add(child.pid);
  child.unref();
  return { child, log, exited: () => exit };
}

async function terminate(logged: Logged): Promise<void> {
  const { child } = logged;
  if (child.pid === undefined || logged.exited() !== undefined) return;
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.ref(); // spawnLogged unref'd it; now the event loop must stay up until it is gone
  child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const graceful = await Promise.race([gone.then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), STOP_GRACE_MS)))]);
  clearTimeout(timer);
  if (!graceful) {
    child.kill('SIGKILL');
    await gone;
  }
}

function tail(text: string, lines: number): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

function logTail(path: string): string {
  try {
    return tail(readFileSync(path, 'utf8'), LOG_TAIL_LINES);
  } catch {
    return '(no log)';
  }
}

/** Polls probe until it answers true; throws with the log's tail when the process exits or time runs out. */
async function waitUntil(what: string, logged: Logged, timeoutMs: number, probe: () => Promise<boolean>): Promise<number> {
  const start = Date.now();
  let lastError = '';
  for (;;) {
    const exited = logged.exited();
    if (exited !== undefined) throw new Error(`${what} ${exited}; last lines of ${logged.log}:\n${logTail(logged.log)}`);
    try {
      if (await probe()) return Date.now() - start;
    } catch (error) {
      lastError = (error as Error).message;
    }
    if (Date.now() - start > timeoutMs) {
      throw new Error(`${what} not ready after ${timeoutMs} ms${lastError ? ` (last error: ${lastError})` : ''}; last lines of ${logged.log}:\n${logTail(logged.log)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function openssl(args: readonly string[]): Promise<void> {
  try {
    await execFileAsync('openssl', [...args]);
  } catch (error) {
    const failed = error as Error & { stderr?: string };
    throw new Error(`openssl ${args[0]} failed: ${failed.message}\n${failed.stderr ?? ''}`);
  }
}

/** Throwaway PKI as in smoke.sh: a CA, an admin client cert it signs (O=system:masters), a service-account key pair. */
async function makePki(pki: string): Promise<void> {
  await openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '1', '-subj', '/CN=ringmaster-envtest-ca', '-keyout', `${pki}/ca.key`, '-out', `${pki}/ca.crt`]);
  writeFileSync(`${pki}/client.ext`, 'keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n');
  // The admin CSR and the service-account key do not depend on each other: make them concurrently.
  await Promise.all([
    (async () => {
      await openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-subj', '/O=system:masters/CN=ringmaster-admin', '-keyout', `${pki}/admin.key`, '-out', `${pki}/admin.csr`]);
      await openssl(['x509', '-req', '-in', `${pki}/admin.csr`, '-CA', `${pki}/ca.crt`, '-CAkey', `${pki}/ca.key`, '-CAcreateserial', '-days', '1', '-sha256', '-extfile', `${pki}/client.ext`, '-out', `${pki}/admin.crt`]);
    })(),
    (async () => {
      await openssl(['genrsa', '-out', `${pki}/sa.key`, '2048']);
      await openssl(['rsa', '-in', `${pki}/sa.key`, '-pubout', '-out', `${pki}/sa.pub`]);
    })(),
  ]);
}

/** A TCP port nothing listens on now, on loopback. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Distinct free ports: freePort releases each port before returning, so two calls may otherwise agree. */
async function distinctFreePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

function httpsGet(url: string, tls: { ca: string; cert: string; key: string }): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    // agent: false so no keep-alive socket outlives the probe.
    const req = request(url, { ...tls, agent: false, timeout: 5_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g;

export interface KubeApiServerOptions {
  /** The folder holding kube-apiserver and etcd. */
  readonly binDir: string;
  /** The admin kubeconfig's cluster (and context) name (default `envtest`). */
  readonly clusterName?: string;
}

export async function startKubeApiServer(options: KubeApiServerOptions): Promise<KubeApiServer> {
  const { binDir } = options;
  const clusterName = options.clusterName ?? 'envtest';
  for (const b of ['kube-apiserver', 'etcd']) {
    if (!isExecutable(join(binDir, b))) throw new Error(`${join(binDir, b)} missing or not executable (scripts/build-kube-binaries.sh builds it)`);
  }

  installExitHandler();
  const dir = mkdtempSync(join(tmpdir(), 'ringmaster-kube-'));
  liveDirs.add(dir);
  const processes: Logged[] = [];
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      // The apiserver first: etcd going away under it would only produce noise in its log.
      for (const p of [...processes].reverse()) await terminate(p);
      rmSync(dir, { recursive: true, force: true });
      liveDirs.delete(dir);
    })());

  try {
    const [etcdClientPort, etcdPeerPort, apiserverPort] = (await distinctFreePorts(3)) as [number, number, number];
    const pki = join(dir, 'pki');
    const certDir = join(dir, 'apiserver-certs');
    mkdirSync(pki);
    mkdirSync(certDir);
    await makePki(pki);

    const etcdUrl = `http://127.0.0.1:${etcdClientPort}`;
    const etcd = spawnLogged(
      join(binDir, 'etcd'),
      [
        `--data-dir=${join(dir, 'etcd')}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
        // Test data is thrown away: durability only costs time.
        '--unsafe-no-fsync',
      ],
      join(dir, 'etcd.log'),
    );
    processes.push(etcd);
    const etcdMs = await waitUntil('etcd', etcd, ETCD_TIMEOUT_MS, async () => {
      const response = await fetch(`${etcdUrl}/health`, { signal: AbortSignal.timeout(5_000) });
      return response.ok && ((await response.json()) as { health?: string }).health === 'true';
    });

    // Flags as controller-runtime's envtest passes them (and smoke.sh).
    const url = `https://127.0.0.1:${apiserverPort}`;
    const apiserver = spawnLogged(
      join(binDir, 'kube-apiserver'),
      [
        // No --advertise-address: it defaults to the host's default-route address (only written into
        // the 'kubernetes' Service endpoints), and 1.37's endpoint reconciler refuses 127.0.0.1 ("may
        // not be in the loopback range") unless --endpoint-reconciler-type=none drops those endpoints.
        '--bind-address=127.0.0.1',
        `--secure-port=${apiserverPort}`,
        `--etcd-servers=${etcdUrl}`,
        `--cert-dir=${certDir}`,
        '--service-cluster-ip-range=10.0.0.0/24',
        '--allow-privileged=true',
        '--authorization-mode=RBAC',
        '--disable-admission-plugins=ServiceAccount',
        `--client-ca-file=${pki}/ca.crt`,
        `--service-account-issuer=${url}/`,
        `--service-account-key-file=${pki}/sa.pub`,
        `--service-account-signing-key-file=${pki}/sa.key`,
        // Not in envtest or smoke.sh: watches are served from etcd rather than the apiserver's watch
        // cache, whose in-memory history keeps answering old resourceVersions after etcd compaction
        // (until the events age out of it), so compactEtcd() would never lead to 410 Gone.
        '--watch-cache=false',
      ],
      join(dir, 'kube-apiserver.log'),
    );
    processes.push(apiserver);

    // --cert-dir makes the apiserver write a self-signed serving cert: apiserver.crt holds the
    // certificate followed by the CA that signed it. Verify against that CA rather than skipping TLS checks.
    const servingCerts = join(certDir, 'apiserver.crt');
    const cert = readFileSync(`${pki}/admin.crt`, 'utf8');
    const key = readFileSync(`${pki}/admin.key`, 'utf8');
    let caData = '';
    const apiserverMs = await waitUntil('kube-apiserver', apiserver, APISERVER_TIMEOUT_MS, async () => {
      if (!existsSync(servingCerts)) return false;
      // It may be caught half-written: an incomplete bundle just fails this round.
      const blocks = readFileSync(servingCerts, 'utf8').match(PEM_CERTIFICATE) ?? [];
      if (blocks.length < 2) return false;
      caData = blocks.at(-1)!;
      const { status, body } = await httpsGet(`${url}/readyz`, { ca: caData, cert, key });
      return status === 200 && body === 'ok';
    });

    const caFile = join(dir, 'serving-ca.crt');
    writeFileSync(caFile, caData);
    const adminKubeconfigPath = join(dir, 'admin.kubeconfig');
    const b64 = (text: string): string => Buffer.from(text).toString('base64');
    writeFileSync(
      adminKubeconfigPath,
      stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: clusterName, cluster: { server: url, 'certificate-authority-data': b64(caData) } }],
        users: [{ name: 'admin', user: { 'client-certificate-data': b64(cert), 'client-key-data': b64(key) } }],
        contexts: [{ name: clusterName, context: { cluster: clusterName, user: 'admin' } }],
        'current-context': clusterName,
      }),
      { mode: 0o600 },
    );

    return {
      url,
      caFile,
      caData,
      adminKubeconfigPath,
      etcdUrl,
      dir,
      startupMs: { etcd: etcdMs, apiserver: apiserverMs },
      pids: processes.flatMap((p) => (p.child.pid === undefined ? [] : [p.child.pid])),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

