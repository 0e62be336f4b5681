/**
 * Pebble, Let's Encrypt's own ACME test server, and pebble-challtestsrv as its DNS (every name
 * resolves to the loopback address a test's nginx listens on), built by scripts/build-pebble.sh
 * and run on free ports of 127.0.0.1. PEBBLE_VA_NOSLEEP and PEBBLE_WFE_NONCEREJECT=0 make it
 * fast and deterministic; the HTTP-01 validations go to port 80 of that address, where the
 * test's real nginx serves the agent's webroot.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './fixtures.ts';
import { freePort } from './servers.ts';

/** The folder with pebble, pebble-challtestsrv and certs/ (built on first use, then cached). */
export function pebbleDir(): string {
  const stdout = execFileSync(join(ROOT, 'scripts/build-pebble.sh'), [], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const dir = stdout.trim().split('\n').at(-1);
  if (!dir) throw new Error('scripts/build-pebble.sh printed no directory');
  return dir;
}

export interface Pebble {
  /** The ACME directory URL (HTTPS, signed by `ca`). */
  readonly directoryUrl: string;
  /** Pebble's test CA, for the directory's HTTPS (not the CA it issues from). */
  readonly ca: string;
  /** The root the certificates Pebble issues chain to (management `/roots/0`); a new one after each start. */
  root(): Promise<string>;
  /** Makes `host` resolve to `address` (instead of the default one) for Pebble's validations. */
  resolve(host: string, address: string): Promise<void>;
  /** Stops Pebble alone (its DNS stays): the ACME server is down. */
  stop(): Promise<void>;
  /** Starts it again on the same ports (a new CA, no accounts: Pebble keeps nothing). */
  start(): Promise<void>;
  /** Stops everything. */
  close(): Promise<void>;
}

function httpsGet(url: string, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    get(url, { ca, headers: { 'user-agent': 'ringmaster-tests' } }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

async function waitFor(check: () => Promise<unknown>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await check();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`${what} did not answer within ${timeoutMs} ms: ${(error as Error).message}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

function stopProcess(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

/** Starts Pebble with HTTP-01 validations sent to `address`:80 (where every name resolves). */
export async function startPebble(options: { address: string; validityDays?: number }): Promise<Pebble> {
  const dir = pebbleDir();
  const work = mkdtempSync(join(tmpdir(), 'ringmaster-pebble-'));
  const [acmePort, managementPort, dnsPort, dnsManagementPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const config = join(work, 'pebble-config.json');
  writeFileSync(
    config,
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${acmePort}`,
        managementListenAddress: `127.0.0.1:${managementPort}`,
        certificate: join(dir, 'certs/localhost/cert.pem'),
        privateKey: join(dir, 'certs/localhost/key.pem'),
        httpPort: 80,
        tlsPort: 443,
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
        retryAfter: { authz: 1, order: 1 },
        keyAlgorithm: 'ecdsa',
        profiles: { default: { description: 'as Let\'s Encrypt issues', validityPeriod: (options.validityDays ?? 90) * 86_400 } },
      },
    }),
  );
  const dns = spawn(join(dir, 'pebble-challtestsrv'), ['-defaultIPv4', options.address, '-defaultIPv6', '', '-dnsserver', `127.0.0.1:${dnsPort}`, '-management', `127.0.0.1:${dnsManagementPort}`, '-http01', '', '-https01', '', '-tlsalpn01', '', '-doh', ''], { stdio: 'ignore' });
  let pebble: ChildProcess | undefined;
  const ca = readFileSync(join(dir, 'certs/pebble.minica.pem'), 'utf8');
  const directoryUrl = `https://127.0.0.1:${acmePort}/dir`;
  const start = async () => {
    pebble = spawn(join(dir, 'pebble'), ['-config', config, '-dnsserver', `127.0.0.1:${dnsPort}`], {
      env: { ...process.env, PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0', PEBBLE_AUTHZREUSE: '0' },
      stdio: ['ignore', 'ignore', 'ignore'],
    });
    await waitFor(async () => {
      const answer = await httpsGet(directoryUrl, ca);
      if (answer.status !== 200) throw new Error(`HTTP ${answer.status}`);
    }, 'pebble');
  };
  await start();
  return {
    directoryUrl,
    ca,
    async root() {
      const answer = await httpsGet(`https://127.0.0.1:${managementPort}/roots/0`, ca);
      if (answer.status !== 200) throw new Error(`pebble /roots/0: HTTP ${answer.status}`);
      return answer.body;
    },
    async resolve(host, address) {
      const answer = await fetch(`http://127.0.0.1:${dnsManagementPort}/add-a`, { method: 'POST', body: JSON.stringify({ host, addresses: [address] }) });
      if (!answer.ok) throw new Error(`pebble-challtestsrv /add-a: HTTP ${answer.status}`);
    },
    stop: () => stopProcess(pebble),
    start,
    async close() {
      await stopProcess(pebble);
      await stopProcess(dns);
      rmSync(work, { recursive: true, force: true });
    },
  };
}
