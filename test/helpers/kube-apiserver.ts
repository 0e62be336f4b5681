/**
 * A real etcd + kube-apiserver for tests, envtest style (local/kube-apiserver.ts starts them),
 * plus what only tests use: building the binaries when the cache lacks them, a kubectl of the
 * server's version, an admin KubeConfig, and etcd compaction.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KubeConfig } from '@kubernetes/client-node';
import { isExecutable, type KubeApiServer as RunningKubeApiServer, kubeCacheDir, startKubeApiServer as startKube } from '../../local/kube-apiserver.ts';

export interface KubeApiServer extends RunningKubeApiServer {
  /** A fresh KubeConfig loaded from adminKubeconfigPath (callers may mutate it). */
  adminKubeconfig(): KubeConfig;
  /** A kubectl of the server's version, built with it (the machine's own may be much older). */
  readonly kubectl: string;
  /** Compacts etcd to its current revision: watches from older resourceVersions then get 410 Gone (the apiserver runs without watch cache). */
  compactEtcd(): Promise<void>;
}

// Not fixtures.ts's ROOT: that module pulls in the schema code, which this helper does not need.
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const LOG_TAIL_LINES = 30;

const tail = (text: string, lines: number): string => text.trimEnd().split('\n').slice(-lines).join('\n');

/**
 * The directory holding kube-apiserver and etcd. The cache path is computed as the build script
 * does (versions from the wrapper go.mod files) so a warm cache costs no subprocess; otherwise the
 * script runs (a cold build takes minutes: scripts/test.sh runs it before jest for that reason).
 */
export function kubeBinDir(): string {
  const cached = kubeCacheDir();
  if (cached !== undefined && ['kube-apiserver', 'etcd', 'kubectl'].every((b) => isExecutable(join(cached, b)))) return cached;
  let stdout: string;
  try {
    stdout = execFileSync(join(ROOT, 'scripts/build-kube-binaries.sh'), [], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024 });
  } catch (error) {
    const failed = error as Error & { stderr?: string };
    throw new Error(`scripts/build-kube-binaries.sh failed: ${failed.message}\n${tail(failed.stderr ?? '', LOG_TAIL_LINES)}`);
  }
  const dir = stdout.trimEnd().split('\n').at(-1) ?? '';
  if (!dir) throw new Error('scripts/build-kube-binaries.sh printed no directory');
  return dir;
}

export async function startKubeApiServer(options: { binDir?: string } = {}): Promise<KubeApiServer> {
  const binDir = options.binDir ?? kubeBinDir();
  if (!isExecutable(join(binDir, 'kubectl'))) throw new Error(`${join(binDir, 'kubectl')} missing or not executable (scripts/build-kube-binaries.sh builds it)`);
  const server = await startKube({ binDir });
  return {
    ...server,
    adminKubeconfig: () => {
      const kc = new KubeConfig();
      kc.loadFromFile(server.adminKubeconfigPath);
      return kc;
    },
    kubectl: join(binDir, 'kubectl'),
    compactEtcd: () => compactEtcd(server.etcdUrl),
  };
}

/** Through etcd's v3 JSON gateway: read the current revision from a range's header, compact to it. */
async function compactEtcd(etcdUrl: string): Promise<void> {
  const post = async (path: string, body: unknown): Promise<{ ok: boolean; json: Record<string, unknown> }> => {
    const response = await fetch(`${etcdUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
    return { ok: response.ok, json: (await response.json()) as Record<string, unknown> };
  };
  // Any key will do: the header carries the store's revision. "\0" is the smallest key; limit 1, keys only.
  const range = await post('/v3/kv/range', { key: Buffer.from('\0').toString('base64'), limit: 1, keys_only: true });
  const revision = (range.json.header as { revision?: string } | undefined)?.revision;
  if (!range.ok || revision === undefined) throw new Error(`etcd range failed: ${JSON.stringify(range.json)}`);
  const compaction = await post('/v3/kv/compaction', { revision, physical: true });
  // Compacting again at the same revision answers "required revision has been compacted": already done.
  if (!compaction.ok && !String(compaction.json.message ?? compaction.json.error).includes('has been compacted')) {
    throw new Error(`etcd compaction to ${revision} failed: ${JSON.stringify(compaction.json)}`);
  }
}
