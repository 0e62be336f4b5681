/**
 * Agent benchmark, end to end: the local control plane (in this process), the agent with its
 * own credentials, and a real haproxy (Debian's) on 127.0.0.1 with pods as small HTTP servers.
 *
 * - propagation: from a signed endpoint webhook answered 202 (and from the document written)
 *   to haproxy serving the new backend set, the agent polling at the document's interval
 *   (1 s, jittered), over --changes changes arriving at random moments;
 * - push: the same with the agent nudged when its document is written (polling slowed to 60 s),
 *   over --push-changes changes;
 * - the push channel failing, over MQTT with Debian's mosquitto: --lost-nudges changes whose
 *   nudges never come while the agent is subscribed (served by the safety poll, --safety-seconds,
 *   default 60), then the broker stopped (how soon the agent notices, a change served by its 1 s
 *   poll) and started again (how soon it subscribes by itself, a nudged change);
 * - --load-changes backend changes under a bounded load loop: failed requests and reloads;
 * - --outages (default 5,30,120 seconds): the control plane and its store stopped that long,
 *   started again on the same ports, then one endpoint change: how soon haproxy serves it after
 *   the store is back, with failed requests and reloads under load meanwhile;
 * - the agent process (`ringmaster agent`) idle-polling: CPU and resident memory, run from the
 *   sources and as the bundle shipped to VMs (`npm run build:agent`).
 *
 * `npm run bench` runs it last. Needs haproxy, socat and mosquitto (the test setup installs them).
 */
import { trustedRoot } from '../shared/contract/document-signing.ts';
import { routeUrl } from '../shared/contract/routes.ts';
import { S3Client } from '@aws-sdk/client-s3';
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import os from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Agent } from '../agent/agent.ts';
import { listenForMqttNudges } from '../agent/mqtt-nudge-listener.ts';
import { listenForNudges } from '../agent/nudge-listener.ts';
import { buildAgent } from '../scripts/build-agent.ts';
import { runtimeCommand, serversState } from '../agent/haproxy-runtime.ts';
import { type LocalOptions, startLocalControlPlane } from '../local/control-plane.ts';
import { agentCredentials } from '../shared/agent-identity.ts';
import { loadSettledState } from '../functions/shared/state-store.ts';
import type { RgState } from '../shared/state/rg-state.ts';
import { startMosquitto } from '../test/helpers/mosquitto.ts';
import { freePort } from '../test/helpers/servers.ts';
import { vmInFolder } from '../test/helpers/vm-in-a-folder.ts';
import { signedHeaders, sliceChangeBody } from './webhook.ts';

const { values } = parseArgs({
  options: {
    changes: { type: 'string', default: '60' },
    'push-changes': { type: 'string', default: '100' },
    'load-changes': { type: 'string', default: '100' },
    'idle-seconds': { type: 'string', default: '20' },
    outages: { type: 'string', default: '5,30,120' },
    'lost-nudges': { type: 'string', default: '3' },
    'safety-seconds': { type: 'string', default: '60' },
  },
});
const settings = {
  changes: Number(values.changes),
  pushChanges: Number(values['push-changes']),
  loadChanges: Number(values['load-changes']),
  idleSeconds: Number(values['idle-seconds']),
  lostNudges: Number(values['lost-nudges']),
  safetySeconds: Number(values['safety-seconds']),
};
for (const [name, value] of Object.entries(settings)) {
  if (!Number.isInteger(value) || value < 1) {
    process.stderr.write(`--${name} must be a positive whole number\n`);
    process.exit(2);
  }
}
/** Seconds the control plane (and with it the store) is away, one run each. */
const outages = values.outages.split(',').filter(Boolean).map(Number);
if (outages.some((seconds) => !Number.isInteger(seconds) || seconds < 1)) {
  process.stderr.write('--outages must be positive whole seconds, comma-separated (e.g. 5,30,120)\n');
  process.exit(2);
}

const POD_ADDRESSES = ['127.0.3.1', '127.0.3.2', '127.0.3.3', '127.0.3.4', '127.0.3.5', '127.0.3.6'];
const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface LostNudgesSetup {
  readonly root: string;
  /** Starts the control plane again on its ports with these options added. */
  readonly restart: (more: Partial<LocalOptions>) => Promise<void>;
  readonly agentOf: (push: NonNullable<ConstructorParameters<typeof Agent>[0]['push']>) => Agent;
  readonly sendEndpoints: (addresses: string[]) => Promise<{ acceptedAt: number }>;
  readonly untilServing: (addresses: string[], timeoutMs?: number) => Promise<number>;
}

/**
 * The push channel failing, over MQTT with Debian's mosquitto: nudges lost while the agent is
 * subscribed (the control plane publishes nothing: a publisher that fails never fails a
 * reconcile), then the broker down and back.
 */
async function measureLostNudges(setup: LostNudgesSetup): Promise<{ lostMs: number[]; noticedMs: number; downServingMs: number; reconnectMs: number; backServingMs: number }> {
  const brokerPort = await freePort();
  // Anonymous: the ACLs are tested in test/mqtt-nudges.test.ts.
  let broker = await startMosquitto(join(setup.root, 'mosquitto'), brokerPort);
  const connections: Array<{ connected: boolean; at: number }> = [];
  const untilConnection = async (connected: boolean) => {
    for (const deadline = Date.now() + 30_000; connections.at(-1)?.connected !== connected; await sleep(10)) {
      if (Date.now() > deadline) throw new Error(`the agent never saw the broker ${connected ? 'up' : 'down'}`);
    }
    return connections.at(-1)!.at;
  };
  const stop = new AbortController();
  const agent = setup.agentOf({
    listen: (handlers, signal) =>
      listenForMqttNudges(
        {
          url: `mqtt://127.0.0.1:${brokerPort}`,
          resourceGroup: 'demo',
          vm: 'web01',
          onNudge: handlers.onNudge,
          onConnected: (connected) => {
            connections.push({ connected, at: performance.now() });
            handlers.onConnected(connected);
          },
        },
        signal,
      ),
    safetyPollSeconds: { gateway: settings.safetySeconds, other: settings.safetySeconds },
  });
  const running = agent.run(stop.signal);
  const change = async (i: number) => {
    const set = [POD_ADDRESSES[i % 6]!, POD_ADDRESSES[(i + 5) % 6]!];
    const { acceptedAt } = await setup.sendEndpoints(set);
    // A lost nudge waits out the safety poll (with its jitter): more than the usual 30 s.
    return (await setup.untilServing(set, settings.safetySeconds * 1100 + 30_000)) - acceptedAt;
  };
  try {
    await untilConnection(true);
    // The poll that follows the connection, done.
    await sleep(1000);
    const lostMs: number[] = [];
    for (let i = 0; i < settings.lostNudges; i++) {
      // At a random moment of the agent's wait.
      await sleep(Math.random() * 1000);
      lostMs.push(await change(i));
    }
    // Now the control plane publishes on the broker too.
    await setup.restart({ mqtt: { url: `mqtt://127.0.0.1:${brokerPort}` } });
    await sleep(2000);
    // From the broker told to stop (it drops its clients as it goes).
    const downAt = performance.now();
    await broker.stop();
    const noticedMs = (await untilConnection(false)) - downAt;
    const downServingMs = await change(10);
    const upAt = performance.now();
    broker = await startMosquitto(join(setup.root, 'mosquitto'), brokerPort);
    const reconnectMs = (await untilConnection(true)) - upAt;
    // The control plane's own client reconnects a second apart too.
    await sleep(2000);
    const backServingMs = await change(11);
    return { lostMs, noticedMs, downServingMs, reconnectMs, backServingMs };
  } finally {
    stop.abort();
    await running;
    await broker.stop();
    // The control plane as it was, with no broker to publish to.
    await setup.restart({});
  }
}

async function main(): Promise<void> {
  const root = mkdtempSync(join(os.tmpdir(), 'ringmaster-agent-bench-'));
  const pods: Server[] = [];
  const folder = vmInFolder(root);
  const { layout, socket } = folder;
  const documentWritten = new Map<string, number>();
  const options: LocalOptions = {
    dataDir: join(root, 'control-plane'),
    layout,
    onReconciled: (plan, events) => {
      if (plan.writes.some((w) => w.vm === 'web01')) for (const event of events) documentWritten.set(event.id, performance.now());
    },
  };
  let cp = await startLocalControlPlane({ ...options, apiPort: 0, s3Port: 0 });
  const podPort = await freePort();
  const bindPort = await freePort();
  try {
    for (const address of POD_ADDRESSES) {
      const server = createServer((_request, response) => response.end(address));
      await new Promise<void>((resolve) => server.listen(podPort, address, resolve));
      pods.push(server);
    }
    const at = () => new Date().toISOString();
    const vm = (name: string, roles: string[], srv: string, extra: object = {}) => ({ name, roles, cpu: 4, memoryMiB: 8192, disks: [{ sizeGiB: 50, kind: 'ssd' }], srvAddresses: [srv], ...extra });
    const provision = [
      { type: 'cluster.provisioned', payload: { settings: {} } },
      { type: 'vm.upserted', payload: { vm: vm('web01', ['webgateway'], '172.22.48.10', { publicAddresses: ['192.0.2.10'] }) } },
      { type: 'vm.upserted', payload: { vm: vm('kube01', ['k3s-server'], '172.22.48.11', { fqdn: 'kube01.example.com' }) } },
      { type: 'vm.upserted', payload: { vm: vm('kube02', ['k3s-agent'], '172.22.48.12') } },
      { type: 'frontend.upserted', payload: { name: 'myapp', frontend: { binds: [`127.0.0.1:${bindPort}`], podPort, lbServicePort: 7654 } } },
    ].map((event, i) => ({ id: `bench-${i}`, resourceGroup: 'demo', occurredAt: at(), ...event }));
    const accepted = await fetch(routeUrl(cp.info.apiUrl, 'postEvents', {}), { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${cp.info.apiToken}` }, body: JSON.stringify(provision) });
    if (accepted.status !== 202) throw new Error(`provisioning refused: ${await accepted.text()}`);
    // The state is written first marked as intent, and last without the mark: then the documents and the cluster key are there.
    // The group's first run finished: its documents and the cluster key are there.
    let state: RgState | undefined;
    while (!(state = (await loadSettledState(cp.store, 'demo')).state) || state.pendingWrite) await sleep(20);
    const webhookKey = state.description.secrets.webhookKey!;

    let resourceVersion = 1;
    const sendEndpoints = async (addresses: string[]): Promise<{ id: string; acceptedAt: number }> => {
      const body = sliceChangeBody({ service: 'myapp', port: podPort, resourceVersion: ++resourceVersion, addresses });
      const signed = signedHeaders(webhookKey, body);
      const response = await fetch(routeUrl(cp.info.apiUrl, 'postClusterEndpoints', { rg: 'demo' }), { method: 'POST', body, headers: signed.headers });
      if (response.status !== 202) throw new Error(`webhook refused: ${response.status} ${await response.text()}`);
      return { id: signed.id, acceptedAt: performance.now() };
    };
    const serving = async (addresses: string[]) => {
      const ready = (await serversState(socket)).filter((s) => s.backend === 'be_myapp' && /^pod/.test(s.server) && (s.adminState & 1) === 0).map((s) => s.address).sort();
      return JSON.stringify(ready) === JSON.stringify([...addresses].sort());
    };
    const untilServing = async (addresses: string[], timeoutMs = 30_000) => {
      const deadline = Date.now() + timeoutMs;
      while (!(await serving(addresses))) {
        if (Date.now() > deadline) throw new Error(`haproxy never served ${addresses.join(', ')}`);
        await sleep(5);
      }
      return performance.now();
    };

    const credentials = agentCredentials(JSON.parse(readFileSync(join(root, 'control-plane', 'credentials.json'), 'utf8')).masterKey, 'demo', 'web01');
    const client = new S3Client({ endpoint: cp.info.s3Endpoint, region: 'us-east-1', forcePathStyle: true, credentials });
    const agent = new Agent({ client, identity: { bucket: cp.info.bucket, resourceGroup: 'demo', vm: 'web01' }, trustedKeys: cp.info.trustedRoots.map((text) => trustedRoot(text)), root: '/', layout, stateDir: join(root, 'agent-state'), services: folder.services });
    await sendEndpoints(POD_ADDRESSES.slice(0, 2));
    await sleep(200);
    const first = await agent.poll();
    if (first.kind !== 'applied') throw new Error(`first apply failed: ${first.error}`);
    await untilServing(POD_ADDRESSES.slice(0, 2));
    const stop = new AbortController();
    const running = agent.run(stop.signal);

    // Propagation, changes at random moments.
    const fromWebhook: number[] = [];
    const fromDocument: number[] = [];
    for (let i = 0; i < settings.changes; i++) {
      const set = [POD_ADDRESSES[i % 6]!, POD_ADDRESSES[(i + 2) % 6]!];
      await sleep(Math.random() * 1000);
      const { id, acceptedAt } = await sendEndpoints(set);
      const servedAt = await untilServing(set);
      fromWebhook.push(servedAt - acceptedAt);
      const written = documentWritten.get(id);
      if (written !== undefined) fromDocument.push(servedAt - written);
    }
    fromWebhook.sort((a, b) => a - b);
    fromDocument.sort((a, b) => a - b);

    // A load loop (4 clients) through haproxy while `during` runs: requests, failures, reloads.
    const haproxyPid = async () => /Pid: (\d+)/.exec(await runtimeCommand(socket, 'show info'))?.[1];
    const underLoad = async (during: () => Promise<void>): Promise<{ requests: number; failures: number; reloads: number }> => {
      const pidBefore = await haproxyPid();
      let requests = 0;
      let failures = 0;
      let loading = true;
      const loops = Array.from({ length: 4 }, async () => {
        while (loading) {
          requests++;
          const response = await fetch(`http://127.0.0.1:${bindPort}/`).catch(() => undefined);
          if (!response?.ok) failures++;
          else await response.arrayBuffer();
        }
      });
      try {
        await during();
      } finally {
        loading = false;
        await Promise.all(loops);
      }
      return { requests, failures, reloads: (await haproxyPid()) === pidBefore ? 0 : 1 };
    };

    // Backend changes under load.
    const { requests, failures, reloads } = await underLoad(async () => {
      for (let i = 0; i < settings.loadChanges; i++) {
        const set = [POD_ADDRESSES[i % 6]!, POD_ADDRESSES[(i + 1) % 6]!, POD_ADDRESSES[(i + 3) % 6]!];
        await sendEndpoints(set);
        await untilServing(set);
      }
    });

    // Outages: the control plane (and its S3 endpoint) away for a while, then back on the same
    // ports; an endpoint change made once it is back, under load: how soon does the gateway serve it?
    const recoveries: Array<{ outageSeconds: number; servingMs: number; requests: number; failures: number; reloads: number }> = [];
    const ports = { apiPort: Number(new URL(cp.info.apiUrl).port), s3Port: Number(new URL(cp.info.s3Endpoint).port) };
    for (const [index, outageSeconds] of outages.entries()) {
      let servingMs = Number.NaN;
      const load = await underLoad(async () => {
        await cp.stop();
        await sleep(outageSeconds * 1000);
        cp = await startLocalControlPlane({ ...options, ...ports });
        const backAt = performance.now();
        const set = [POD_ADDRESSES[index % 6]!, POD_ADDRESSES[(index + 4) % 6]!];
        await sendEndpoints(set);
        servingMs = (await untilServing(set)) - backAt;
      });
      recoveries.push({ outageSeconds, servingMs, ...load });
    }
    stop.abort();
    await running;

    // Push: the same gateway's agent, nudged by the control plane when its document is written;
    // polling slowed to the safety interval (60 s), so what is measured is the nudge's path.
    const pushStop = new AbortController();
    const pushed = new Agent({
      client,
      identity: { bucket: cp.info.bucket, resourceGroup: 'demo', vm: 'web01' },
      trustedKeys: cp.info.trustedRoots.map((text) => trustedRoot(text)),
      root: '/',
      layout,
      stateDir: join(root, 'agent-state'),
      push: { listen: (handlers, signal) => listenForNudges({ url: cp.info.apiUrl, resourceGroup: 'demo', vm: 'web01', region: cp.info.region, credentials, ...handlers }, signal) },
    });
    const pushRunning = pushed.run(pushStop.signal);
    while (cp.nudges.listeners('demo', 'web01') === 0) await sleep(20);
    const pushFromWebhook: number[] = [];
    for (let i = 0; i < settings.pushChanges; i++) {
      const set = [POD_ADDRESSES[(i + 1) % 6]!, POD_ADDRESSES[(i + 3) % 6]!];
      await sleep(Math.random() * 200);
      const { acceptedAt } = await sendEndpoints(set);
      pushFromWebhook.push((await untilServing(set)) - acceptedAt);
    }
    pushFromWebhook.sort((a, b) => a - b);
    pushStop.abort();
    await pushRunning;

    const lost = await measureLostNudges({ root, restart: async (more) => {
      await cp.stop();
      cp = await startLocalControlPlane({ ...options, ...ports, ...more });
    }, agentOf: (push) => new Agent({ client, identity: { bucket: cp.info.bucket, resourceGroup: 'demo', vm: 'web01' }, trustedKeys: cp.info.trustedRoots.map((text) => trustedRoot(text)), root: '/', layout, stateDir: join(root, 'agent-state'), push }), sendEndpoints, untilServing });

    // The agent as a process, idle-polling its unchanged document: from the sources, and as the bundle shipped to VMs.
    const bundleDir = join(root, 'agent-bundle');
    await buildAgent(bundleDir);
    const idleOf = async (entry: string, stateDir: string): Promise<{ cpuPercent: number; rssMiB: number; polls: number }> => {
      // An agent that already runs the gateway's document (its 1 s poll), as after a restart on the VM.
      mkdirSync(join(root, stateDir), { recursive: true, mode: 0o700 });
      copyFileSync(join(root, 'agent-state', 'applied.json'), join(root, stateDir, 'applied.json'));
      const child = spawn(process.execPath, [entry, 'agent', '--resource-group', 'demo', '--vm', 'web01', '--endpoint', cp.info.s3Endpoint, '--bucket', cp.info.bucket, '--state-dir', join(root, stateDir)], {
        env: { ...process.env, AWS_ACCESS_KEY_ID: credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey, AWS_REGION: 'us-east-1', RINGMASTER_TRUSTED_KEYS: cp.info.trustedRoots.join(','), RINGMASTER_LOG_LEVEL: 'ERROR' },
        stdio: 'ignore',
      });
      await sleep(3000);
      const ticks = () => readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ').slice(11, 13).reduce((sum, t) => sum + Number(t), 0);
      const hz = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
      const ticksBefore = ticks();
      const getsBefore = cp.s3Requests.GET ?? 0;
      await sleep(settings.idleSeconds * 1000);
      const cpuPercent = ((ticks() - ticksBefore) / hz / settings.idleSeconds) * 100;
      const rssMiB = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1]) / 1024;
      const polls = (cp.s3Requests.GET ?? 0) - getsBefore;
      child.kill('SIGTERM');
      return { cpuPercent, rssMiB, polls };
    };
    const idle = await idleOf(new URL('../cli/ringmaster.ts', import.meta.url).pathname, 'agent-state');
    const idleBundle = await idleOf(join(bundleDir, 'ringmaster.mjs'), 'agent-state-bundle');

    const ms = (list: number[]) => `p50 ${quantile(list, 0.5).toFixed(0)} ms, p90 ${quantile(list, 0.9).toFixed(0)} ms, p99 ${quantile(list, 0.99).toFixed(0)} ms, max ${(list.at(-1) ?? NaN).toFixed(0)} ms`;
    const lines = [
      'Agent benchmark, end to end (local control plane, agent with its own key, real haproxy 2.6 on 127.0.0.1; gateway poll 1 s with jitter)',
      `node ${process.version}, CPU ${os.cpus()[0]?.model ?? '?'} x${os.cpus().length}; settings ${JSON.stringify(settings)}`,
      '',
      `Endpoint webhook answered 202 -> haproxy serving the new backend set (${settings.changes} changes at random moments): ${ms(fromWebhook)}`,
      `Document written -> haproxy serving:                                                  ${ms(fromDocument)}`,
      `  goal webhook -> serving p50 <= 1 s, p99 <= 2 s: ${quantile(fromWebhook, 0.5) <= 1000 && quantile(fromWebhook, 0.99) <= 2000 ? 'met' : 'NOT met'}`,
      `With push (nudged when the document is written; safety poll 60 s), webhook 202 -> serving (${settings.pushChanges} changes): ${ms(pushFromWebhook)}`,
      `  goal p99 <= 250 ms: ${quantile(pushFromWebhook, 0.99) <= 250 ? 'met' : 'NOT met'}`,
      `Nudges lost (mosquitto up, the agent subscribed, the control plane publishing nothing; safety poll ${settings.safetySeconds} s), webhook 202 -> serving (${settings.lostNudges} changes): ${lost.lostMs.map((v) => `${(v / 1000).toFixed(1)} s`).join(', ')}`,
      `  goal within one safety interval (+10 % jitter): ${Math.max(...lost.lostMs) <= settings.safetySeconds * 1100 ? 'met' : 'NOT met'}`,
      `Broker stopped: the agent noticed in ${lost.noticedMs.toFixed(0)} ms and polls at the document's 1 s; a change then served in ${lost.downServingMs.toFixed(0)} ms`,
      `Broker started again: the agent subscribed again by itself in ${lost.reconnectMs.toFixed(0)} ms; the next change, nudged, served in ${lost.backServingMs.toFixed(0)} ms`,
      '',
      `${settings.loadChanges} backend changes under a load loop (4 clients): ${requests} requests, ${failures} failed, ${reloads} haproxy reloads`,
      '',
      ...recoveries.map((r) => `Control plane and store away ${String(r.outageSeconds).padStart(3)} s, back, one endpoint change -> haproxy serving it ${r.servingMs.toFixed(0)} ms after the store was back (goal <= 2000 ms); under load ${r.requests} requests, ${r.failures} failed, ${r.reloads} reloads`),
      '',
      `Agent process idle-polling for ${settings.idleSeconds} s, sources:       ${idle.polls} polls (304s), CPU ${idle.cpuPercent.toFixed(2)} % of one core, resident memory ${idle.rssMiB.toFixed(1)} MiB`,
      `Agent process idle-polling for ${settings.idleSeconds} s, dist/agent bundle: ${idleBundle.polls} polls (304s), CPU ${idleBundle.cpuPercent.toFixed(2)} % of one core, resident memory ${idleBundle.rssMiB.toFixed(1)} MiB`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    process.stdout.write(
      `BENCH_JSON ${JSON.stringify({ settings, webhookToServing: { p50: quantile(fromWebhook, 0.5), p99: quantile(fromWebhook, 0.99) }, pushWebhookToServing: { p50: quantile(pushFromWebhook, 0.5), p99: quantile(pushFromWebhook, 0.99) }, lostNudges: lost, documentToServing: { p50: quantile(fromDocument, 0.5), p99: quantile(fromDocument, 0.99) }, underLoad: { requests, failures, reloads }, recoveries, idle, idleBundle })}\n`,
    );
  } finally {
    await folder.stopHaproxy();
    for (const pod of pods) pod.close();
    await cp.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
