/**
 * `ringmaster demo` run as a user runs it: one process, nothing prepared. Its sandboxed agents
 * run the real haproxy, nginx and PostgreSQL; only k3s does not run (the sandbox says so), and
 * the test kube-apiserver `npm test` builds stands in for its API: the pods' Service and
 * EndpointSlice are made there and reach haproxy through the k3s server's agent. The
 * status page of the running demo is watched in a real browser (Debian's chromium through
 * playwright-core): "syncing" turns into "in sync"; the `curl` the demo prints goes through the
 * webgateway's haproxy to a pod; a frontend haproxy rejects shows the agent's error; and after
 * Ctrl-C (SIGINT) no process the demo started is left. Screenshots: test-output/demo/.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { parse as parseYaml } from 'yaml';
import type { StatusView } from '../shared/contract/status-view.ts';
import { waitFor } from './helpers/control-plane-process.ts';
import { ROOT } from './helpers/fixtures.ts';
import { kubeBinDir } from './helpers/kube-apiserver.ts';

/** The pods' addresses with a Kubernetes API (it refuses loopback ones): the demo's pod network. */
const POD_ADDRESSES = ['10.42.1.11', '10.42.1.12', '10.42.2.11'];

const SCREENSHOTS = join(ROOT, 'test-output', 'demo');
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const userDataDir = mkdtempSync(join(tmpdir(), 'ringmaster-chromium-'));
let demo: ChildProcess;
let output = '';
let browser: BrowserContext;
let page: Page;
let liveUrl: string;
/** Labels the sync badge showed, in order, while the demo converged. */
const syncLabels: string[] = [];
let watching: Promise<void>;

/** Waits until the demo printed a line matching `pattern`; its match. */
const printed = (pattern: RegExp, timeoutMs = 60_000) => waitFor(`the demo to print ${pattern}`, async () => pattern.exec(output) ?? undefined, timeoutMs);

const badge = (kind: 'sync' | 'health') => page.locator(`[data-badge="${kind}"]`).first();
const label = async (kind: 'sync' | 'health') => (await badge(kind).locator('.badge-label').textContent({ timeout: 1000 }).catch(() => null))?.trim();

/** The VM table as a person reads it: a row per VM, cells by column title. */
const vmTable = () => rowsOf('#vm-table');

/** A table of the page as a person reads it: a row each, cells by column title. */
async function rowsOf(selector: string): Promise<Array<Record<string, string>>> {
  return page.locator(selector).evaluate((table) => {
    const titles = [...table.querySelectorAll('thead th')].map((th) => th.textContent ?? '');
    return [...table.querySelectorAll('tbody tr')].map((row) => Object.fromEntries([...row.children].map((cell, i) => [titles[i] ?? String(i), (cell.textContent ?? '').trim()])));
  });
}

/** Every process below `pid`, as `ps` lists them. */
function processesBelow(pid: number): number[] {
  const rows = execFileSync('ps', ['-eo', 'pid=,ppid='], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map((line) => line.trim().split(/\s+/).map(Number) as [number, number]);
  const below = new Set<number>();
  let frontier = [pid];
  while (frontier.length > 0) {
    const next = rows.filter(([child, parent]) => frontier.includes(parent) && !below.has(child)).map(([child]) => child);
    for (const child of next) below.add(child);
    frontier = next;
  }
  return [...below];
}

/** Those of `pids` still running, as `ps` lists them (it exits 1 when it finds none). */
function stillRunning(pids: readonly number[]): string[] {
  let listed = '';
  try {
    listed = execFileSync('ps', ['-o', 'pid=,stat=,args=', '-p', pids.join(',')], { encoding: 'utf8' });
  } catch (error) {
    listed = (error as { stdout?: string }).stdout ?? '';
  }
  return listed.split('\n').filter((line) => line.trim() && !/^\s*\d+\s+Z/.test(line));
}

beforeAll(async () => {
  // The demo starts the test kube-apiserver only when it is built (as scripts/test.sh does before jest).
  kubeBinDir();
  mkdirSync(SCREENSHOTS, { recursive: true });
  demo = spawn(process.execPath, [`${ROOT}cli/ringmaster.ts`, 'demo'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  demo.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  demo.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  liveUrl = (await printed(/Watch it converge: (\S+)/, 30_000))[1]!;
  browser = await chromium.launchPersistentContext(userDataDir, { executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS, viewport: { width: 1400, height: 1000 } });
  page = await browser.newPage();
  await page.goto(liveUrl);
  // What the badge says while the demo converges, as a person watching would see it.
  watching = (async () => {
    let shot = false;
    while (syncLabels.at(-1) !== 'in sync' && demo.exitCode === null) {
      const now = await label('sync');
      if (now && now !== syncLabels.at(-1)) syncLabels.push(now);
      if (now === 'syncing' && !shot) {
        shot = true;
        await page.screenshot({ path: join(SCREENSHOTS, '1-syncing.png'), fullPage: true });
      }
      await page.waitForTimeout(100);
    }
  })();
}, 60_000);

afterAll(async () => {
  // What the demo printed, for a person to read when a test here failed.
  writeFileSync(join(SCREENSHOTS, 'demo-output.txt'), output);
  await browser?.close();
  if (demo && demo.exitCode === null) {
    demo.kill('SIGINT');
    await new Promise((done) => demo.once('exit', done));
  }
  rmSync(userDataDir, { recursive: true, force: true });
}, 60_000);

test('the demo converges on this machine: every VM in sync, and the curl it prints goes through the webgateway haproxy to a pod', async () => {
  const [, vms, took] = await printed(/All (\d+) VMs in sync after ([\d.]+) s/, 90_000);
  process.stdout.write(`ringmaster demo: all ${vms} VMs in sync after ${took} s\n`);
  expect(Number(vms)).toBe(6);
  const curl = (await printed(/Try\s+curl (\S+)/))[1]!;
  expect(curl).toBe('http://127.0.0.10:8080/');
  const answer = await (await fetch(curl)).text();
  expect(answer).toMatch(/^hello from pod myapp-\d \(10\.42\.\d\.1\d:8888\)/);
  expect(output).toContain('Stop with Ctrl-C');
}, 120_000);

test('the status page of the running demo turns from "syncing" to "in sync", every VM applied, k3s named as not run in the sandbox, the frontend with its backends as haproxy has them, and the dashboard link', async () => {
  await watching;
  expect(syncLabels).toContain('syncing');
  expect(syncLabels.at(-1)).toBe('in sync');
  expect(syncLabels.indexOf('syncing')).toBeLessThan(syncLabels.indexOf('in sync'));
  await waitFor('every row in sync', async () => ((await vmTable()).every((row) => row.Sync === 'in sync') ? true : undefined), 20_000);
  const rows = await vmTable();
  expect(rows.map((row) => row.VM).sort()).toEqual(['db01', 'kube01', 'kube02', 'kube03', 'nfs01', 'web01']);
  for (const row of rows) expect(row['Last outcome']).toMatch(/^(applied|unchanged)$/);
  // The sandbox says what it does not run.
  const notices = await page.locator('.notices').textContent();
  expect(notices).toMatch(/kube01: k3s: not run in sandbox; Kubernetes API: test-kube-apiserver at https:\/\/127\.0\.0\.1:\d+/);
  // No CA can reach a sandboxed VM: its TLS hosts keep the agent's placeholders, and it orders nothing.
  expect(notices).toContain('web01: certificates: placeholders only, none ordered');
  // web01's frontend with its backends as haproxy has them: the three pods up in their slots,
  // the other slots free, the agents' load balancers as backups (nothing listens there: down).
  // The backups' health checks fail after a few seconds: the page follows what haproxy says.
  const frontends = await waitFor("three pods up and the backups down in web01's haproxy", async () => {
    const servers = await rowsOf('#frontends-web01');
    const podsUp = servers.filter((server) => server.State === 'up' && /^Pod\/default\/myapp-\d$/.test(server.Pod ?? '')).length === 3;
    const backupsDown = servers.filter((server) => (server.Slot ?? '').startsWith('lb-') && server.State === 'down').length === 2;
    return podsUp && backupsDown ? servers : undefined;
  }, 30_000);
  expect(frontends.filter((server) => server.State === 'up').map((server) => server.Address).sort()).toEqual(POD_ADDRESSES.map((address) => `${address}:8888`).sort());
  expect(frontends.filter((server) => server.Pod === 'free slot' && server.State === 'maint')).toHaveLength(7);
  expect(frontends.filter((server) => (server.Slot ?? '').startsWith('lb-')).map((server) => `${server.Pod} ${server.Address}`)).toEqual(['kube02 127.0.0.12:7654', 'kube03 127.0.0.13:7654']);
  // The portal's "Kubernetes" button: the dashboard's virtual host on the server.
  expect(await page.locator('#dashboard-link a').getAttribute('href')).toBe('https://kube01.demo.example.com/');
  await page.screenshot({ path: join(SCREENSHOTS, '2-in-sync.png'), fullPage: true });
}, 60_000);

test("the pods' EndpointSlice went through the test kube-apiserver and the k3s server's agent: kubectl lists it there, kube01's agent reports its webhook calls, and the demo posted none itself", async () => {
  expect(output).toMatch(/Kubernetes API: the test kube-apiserver on https:\/\/127\.0\.0\.1:\d+ stands in for k3s'/);
  expect(output).not.toContain('the demo sends the pods\' EndpointSlice through the cluster\'s signed webhook itself');
  const kubeconfig = (await printed(/kubectl --kubeconfig (\S+) get endpointslices/))[1]!;
  const slices = JSON.parse(execFileSync(join(kubeBinDir(), 'kubectl'), ['--kubeconfig', kubeconfig, 'get', 'endpointslices', '-n', 'default', '-l', 'kubernetes.io/service-name=myapp', '-o', 'json'], { encoding: 'utf8' })) as { items: Array<{ endpoints: Array<{ addresses: string[] }> }> };
  expect(slices.items.flatMap((slice) => slice.endpoints.flatMap((endpoint) => endpoint.addresses)).sort()).toEqual([...POD_ADDRESSES].sort());
  const token = decodeURIComponent(new URL(liveUrl).hash.replace(/^#token=/, ''));
  const status = (await (await fetch(new URL('/v1/resource-groups/demo', liveUrl), { headers: { authorization: `Bearer ${token}` } })).json()) as StatusView;
  const kube01 = status.documents.find((d) => d.vm === 'kube01')!.agent;
  expect(kube01 && 'kubernetes' in kube01 ? kube01.kubernetes?.endpointWebhook.calls : undefined).toBeGreaterThanOrEqual(1);
  expect(kube01 && 'kubernetes' in kube01 ? kube01.kubernetes?.errors : undefined).toEqual([]);
});

test("a frontend haproxy rejects: web01's agent keeps the last good config, and the page shows its error and a red health badge", async () => {
  const token = decodeURIComponent(new URL(liveUrl).hash.replace(/^#token=/, ''));
  const events = parseYaml(readFileSync(join(ROOT, 'examples/events/sandbox-demo.yaml'), 'utf8')) as Array<{ type: string; payload: { frontend?: Record<string, unknown> } }>;
  const frontend = events.find((event) => event.type === 'frontend.upserted')!;
  const broken = { ...frontend, id: 'demo-test-broken-frontend', occurredAt: new Date().toISOString(), payload: { ...frontend.payload, frontend: { ...frontend.payload.frontend, haproxyExtraConfig: 'no-such-keyword 1' } } };
  const sent = await fetch(new URL('/v1/events', liveUrl), { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify([broken]) });
  expect(sent.status).toBe(202);
  await waitFor('the health badge to turn to "failing"', async () => ((await label('health')) === 'failing' ? true : undefined), 30_000);
  expect(await badge('health').textContent()).toContain('web01');
  const web01 = (await vmTable()).find((row) => row.VM === 'web01')!;
  expect(web01['Last outcome']).toMatch(/^failed/);
  expect(web01.Error).toContain('no-such-keyword');
  // The last good config keeps serving.
  expect(await (await fetch('http://127.0.0.10:8080/')).text()).toMatch(/^hello from pod/);
  await page.screenshot({ path: join(SCREENSHOTS, '3-failed.png'), fullPage: true });
}, 60_000);

test('Ctrl-C (SIGINT) stops every process the demo started: agents, haproxy, nginx, PostgreSQL, the control plane; its folder is removed', async () => {
  const folder = (await printed(/Ringmaster demo in (\S+)/))[1]!;
  const below = processesBelow(demo.pid!);
  // The control plane, six agents, and their daemons (haproxy master and worker, two nginx, PostgreSQL and its helpers).
  expect(below.length).toBeGreaterThan(15);
  const exited = new Promise<number | null>((done) => demo.once('exit', (code) => done(code)));
  demo.kill('SIGINT');
  expect(await exited).toBe(0);
  expect(output).toMatch(/Stopped: \d+ processes, none left running/);
  expect(stillRunning(below)).toEqual([]);
  expect(existsSync(folder)).toBe(false);
}, 60_000);
