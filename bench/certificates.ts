/**
 * Certificate benchmark: a fresh webgateway (an empty folder, the real agent, the real nginx;
 * systemd stood in for by test/helpers/vm-in-a-folder.ts) applies its first document, puts its
 * placeholder, and orders its certificate from Pebble (Let's Encrypt's ACME test server, built
 * by scripts/build-pebble.sh). Timed from the document stored to nginx serving a certificate
 * that chains to Pebble's root, the agent running as on a VM (`agent.run`: polls at the
 * document's 1 s interval, its certificate loop starts right after the apply). Pebble validates
 * without its random sleeps (PEBBLE_VA_NOSLEEP): real CAs take seconds more.
 *
 *   node bench/certificates.ts [--runs 10]
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { startPebble } from '../test/helpers/pebble.ts';
import { chainsTo, loopbackAddress, startTlsGateway } from '../test/helpers/tls-gateway.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '10' } } });
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs must be a whole number of at least 1');

const address = loopbackAddress(4);
const pebble = await startPebble({ address });
const host = 'myapp.example.com';
const applied: number[] = [];
const served: number[] = [];
try {
  for (let run = 0; run < runs; run++) {
    const gateway = await startTlsGateway({ address, acme: { directoryUrl: pebble.directoryUrl }, agent: { certificates: { trustedCertificates: pebble.ca, requestAttempts: 0 } } });
    const stop = new AbortController();
    try {
      const root = await pebble.root();
      const started = performance.now();
      const generation = await gateway.publish([host]);
      const running = gateway.agent.run(stop.signal);
      let appliedAt: number | undefined;
      for (;;) {
        if (performance.now() - started > 60_000) throw new Error(`run ${run + 1}: no Pebble-issued certificate served within 60 s`);
        if (appliedAt === undefined && (await gateway.report().catch(() => undefined))?.appliedGeneration === generation) appliedAt = performance.now() - started;
        if ((await chainsTo(address, host, root)).authorized) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      served.push(performance.now() - started);
      applied.push(appliedAt ?? Number.NaN);
      stop.abort();
      await running;
    } finally {
      stop.abort();
      await gateway.stop();
    }
  }
} finally {
  await pebble.close();
}

const sorted = (values: number[]) => [...values].sort((a, b) => a - b);
const quantile = (values: number[], q: number) => sorted(values)[Math.min(values.length - 1, Math.ceil(q * values.length) - 1)]!;
const line = (what: string, values: number[]) => `${what.padEnd(58)} median ${Math.round(quantile(values, 0.5))} ms, p95 ${Math.round(quantile(values, 0.95))} ms, max ${Math.round(Math.max(...values))} ms`;
console.log(`Ringmaster certificate benchmark: fresh webgateway to a Pebble-issued certificate (${runs} runs, nginx ${address}:443)`);
console.log(line('document stored → applied (placeholder serving)', applied));
console.log(line('document stored → nginx serves the Pebble-issued certificate', served));
