/**
 * `npm run bench` (part): how long `ringmaster demo` takes from its start to "all in sync" (every
 * VM runs its document and the webgateway's haproxy answers from a pod), run as a user runs
 * it, RUNS times one after the other; and how long Ctrl-C takes to stop everything. Goal: under
 * 30 s on a 2-core machine. Prints figures and the settings they ran with; never fails on a miss.
 */
import { spawn } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';

const RUNS = Number(process.env.DEMO_RUNS ?? 3);
const CLI = fileURLToPath(new URL('../cli/ringmaster.ts', import.meta.url));

/** One demo: seconds to "all in sync" as it prints them, the seconds its stop took, and whether the test kube-apiserver stood in for k3s' API. */
async function once(): Promise<{ inSync: number; stop: number; kubernetesApi: boolean }> {
  const demo = spawn(process.execPath, [CLI, 'demo'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  demo.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  demo.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const exited = new Promise<number | null>((done) => demo.once('exit', done));
  const inSync = await new Promise<number>((done, fail) => {
    const timer = setInterval(() => {
      const match = /All \d+ VMs in sync after ([\d.]+) s/.exec(output);
      if (match && output.includes('Stop with Ctrl-C')) {
        clearInterval(timer);
        done(Number(match[1]));
      } else if (demo.exitCode !== null) {
        clearInterval(timer);
        fail(new Error(`the demo ended before it was in sync:\n${output}`));
      }
    }, 50);
  });
  const stopping = performance.now();
  demo.kill('SIGINT');
  const code = await exited;
  if (code !== 0 || !/none left running/.test(output)) throw new Error(`the demo did not stop cleanly (exit ${code}):\n${output.slice(-2000)}`);
  return { inSync, stop: (performance.now() - stopping) / 1000, kubernetesApi: output.includes('Kubernetes API: the test kube-apiserver') };
}

const results: Array<{ inSync: number; stop: number; kubernetesApi: boolean }> = [];
for (let i = 0; i < RUNS; i++) results.push(await once());
const sorted = (values: number[]) => [...values].sort((a, b) => a - b);
const inSync = sorted(results.map((r) => r.inSync));
const stop = sorted(results.map((r) => r.stop));
// The demo runs the pods' EndpointSlice through a test kube-apiserver and the server's agent when one is built, else through the webhook itself.
const kubernetesApi = results.every((r) => r.kubernetesApi) ? 'test kube-apiserver' : results.some((r) => r.kubernetesApi) ? 'mixed' : 'none (the demo posts the webhook itself)';
const settings = { runs: RUNS, cpus: os.cpus().length, node: process.version, kubernetesApi };
process.stdout.write(
  [
    `ringmaster demo, ${RUNS} runs (${settings.cpus} CPUs, Node ${settings.node}): 6 sandboxed VMs (real haproxy, nginx, PostgreSQL), 3 pods; Kubernetes API: ${kubernetesApi}`,
    `  start -> all in sync and haproxy answering from a pod: median ${inSync[Math.floor(RUNS / 2)]!.toFixed(1)} s, max ${inSync.at(-1)!.toFixed(1)} s (goal < 30 s)`,
    `  Ctrl-C -> every process stopped:                   median ${stop[Math.floor(RUNS / 2)]!.toFixed(1)} s, max ${stop.at(-1)!.toFixed(1)} s`,
    `BENCH_JSON ${JSON.stringify({ settings, inSyncSeconds: inSync, stopSeconds: stop })}`,
    '',
  ].join('\n'),
);
