/**
 * Kubernetes side benchmark: a real kube-apiserver (envtest style), the server agent's
 * endpoint forwarder with its default batching, and the local control plane (in this process)
 * receiving the signed webhook.
 *
 * - latency: for --changes single EndpointSlice updates at random moments, from the informer
 *   seeing the change to the webhook answered 202, and from the API write acknowledged to it;
 * - burst: --burst changes over 10 slices written by 10 clients at once: webhook calls, and
 *   the time until the control plane's state holds the final version of every slice;
 * - the test binaries: the cached build check, and etcd / kube-apiserver start-up times.
 *
 * `npm run bench` runs it after the agent benchmark.
 */
import { routeUrl } from '../shared/contract/routes.ts';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { DiscoveryV1Api, type V1EndpointSlice } from '@kubernetes/client-node';
import { parse as parseYaml } from 'yaml';
import { onDisk } from '../agent/files.ts';
import type { WebhookBatch } from '../agent/kubernetes/endpoint-forwarder.ts';
import { ServerTasks } from '../agent/kubernetes/server-tasks.ts';
import { startLocalControlPlane } from '../local/control-plane.ts';
import { storeKeys } from '../shared/contract/store-layout.ts';
import { ROOT } from '../test/helpers/fixtures.ts';
import { waitFor } from '../test/helpers/control-plane-process.ts';
import { startKubeApiServer } from '../test/helpers/kube-apiserver.ts';

const { values } = parseArgs({ options: { changes: { type: 'string', default: '60' }, burst: { type: 'string', default: '1000' } } });
const settings = { changes: Number(values.changes), burst: Number(values.burst) };
for (const [name, value] of Object.entries(settings)) {
  if (!Number.isInteger(value) || value < 10) {
    process.stderr.write(`--${name} must be a whole number of at least 10\n`);
    process.exit(2);
  }
}

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ms = (value: number) => `${value.toFixed(0)} ms`;

const slice = (name: string, addresses: string[]): V1EndpointSlice => ({
  metadata: { name, namespace: 'default', labels: { 'kubernetes.io/service-name': 'myapp' } },
  addressType: 'IPv4',
  ports: [{ name: 'http', port: 8888, protocol: 'TCP' }],
  endpoints: addresses.map((address) => ({ addresses: [address], conditions: { ready: true } })),
});

async function main(): Promise<void> {
  const work = mkdtempSync(join(os.tmpdir(), 'ringmaster-kube-bench-'));
  const started = Date.now();
  execFileSync(`${ROOT}scripts/build-kube-binaries.sh`, { stdio: ['ignore', 'ignore', 'inherit'] });
  const cachedBuildMs = Date.now() - started;
  const [kube, cp] = await Promise.all([startKubeApiServer(), startLocalControlPlane({ dataDir: join(work, 'control-plane'), apiPort: 0, s3Port: 0 })]);
  const sent: Array<{ batch: WebhookBatch; sentAt: number }> = [];
  let tasks: ServerTasks | undefined;
  try {
    const events = parseYaml(readFileSync(`${ROOT}examples/events/reference-architecture.yaml`, 'utf8'));
    const response = await fetch(routeUrl(cp.info.apiUrl, 'postEvents', {}), { method: 'POST', headers: { authorization: `Bearer ${cp.info.apiToken}`, 'content-type': 'application/json' }, body: JSON.stringify(events) });
    if (response.status !== 202) throw new Error(`events refused: ${response.status} ${await response.text()}`);
    const document = await waitFor('the server document', async () => {
      const object = await cp.store.get(storeKeys.desired('demo', 'kube01'));
      return object ? JSON.parse(object.body) : undefined;
    });
    const root = join(work, 'root');
    for (const file of document.files as Array<{ path: string; content: string }>) {
      if (!file.path.endsWith('webhook-key')) continue;
      mkdirSync(dirname(onDisk(root, file.path)), { recursive: true });
      writeFileSync(onDisk(root, file.path), file.content, { mode: 0o600 });
    }
    // The forwarder's defaults: 100 ms for more changes, at most 1 s after the first.
    tasks = new ServerTasks({ kubeconfigPath: kube.adminKubeconfigPath, onDisk: (path) => onDisk(root, path), resourceGroup: 'demo', onWebhookSent: (batch, sentAt) => sent.push({ batch, sentAt }) });
    const discovery = kube.adminKubeconfig().makeApiClient(DiscoveryV1Api);
    await discovery.createNamespacedEndpointSlice({ namespace: 'default', body: slice('myapp-latency', ['10.42.0.1']) });
    await tasks.update(document.kubernetes);
    await waitFor('the first resync', async () => (sent.length > 0 ? true : undefined));
    await sleep(500);

    // Latency: single changes at random moments (200–600 ms apart), each its own batch.
    const informerToWebhook: number[] = [];
    const writeToWebhook: number[] = [];
    for (let n = 1; n <= settings.changes; n++) {
      await sleep(200 + Math.random() * 400);
      const before = sent.length;
      const current = await discovery.readNamespacedEndpointSlice({ name: 'myapp-latency', namespace: 'default' });
      const writtenAt = Date.now();
      await discovery.replaceNamespacedEndpointSlice({ name: 'myapp-latency', namespace: 'default', body: { ...current, endpoints: [{ addresses: [`10.42.${Math.floor(n / 250)}.${(n % 250) + 1}`], conditions: { ready: true } }] } });
      const call = await waitFor('the webhook call', async () => (sent.length > before ? sent[sent.length - 1] : undefined), 30_000);
      informerToWebhook.push(call.sentAt - call.batch.oldestChangeAt);
      writeToWebhook.push(call.sentAt - writtenAt);
    }

    // Burst: 10 slices, 10 writers, `burst` changes in all.
    const names = Array.from({ length: 10 }, (_, i) => `myapp-burst-${i}`);
    for (const name of names) await discovery.createNamespacedEndpointSlice({ namespace: 'default', body: slice(name, ['10.43.0.1']) });
    await sleep(1500);
    const perSlice = Math.floor(settings.burst / names.length);
    const callsBefore = sent.length;
    const burstStart = Date.now();
    await Promise.all(
      names.map(async (name, i) => {
        for (let n = 1; n <= perSlice; n++) {
          const current = await discovery.readNamespacedEndpointSlice({ name, namespace: 'default' });
          await discovery.replaceNamespacedEndpointSlice({ name, namespace: 'default', body: { ...current, endpoints: [{ addresses: [`10.44.${i}.${(n % 250) + 1}`], conditions: { ready: true } }] } });
        }
      }),
    );
    const writesDone = Date.now();
    const expected = names.map((_, i) => `10.44.${i}.${(perSlice % 250) + 1}`).sort().join(',');
    await waitFor('the final state of the burst', async () => {
      const state = JSON.parse((await cp.store.get(storeKeys.state('demo')))!.body);
      const service = state.description.endpoints.find((e: { service: string }) => e.service === 'myapp');
      const addresses = (service?.slices ?? []).filter((s: { metadata: { name: string } }) => s.metadata.name.startsWith('myapp-burst-')).map((s: { endpoints: Array<{ addresses: string[] }> }) => s.endpoints[0]?.addresses[0]).sort().join(',');
      return addresses === expected ? true : undefined;
    }, 120_000);
    const settled = Date.now();
    const calls = sent.length - callsBefore;

    const a = [...informerToWebhook].sort((x, y) => x - y);
    const w = [...writeToWebhook].sort((x, y) => x - y);
    const cpu = os.cpus();
    console.log('Kubernetes side: endpoint forwarder → signed webhook → control plane (real kube-apiserver v1.37.2, etcd v3.7.3)');
    console.log(`  settings: ${settings.changes} single changes 200–600 ms apart; burst of ${perSlice * names.length} changes over ${names.length} slices by ${names.length} writers; batching 100 ms, at most 1 s; ${cpu.length} × ${cpu[0]?.model ?? 'cpu'}, Node ${process.version}`);
    console.log(`  informer event → webhook 202:      p50 ${ms(quantile(a, 0.5))}, p99 ${ms(quantile(a, 0.99))}, max ${ms(a[a.length - 1]!)}`);
    console.log(`  API write acknowledged → webhook 202: p50 ${ms(quantile(w, 0.5))}, p99 ${ms(quantile(w, 0.99))}`);
    console.log(`  burst: ${perSlice * names.length} changes written in ${ms(writesDone - burstStart)} → ${calls} webhook calls (${((calls * 1000) / (perSlice * names.length)).toFixed(1)} per 1,000 changes); control plane state final ${ms(settled - writesDone)} after the last write`);
    console.log(`  test binaries: cached build check ${ms(cachedBuildMs)}; etcd healthy in ${ms(kube.startupMs.etcd)}, kube-apiserver ready in ${ms(kube.startupMs.apiserver)}`);
  } finally {
    await tasks?.stop();
    await Promise.all([kube.stop(), cp.stop()]);
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench/kubernetes failed: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
