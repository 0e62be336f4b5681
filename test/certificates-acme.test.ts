/**
 * Certificates from a real ACME server nobody here wrote: Pebble (Let's Encrypt's test server,
 * built from the Go module proxy), its DNS pointing every test host at the loopback address
 * where the real nginx of a webgateway in a folder listens on ports 80 and 443. The real agent
 * applies a real signed document to a folder with nothing prepared, puts placeholders, answers
 * Pebble's HTTP-01 challenges through nginx, installs what Pebble issues and reloads nginx.
 * Only systemd is stood in for (test/helpers/vm-in-a-folder.ts starts and reloads the daemons).
 * The renewal rules read a clock the test moves; Pebble keeps the real one.
 */
import { existsSync } from 'node:fs';
import type { CertificateReport } from '../shared/contract/agent-report.ts';
import { startPebble, type Pebble } from './helpers/pebble.ts';
import { chainsTo, loopbackAddress, servedCertificate, startTlsGateway, type TlsGateway } from './helpers/tls-gateway.ts';

const DAY = 86_400_000;
let pebble: Pebble;
let gateway: TlsGateway;
/** How far the agent's certificate clock is ahead of the real one. */
let aheadMs = 0;

beforeAll(async () => {
  const address = loopbackAddress(2);
  pebble = await startPebble({ address, validityDays: 90 });
  gateway = await startTlsGateway({
    address,
    acme: { directoryUrl: pebble.directoryUrl, email: 'ops@example.com' },
    // No repeats inside acme-client: a server that is down fails the round at once (the agent's own backoff retries).
    agent: { certificates: { trustedCertificates: pebble.ca, requestAttempts: 0, now: () => new Date(Date.now() + aheadMs) } },
  });
}, 60_000);

afterAll(async () => {
  await gateway?.stop();
  await pebble?.close();
});

const hostStatus = (statuses: readonly CertificateReport[] | undefined, host: string) => statuses?.find((status) => status.host === host);

test('fresh webgateway, real agent, real nginx, real Pebble: the placeholder serves first, then a Pebble-issued certificate that chains to Pebble\'s root', async () => {
  const root = await pebble.root();
  const started = performance.now();
  const generation = await gateway.publish(['myapp.example.com']);
  // The agent as it runs on a VM: polls, applies, and its certificate loop starts right after the apply.
  const stop = new AbortController();
  const running = gateway.agent.run(stop.signal);
  let appliedAfterMs: number | undefined;
  let issued = { authorized: false } as Awaited<ReturnType<typeof chainsTo>>;
  while (performance.now() - started < 30_000) {
    if (appliedAfterMs === undefined && (await gateway.report().catch(() => undefined))?.appliedGeneration === generation) appliedAfterMs = performance.now() - started;
    issued = await chainsTo(gateway.address, 'myapp.example.com', root);
    if (issued.authorized) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const servedAfterMs = performance.now() - started;
  expect(issued).toEqual({ authorized: true });
  process.stdout.write(`figure: fresh webgateway, first apply to nginx serving a Pebble-issued certificate: ${Math.round(servedAfterMs)} ms (document applied after ${Math.round(appliedAfterMs ?? NaN)} ms)\n`);
  // The report follows the install (the round reports once nginx reloaded), and nginx's old workers are gone a moment after the reload.
  const report = await eventually(() => gateway.report(), (read) => hostStatus(read.certificates, 'myapp.example.com')?.state === 'valid');
  await steadilyIssued('myapp.example.com');
  stop.abort();
  await running;

  expect(report.outcome).toBe('applied');
  expect(hostStatus(report.certificates, 'myapp.example.com')).toMatchObject({ state: 'valid', orders: 1, notAfter: expect.any(String), renewAt: expect.any(String) });
  const served = await servedCertificate(gateway.address, 'myapp.example.com');
  expect(served.issuer.O).not.toBe('Ringmaster placeholder');
  expect(Date.parse(served.valid_to) - Date.now()).toBeGreaterThan(89 * DAY);
}, 60_000);

test('renewal: no second order while the certificate is good (a restart changes nothing); one order once 30 days are left; orders counted', async () => {
  const first = (await servedCertificate(gateway.address, 'myapp.example.com')).serialNumber;
  expect(await roundStatus('myapp.example.com')).toMatchObject({ state: 'valid', orders: 1 });
  aheadMs = 59 * DAY;
  expect(await roundStatus('myapp.example.com')).toMatchObject({ state: 'valid', orders: 1 });
  gateway.restartAgent();
  expect(await roundStatus('myapp.example.com')).toMatchObject({ state: 'valid', orders: 1 });
  expect((await servedCertificate(gateway.address, 'myapp.example.com')).serialNumber).toBe(first);

  aheadMs = 61 * DAY;
  const renewed = await roundStatus('myapp.example.com');
  expect(renewed).toMatchObject({ state: 'valid', orders: 2 });
  const second = await eventually(async () => (await servedCertificate(gateway.address, 'myapp.example.com')).serialNumber, (serial) => serial !== first);
  expect(second).not.toBe(first);
  const root = await pebble.root();
  expect(await eventually(() => chainsTo(gateway.address, 'myapp.example.com', root), (result) => result.authorized)).toEqual({ authorized: true });
  // Pebble issued the renewed certificate by the real clock: by that clock it is not due for its first 59 days.
  for (const days of [0, 59]) {
    aheadMs = days * DAY;
    expect(await roundStatus('myapp.example.com')).toMatchObject({ state: 'valid', orders: 2 });
  }
  process.stdout.write(`figure: ACME orders in the renewal test (issue, 3 rounds before due, renewal, 2 rounds after): ${renewed?.orders}\n`);
}, 60_000);

async function roundStatus(host: string): Promise<CertificateReport | undefined> {
  return hostStatus(await gateway.agent.certificateRound(), host);
}

/** Waits until nginx serves an issued certificate (no placeholder) for `host` on every connection for half a second. */
async function steadilyIssued(host: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  let since: number | undefined;
  while (Date.now() < deadline) {
    const issued = (await servedCertificate(gateway.address, host)).issuer.O !== 'Ringmaster placeholder';
    since = issued ? (since ?? Date.now()) : undefined;
    if (since !== undefined && Date.now() - since >= 500) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`nginx did not steadily serve an issued certificate for ${host}`);
}

/** nginx takes a reload a moment after the signal: waits (up to 5 s) until `check` holds for what it serves. */
async function eventually<T>(read: () => Promise<T>, check: (value: T) => boolean): Promise<T> {
  const deadline = Date.now() + 5000;
  let value = await read();
  while (!check(value) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    value = await read();
  }
  return value;
}

test('Pebble down: a new host keeps its placeholder, nginx stays valid, the report says failing with the reason and the next try (across a restart); it recovers once Pebble is back', async () => {
  aheadMs = 0;
  await pebble.stop();
  const generation = await gateway.publish(['myapp.example.com', 'shop.example.com']);
  expect(await gateway.agent.poll()).toMatchObject({ kind: 'applied', generation });
  const failing = await roundStatus('shop.example.com');
  expect(failing).toMatchObject({ state: 'failing', orders: 1, error: expect.stringMatching(/shop\.example\.com.*cannot be reached: ECONNREFUSED/), nextTryAt: expect.any(String) });
  expect(Date.parse(failing!.nextTryAt!) - Date.now()).toBeGreaterThan(9 * 60_000);
  // The rest of the document is untouched: the other host keeps its certificate, the new one its placeholder.
  expect(hostStatus((await gateway.report()).certificates, 'myapp.example.com')).toMatchObject({ state: 'valid' });
  expect((await gateway.report()).certificates).toEqual(expect.arrayContaining([expect.objectContaining({ host: 'shop.example.com', state: 'failing' })]));
  expect((await eventually(() => servedCertificate(gateway.address, 'shop.example.com'), (served) => served.subjectaltname === 'DNS:shop.example.com')).issuer.O).toBe('Ringmaster placeholder');

  await pebble.start();
  // Before its next try nothing is ordered, not even by a restarted agent.
  gateway.restartAgent();
  expect(await roundStatus('shop.example.com')).toMatchObject({ state: 'failing', orders: 1, nextTryAt: failing!.nextTryAt });
  aheadMs = 11 * 60_000;
  expect(await roundStatus('shop.example.com')).toMatchObject({ state: 'valid', orders: 2 });
  const newRoot = await pebble.root();
  expect(await eventually(() => chainsTo(gateway.address, 'shop.example.com', newRoot), (result) => result.authorized)).toEqual({ authorized: true });
}, 60_000);

test('a host removed from the document: nginx no longer serves its certificate, its key and certificate are gone, the report no longer lists it', async () => {
  const generation = await gateway.publish(['myapp.example.com']);
  expect(await gateway.agent.poll()).toMatchObject({ kind: 'applied', generation });
  const statuses = await gateway.agent.certificateRound();
  expect(statuses.map((status) => status.host)).toEqual(['myapp.example.com']);
  expect((await gateway.report()).certificates?.map((status) => status.host)).toEqual(['myapp.example.com']);
  expect(existsSync(`${gateway.layout.acmeDir}/shop.example.com/key.pem`)).toBe(false);
  expect(existsSync(`${gateway.layout.acmeDir}/shop.example.com`)).toBe(false);
  // nginx answers shop.example.com with its default server's certificate, never shop's.
  expect((await eventually(() => servedCertificate(gateway.address, 'shop.example.com'), (served) => served.subjectaltname !== 'DNS:shop.example.com')).subjectaltname).toBe('DNS:myapp.example.com');
}, 60_000);
