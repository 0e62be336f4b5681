/**
 * Agent benchmark, with a real haproxy (Debian's) on 127.0.0.1 and pods as small HTTP servers:
 *
 * - propagation: from writing a gateway document to haproxy serving the new backend set, with
 *   the agent polling at the document's interval (1 s, jittered), over --changes changes;
 * - 100 backend changes under a bounded load loop: failed requests and haproxy reloads;
 * - the agent process (`ringmaster agent`) idle-polling: resident memory and CPU.
 *
 * `npm run bench` runs it last. Needs haproxy and socat (the test setup installs them).
 */
import { S3Client } from '@aws-sdk/client-s3';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { fullAccess, startEmbeddedS3 } from '../adapters/embedded-s3.ts';
import { S3Store } from '../adapters/s3-store.ts';
import { Agent } from '../agent/agent.ts';
import { runtimeCommand, serversState } from '../agent/haproxy-runtime.ts';
import { parseResourceGroup } from '../cli/input.ts';
import { computeDesiredState, type DesiredState } from '../shared/desired-state.ts';
import { layoutUnder } from '../shared/layout.ts';
import { storeKeys } from '../shared/ports.ts';
import type { ResourceGroup } from '../shared/schema/resource-group.ts';

const { values } = parseArgs({ options: { changes: { type: 'string', default: '60' }, 'load-changes': { type: 'string', default: '100' }, 'idle-seconds': { type: 'string', default: '20' } } });
const settings = { changes: Number(values.changes), loadChanges: Number(values['load-changes']), idleSeconds: Number(values['idle-seconds']) };
for (const [name, value] of Object.entries(settings)) {
  if (!Number.isInteger(value) || value < 1) {
    process.stderr.write(`--${name} must be a positive whole number\n`);
    process.exit(2);
  }
}

const CREDENTIALS = { accessKeyId: 'bench-admin', secretAccessKey: 'bench-admin-secret-0123456789abcdef' };
const POD_PORT = 18888;
const POD_ADDRESSES = ['127.0.3.1', '127.0.3.2', '127.0.3.3', '127.0.3.4', '127.0.3.5', '127.0.3.6'];
const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createNetServer();
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

async function main(): Promise<void> {
  const root = mkdtempSync(join(os.tmpdir(), 'ringmaster-agent-bench-'));
  const pods: Server[] = [];
  const master = `${root}/run/haproxy-master.sock`;
  const pidFile = `${root}/run/haproxy.pid`;
  const layout = layoutUnder(root, (daemon) =>
    daemon === 'haproxy'
      ? ['sh', '-c', `if [ -S ${master} ] && kill -0 "$(cat ${pidFile})" 2>/dev/null; then echo reload | socat - UNIX-CONNECT:${master}; else haproxy -W -D -S ${master} -p ${pidFile} -f ${root}/etc/haproxy/haproxy.cfg; fi`]
      : ['true'],
  );
  const s3 = await startEmbeddedS3({ directory: join(root, 's3'), port: await freePort(), bucket: 'ringmaster', principal: fullAccess(CREDENTIALS.accessKeyId, CREDENTIALS.secretAccessKey) });
  const store = new S3Store({ bucket: 'ringmaster', endpoint: s3.endpoint, credentials: CREDENTIALS });
  const bindPort = await freePort();
  const socket = `${root}/run/haproxy/admin.sock`;
  try {
    for (const address of POD_ADDRESSES) {
      const server = createServer((_request, response) => response.end(address));
      await new Promise<void>((resolve) => server.listen(POD_PORT, address, resolve));
      pods.push(server);
    }
    const path = new URL('../examples/scenario-1-http.yaml', import.meta.url);
    const base = parseResourceGroup(path.pathname, readFileSync(path, 'utf8'));
    const rgWith = (addresses: string[]): ResourceGroup => ({
      ...base,
      secrets: { clusterToken: 'bench-cluster-token-0123456789abcdef', datastorePassword: 'bench-datastore-password-0123456789' },
      frontends: { myapp: { ...base.frontends.myapp!, bind: undefined, binds: [`127.0.0.1:${bindPort}`], podPort: POD_PORT, virtualHosts: {} } },
      endpoints: [
        {
          namespace: 'default',
          service: 'myapp',
          ports: [],
          slices: [{ metadata: { name: 'myapp-1' }, addressType: 'IPv4', ports: [{ name: 'http', port: POD_PORT, protocol: 'TCP' }], endpoints: addresses.map((a) => ({ addresses: [a], conditions: { ready: true }, targetRef: { kind: 'Pod', namespace: 'default', name: `pod-${a.replaceAll('.', '-')}` } })) }],
        },
      ],
    });
    let generation = 0;
    let slots: DesiredState['slots'] = {};
    const publish = async (addresses: string[]) => {
      const state = computeDesiredState(rgWith(addresses), { layout, previousSlots: slots });
      slots = state.slots;
      const document = state.documents.find((d) => d.vm === 'web01')!;
      await store.put(storeKeys.desired('demo', 'web01'), JSON.stringify({ ...document, generation: ++generation }));
      return performance.now();
    };
    const client = new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: CREDENTIALS });
    const agent = new Agent({ client, identity: { bucket: 'ringmaster', resourceGroup: 'demo', vm: 'web01' }, root: '/', stateDir: join(root, 'agent-state') });
    await publish(POD_ADDRESSES.slice(0, 2));
    const first = await agent.poll();
    if (first.kind !== 'applied') throw new Error(`first apply failed: ${first.error}`);
    const stop = new AbortController();
    const running = agent.run(stop.signal);
    const haproxyPid = async () => /Pid: (\d+)/.exec(await runtimeCommand(socket, 'show info'))?.[1];
    const serving = async (addresses: string[]) => {
      const state = await serversState(socket);
      const ready = state.filter((s) => s.backend === 'be_myapp' && /^pod/.test(s.server) && (s.adminState & 1) === 0).map((s) => s.address).sort();
      return JSON.stringify(ready) === JSON.stringify([...addresses].sort());
    };

    // Propagation: document written -> haproxy serves the new set.
    const latencies: number[] = [];
    for (let i = 0; i < settings.changes; i++) {
      const set = [POD_ADDRESSES[i % 6]!, POD_ADDRESSES[(i + 2) % 6]!];
      // Changes come at any moment, not just after a poll: a random pause before each.
      await new Promise((r) => setTimeout(r, Math.random() * 1000));
      const written = await publish(set);
      while (!(await serving(set))) await new Promise((r) => setTimeout(r, 5));
      latencies.push(performance.now() - written);
    }
    latencies.sort((a, b) => a - b);

    // 100 backend changes under load: failed requests and reloads.
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
    for (let i = 0; i < settings.loadChanges; i++) {
      const set = [POD_ADDRESSES[i % 6]!, POD_ADDRESSES[(i + 1) % 6]!, POD_ADDRESSES[(i + 3) % 6]!];
      await publish(set);
      while (!(await serving(set))) await new Promise((r) => setTimeout(r, 5));
    }
    loading = false;
    await Promise.all(loops);
    const reloads = (await haproxyPid()) === pidBefore ? 0 : 1;
    stop.abort();
    await running;

    // The agent as a process, idle-polling its (unchanged) document.
    const cli = new URL('../cli/ringmaster.ts', import.meta.url).pathname;
    const child = spawn(process.execPath, [cli, 'agent', '--resource-group', 'demo', '--vm', 'web01', '--endpoint', s3.endpoint, '--bucket', 'ringmaster', '--root', '/', '--state-dir', join(root, 'agent-state')], {
      env: { ...process.env, AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey, AWS_REGION: 'us-east-1', RINGMASTER_LOG_LEVEL: 'ERROR' },
      stdio: 'ignore',
    });
    await new Promise((r) => setTimeout(r, 3000));
    const ticks = () => readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ').slice(11, 13).reduce((sum, t) => sum + Number(t), 0);
    const hz = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    const ticksBefore = ticks();
    const getsBefore = s3.requests.GET ?? 0;
    await new Promise((r) => setTimeout(r, settings.idleSeconds * 1000));
    const cpuSeconds = (ticks() - ticksBefore) / hz;
    const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1]);
    const polls = (s3.requests.GET ?? 0) - getsBefore;
    child.kill('SIGTERM');

    const lines = [
      'Agent benchmark (real haproxy 2.6 on 127.0.0.1, embedded S3, gateway poll interval 1 s with jitter)',
      `node ${process.version}, CPU ${os.cpus()[0]?.model ?? '?'} x${os.cpus().length}; settings ${JSON.stringify(settings)}`,
      '',
      `Document written -> haproxy serving the new backend set (${settings.changes} changes):`,
      `  p50 ${latencies.length ? quantile(latencies, 0.5).toFixed(0) : '?'} ms, p90 ${quantile(latencies, 0.9).toFixed(0)} ms, p99 ${quantile(latencies, 0.99).toFixed(0)} ms, max ${latencies.at(-1)!.toFixed(0)} ms`,
      '  (with the pipeline in front add its 202 -> document p50 ~11 ms, p99 ~20-35 ms: see bench/pipeline.ts)',
      '',
      `${settings.loadChanges} backend changes under a load loop (4 clients): ${requests} requests, ${failures} failed, ${reloads} haproxy reloads`,
      '',
      `Agent process idle-polling for ${settings.idleSeconds} s: ${polls} polls (304s), CPU ${((cpuSeconds / settings.idleSeconds) * 100).toFixed(2)} % of one core, resident memory ${(rssKiB / 1024).toFixed(1)} MiB`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    process.stdout.write(`BENCH_JSON ${JSON.stringify({ settings, propagation: { p50: quantile(latencies, 0.5), p90: quantile(latencies, 0.9), p99: quantile(latencies, 0.99) }, underLoad: { requests, failures, reloads }, idle: { cpuPercent: (cpuSeconds / settings.idleSeconds) * 100, rssMiB: rssKiB / 1024, polls } })}\n`);
  } finally {
    try {
      execFileSync('sh', ['-c', `kill "$(cat ${pidFile})" 2>/dev/null || true`]);
    } catch {
      // haproxy never started
    }
    for (const pod of pods) pod.close();
    await s3.close();
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
