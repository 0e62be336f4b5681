/**
 * Pipeline benchmark: the local control plane in this process, driven over real HTTP.
 *
 * - latency: single VM events sent one at a time to an idle control plane; from the 202 to
 *   the moment the reconciler has written the affected documents (and state and status);
 * - throughput: a mix of portal events (users, VMs) and signed endpoint webhooks across
 *   100 resource groups, sent by concurrent clients; events per second until all are applied;
 * - S3 PUTs per event kind, counted at the embedded S3 endpoint itself.
 *
 * `npm run bench` runs it after the desired-state benchmark. Flags: --rgs, --events,
 * --concurrency, --latency-samples.
 */
import { routePath } from '../shared/contract/routes.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { type LocalControlPlane, startLocalControlPlane } from '../local/control-plane.ts';
import { storeKeys } from '../shared/contract/store-layout.ts';
import { signedHeaders, sliceChangeBody } from './webhook.ts';

const { values } = parseArgs({
  options: {
    rgs: { type: 'string', default: '100' },
    events: { type: 'string', default: '3000' },
    concurrency: { type: 'string', default: '16' },
    'latency-samples': { type: 'string', default: '200' },
  },
});
const positive = (name: string, text: string | undefined) => {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) {
    process.stderr.write(`--${name} must be a positive whole number (got ${text})\n`);
    process.exit(2);
  }
  return value;
};
const settings = {
  rgs: positive('rgs', values.rgs),
  events: positive('events', values.events),
  concurrency: positive('concurrency', values.concurrency),
  latencySamples: positive('latency-samples', values['latency-samples']),
};

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
const fmt = (ms: number) => `${ms.toFixed(1)} ms`;
let clock = 0;
const occurredAt = () => new Date(Date.UTC(2026, 10, 24, 10, 0, 0) + clock++).toISOString();
let serial = 0;
const nextId = (kind: string) => `${kind}-${++serial}`;

const vm = (name: string, roles: string[], srv: string, extra: object = {}) => ({ name, roles, cpu: 4, memoryMiB: 8192, disks: [{ sizeGiB: 50, kind: 'ssd' }], srvAddresses: [srv], ...extra });

function provisioning(rg: string, index: number) {
  const net = `172.${16 + Math.floor(index / 200)}.${index % 200}`;
  const event = (type: string, payload: unknown) => ({ id: nextId('prov'), type, resourceGroup: rg, occurredAt: occurredAt(), payload });
  return [
    event('cluster.provisioned', { settings: {} }),
    event('vm.upserted', { vm: vm('gw', ['webgateway'], `${net}.1`, { publicAddresses: [`192.0.2.${(index % 250) + 1}`] }) }),
    event('vm.upserted', { vm: vm('srv', ['k3s-server'], `${net}.2`, { fqdn: `srv.${rg}.example.com` }) }),
    event('vm.upserted', { vm: vm('a1', ['k3s-agent'], `${net}.3`) }),
    event('vm.upserted', { vm: vm('a2', ['k3s-agent'], `${net}.4`) }),
    event('user.upserted', { user: { name: 'alice', permissions: ['sudo-srv'] } }),
    event('frontend.upserted', { name: 'web', frontend: { binds: ['127.0.0.1:8080'], lbServicePort: 7654, podPort: 8888 } }),
  ];
}

interface Harness {
  readonly cp: LocalControlPlane;
  readonly applied: Map<string, number>;
  waitApplied(ids: readonly string[], timeoutMs?: number): Promise<void>;
}

async function harness(dataDir: string): Promise<Harness> {
  const applied = new Map<string, number>();
  const waiters = new Set<() => void>();
  const cp = await startLocalControlPlane({
    dataDir,
    apiPort: 0,
    s3Port: 0,
    onReconciled: (_plan, events) => {
      const now = performance.now();
      for (const event of events) applied.set(event.id, now);
      for (const wake of waiters) wake();
    },
  });
  return {
    cp,
    applied,
    // Large provisioning runs (10,000 groups) take minutes: 10 ms an event, at least two minutes.
    waitApplied: (ids, timeoutMs = Math.max(120_000, ids.length * 10)) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (ids.every((id) => applied.has(id))) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve();
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out: ${ids.filter((id) => !applied.has(id)).length} of ${ids.length} events not applied`));
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
  };
}

async function post(cp: LocalControlPlane, path: string, body: string, headers: Record<string, string>): Promise<number> {
  const response = await fetch(`${cp.info.apiUrl}${path}`, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });
  await response.arrayBuffer();
  return response.status;
}

const postEvents = (cp: LocalControlPlane, events: unknown) => post(cp, routePath('postEvents', {}), JSON.stringify(events), { authorization: `Bearer ${cp.info.apiToken}` });

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(os.tmpdir(), 'ringmaster-bench-'));
  const h = await harness(dataDir);
  const { cp } = h;
  try {
    const rgs = Array.from({ length: settings.rgs }, (_, i) => `rg${String(i).padStart(3, '0')}`);
    const provision = rgs.flatMap((rg, i) => [provisioning(rg, i)]);
    for (const events of provision) if ((await postEvents(cp, events)) !== 202) throw new Error('provisioning refused');
    await h.waitApplied(provision.flat().map((e) => e.id));
    const keys = new Map<string, string>();
    for (const rg of rgs) keys.set(rg, JSON.parse((await cp.store.get(storeKeys.state(rg)))!.body).description.secrets.webhookKey);

    // Latency: one VM event at a time, idle control plane.
    const sent: number[] = [];
    const accepted: number[] = [];
    for (let i = 0; i < settings.latencySamples; i++) {
      const rg = rgs[i % rgs.length]!;
      const event = { id: nextId('lat'), type: 'vm.upserted', resourceGroup: rg, occurredAt: occurredAt(), payload: { vm: vm('a1', ['k3s-agent'], `172.${16 + Math.floor((i % rgs.length) / 200)}.${(i % rgs.length) % 200}.3`, { cpu: 4 + (i % 2) * 4 }) } };
      const t0 = performance.now();
      if ((await postEvents(cp, event)) !== 202) throw new Error('latency event refused');
      const t1 = performance.now();
      await h.waitApplied([event.id]);
      const written = h.applied.get(event.id)!;
      sent.push(written - t0);
      accepted.push(written - t1);
    }
    sent.sort((a, b) => a - b);
    accepted.sort((a, b) => a - b);

    // S3 PUTs per event kind, each alone on an idle group.
    const putsFor = async (send: () => Promise<string>) => {
      const before = cp.s3Requests.PUT ?? 0;
      const id = await send();
      await h.waitApplied([id]);
      await new Promise((r) => setTimeout(r, 20));
      return (cp.s3Requests.PUT ?? 0) - before;
    };
    const rg0 = rgs[0]!;
    const single = (type: string, payload: unknown) => async () => {
      const event = { id: nextId(type), type, resourceGroup: rg0, occurredAt: occurredAt(), payload };
      await postEvents(cp, event);
      return event.id;
    };
    let rv = 1000;
    const webhook = (rg: string, ips: string[]) => async () => {
      const body = sliceChangeBody({ service: 'web', sliceName: 'web-abc', port: 8888, resourceVersion: ++rv, addresses: ips });
      const signed = signedHeaders(keys.get(rg)!, body);
      const status = await post(cp, routePath('postClusterEndpoints', { rg }), body, signed.headers);
      if (status !== 202) throw new Error(`webhook refused: ${status}`);
      return signed.id;
    };
    const duplicateEvent = { id: nextId('dup'), type: 'user.upserted', resourceGroup: rg0, occurredAt: occurredAt(), payload: { user: { name: 'dora', permissions: ['sudo-srv'] } } };
    const puts = {
      'vm.upserted (agent resized: no document changes)': await putsFor(single('vm.upserted', { vm: vm('a2', ['k3s-agent'], '172.16.0.4', { cpu: 8 }) })),
      'user.upserted (server document changes)': await putsFor(single('user.upserted', { user: { name: 'bob', permissions: ['sudo-srv'] } })),
      'frontend.upserted (gateway and server documents)': await putsFor(single('frontend.upserted', { name: 'api', frontend: { binds: ['127.0.0.1:9090'], lbServicePort: 7655, podPort: 9999 } })),
      'endpoints.changed (gateway document)': await putsFor(webhook(rg0, ['10.42.1.10', '10.42.2.11'])),
      'vm.upserted for a new agent (its document + the gateway\'s backups)': await putsFor(single('vm.upserted', { vm: vm('a3', ['k3s-agent'], '172.16.0.5') })),
      'duplicate (same event again)': await (async () => {
        await postEvents(cp, duplicateEvent);
        await h.waitApplied([duplicateEvent.id]);
        const before = cp.s3Requests.PUT ?? 0;
        await postEvents(cp, duplicateEvent);
        await new Promise((r) => setTimeout(r, 300));
        return (cp.s3Requests.PUT ?? 0) - before;
      })(),
    };

    // Throughput: a mix across all groups from concurrent clients on another thread.
    const putsBefore = cp.s3Requests.PUT ?? 0;
    const started = performance.now();
    const load = new Worker(new URL('./load-generator.ts', import.meta.url), {
      workerData: {
        apiUrl: cp.info.apiUrl,
        token: cp.info.apiToken,
        keys: Object.fromEntries(keys),
        rgs,
        events: settings.events,
        concurrency: settings.concurrency,
        firstResourceVersion: rv + 1,
        vmAddress: rgs.map((_, i) => `172.${16 + Math.floor(i / 200)}.${i % 200}.4`),
      },
    });
    const { ids, acceptedMs } = await new Promise<{ ids: string[]; acceptedMs: number }>((resolve, reject) => {
      load.once('message', resolve);
      load.once('error', reject);
    });
    await load.terminate();
    await h.waitApplied(ids);
    const finished = performance.now();
    const seconds = (finished - started) / 1000;
    const putsDuring = (cp.s3Requests.PUT ?? 0) - putsBefore;
    const allAccepted = started + acceptedMs;

    const lines = [
      'Pipeline benchmark (local control plane in-process, real HTTP, embedded S3, node:sqlite queue)',
      `node ${process.version} (${process.platform}/${process.arch}), CPU ${os.cpus()[0]?.model ?? '?'} x${os.cpus().length}; settings ${JSON.stringify(settings)}`,
      '',
      `Latency of a single VM event (${settings.latencySamples} samples, one at a time):`,
      `  202 -> documents, state and status written: p50 ${fmt(quantile(accepted, 0.5))}, p90 ${fmt(quantile(accepted, 0.9))}, p99 ${fmt(quantile(accepted, 0.99))}, max ${fmt(accepted.at(-1)!)}`,
      `  request sent -> written:                   p50 ${fmt(quantile(sent, 0.5))}, p99 ${fmt(quantile(sent, 0.99))}`,
      `  goal p99 <= 300 ms: ${quantile(accepted, 0.99) <= 300 ? 'met' : 'NOT met'}`,
      '',
      `Throughput: ${settings.events} events (users, VMs, signed endpoint webhooks) across ${settings.rgs} groups, ${settings.concurrency} concurrent clients on a separate thread:`,
      `  all accepted after ${((allAccepted - started) / 1000).toFixed(2)} s, all applied after ${seconds.toFixed(2)} s: ${(settings.events / seconds).toFixed(0)} events/s sustained`,
      `  S3 PUTs: ${putsDuring} (${(putsDuring / settings.events).toFixed(2)} per event; one reconcile batches a group's waiting events)`,
      `  goal >= 500 events/s: ${settings.events / seconds >= 500 ? 'met' : 'NOT met'}`,
      '',
      'S3 PUTs per event kind (one event alone; documents + state + status):',
      ...Object.entries(puts).map(([kind, count]) => `  ${String(count).padStart(3)}  ${kind}`),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    process.stdout.write(
      `BENCH_JSON ${JSON.stringify({ settings, latency: { p50: quantile(accepted, 0.5), p90: quantile(accepted, 0.9), p99: quantile(accepted, 0.99) }, throughput: { eventsPerSecond: settings.events / seconds, putsPerEvent: putsDuring / settings.events }, puts })}\n`,
    );
  } finally {
    await cp.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
