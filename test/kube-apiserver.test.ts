/** The envtest-style helper really gives a working kube-apiserver: client-node, kubectl, service-account tokens, etcd compaction. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { CoreV1Api, Watch } from '@kubernetes/client-node';
import { type KubeApiServer, startKubeApiServer } from './helpers/kube-apiserver.ts';

const execFileAsync = promisify(execFile);
let server: KubeApiServer;
let core: CoreV1Api;

beforeAll(async () => {
  server = await startKubeApiServer();
  core = server.adminKubeconfig().makeApiClient(CoreV1Api);
  // The one line of output: startup figures, wanted when judging how many suites can afford one.
  console.log(`kube-apiserver helper: etcd healthy in ${server.startupMs.etcd} ms, apiserver ready in ${server.startupMs.apiserver} ms`);
}, 180_000);

afterAll(async () => {
  await server?.stop();
});

async function kubectl(...args: string[]): Promise<string> {
  const { stdout } = await execFileAsync(server.kubectl, args, { encoding: 'utf8' });
  return stdout;
}

test('client-node lists the built-in namespaces with the admin kubeconfig', async () => {
  const names = (await core.listNamespace()).items.map((ns) => ns.metadata?.name);
  expect(names).toEqual(expect.arrayContaining(['default', 'kube-system']));
});

test('kubectl works with the admin kubeconfig file', async () => {
  expect((await kubectl('--kubeconfig', server.adminKubeconfigPath, 'get', 'namespaces', '-o', 'name')).split('\n')).toContain('namespace/default');
});

test('a TokenRequest token authenticates as its service account', async () => {
  await core.createNamespacedServiceAccount({ namespace: 'default', body: { metadata: { name: 'probe' } } });
  const request = await core.createNamespacedServiceAccountToken({ name: 'probe', namespace: 'default', body: { spec: { audiences: [], expirationSeconds: 600 } } });
  const token = request.status?.token;
  expect(token).toBeTruthy();
  // Not the kubeconfig: only the token, so the identity can come from nothing else.
  const whoami = await kubectl('--server', server.url, '--certificate-authority', server.caFile, '--token', token!, 'auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}');
  expect(whoami).toBe('system:serviceaccount:default:probe');
});

type WatchOutcome = { type: string; code?: number } | { error: string };

/** What a raw watch of the default namespace's ConfigMaps from resourceVersion yields first. */
function firstWatchOutcome(resourceVersion: string): Promise<WatchOutcome> {
  return new Promise<WatchOutcome>((resolve, reject) => {
    let settled = false;
    let controller: AbortController | undefined;
    const settle = (value: WatchOutcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      controller?.abort();
      resolve(value);
    };
    const timer = setTimeout(() => settle({ error: 'nothing within 10 s' }), 10_000);
    new Watch(server.adminKubeconfig())
      .watch(
        '/api/v1/namespaces/default/configmaps',
        { resourceVersion },
        (type: string, object: unknown) => settle({ type, code: (object as { code?: number } | undefined)?.code }),
        (error: unknown) => settle({ error: error instanceof Error ? error.message : String(error) }),
      )
      .then((c) => {
        controller = c;
        if (settled) c.abort();
      }, reject);
  });
}

test('after compactEtcd a watch from an older resourceVersion is refused with 410 Gone', async () => {
  const created = await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'compacted' }, data: { n: '0' } } });
  const oldVersion = created.metadata!.resourceVersion!;
  for (let n = 1; n <= 3; n++) {
    await core.replaceNamespacedConfigMap({ name: 'compacted', namespace: 'default', body: { metadata: { name: 'compacted' }, data: { n: String(n) } } });
  }
  // Control: before compaction the same watch replays the updates, so the 410 below is compaction's doing.
  expect(await firstWatchOutcome(oldVersion)).toEqual({ type: 'MODIFIED', code: undefined });

  await server.compactEtcd();
  await server.compactEtcd(); // idempotent: nothing new to compact is not an error

  const outcome = await firstWatchOutcome(oldVersion);
  if ('type' in outcome) expect(outcome).toEqual({ type: 'ERROR', code: 410 });
  else expect(outcome.error).toMatch(/410|too old|Gone|compacted/i);
});
