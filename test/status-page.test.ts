/**
 * The status page in a real browser (Debian's chromium, driven by playwright-core) against the
 * real `ringmaster serve`: the spec's reference architecture is sent, the page opened through
 * the URL `ringmaster open` prints, and it must show what an operator needs to see: "syncing"
 * and "no report" first, "in sync" once every VM reported, and a failed apply's error with a
 * red health badge. Screenshots go to test-output/status-page/ for a person to look at.
 */
import { S3Client } from '@aws-sdk/client-s3';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { parse as parseYaml } from 'yaml';
import { fetchDocument, putReport } from '../agent/document-source.ts';
import { localCredentialsSchema } from '../local/credentials.ts';
import { agentCredentials } from '../shared/agent-identity.ts';
import type { StatusView } from '../shared/contract/status-view.ts';
import { type ControlPlaneProcess, startControlPlaneProcess, waitFor } from './helpers/control-plane-process.ts';
import { ROOT } from './helpers/fixtures.ts';

const RG = 'demo';
const SCREENSHOTS = join(ROOT, 'test-output', 'status-page');
const dataDir = mkdtempSync(join(tmpdir(), 'ringmaster-page-'));
const userDataDir = mkdtempSync(join(tmpdir(), 'ringmaster-chromium-'));
let cp: ControlPlaneProcess;
let browser: BrowserContext;
let page: Page;
let pageUrl: string;

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

beforeAll(async () => {
  mkdirSync(SCREENSHOTS, { recursive: true });
  cp = await startControlPlaneProcess(dataDir);
  const events = parseYaml(readFileSync(join(ROOT, 'examples/events/reference-architecture.yaml'), 'utf8')) as unknown;
  expect((await cp.api('POST', '/v1/events', events)).status).toBe(202);
  await waitFor('every document of demo', async () => {
    const answer = await cp.api('GET', `/v1/resource-groups/${RG}`);
    const view = answer.body as StatusView;
    return answer.status === 200 && view.documents.length > 0 && view.documents.every((d) => d.generation !== undefined) ? true : undefined;
  });
  // The URL as a user gets it: from `ringmaster open`.
  const { stdout } = await promisify(execFile)(process.execPath, [`${ROOT}cli/ringmaster.ts`, 'open', RG, '--print', '--api-url', cp.info.apiUrl, '--data-dir', dataDir]);
  pageUrl = stdout.trim();
  browser = await chromium.launchPersistentContext(userDataDir, { executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS, viewport: { width: 1400, height: 900 } });
  page = await browser.newPage();
}, 60000);

afterAll(async () => {
  await browser?.close();
  await cp?.kill();
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(userDataDir, { recursive: true, force: true });
});

const badge = (p: Page, kind: 'sync' | 'health') => p.locator(`[data-badge="${kind}"]`).first();
const label = async (p: Page, kind: 'sync' | 'health') => (await badge(p, kind).locator('.badge-label').textContent())?.trim();

/** Waits until the badge shows the label (the page polls the API every few seconds). */
async function badgeShows(p: Page, kind: 'sync' | 'health', wanted: string): Promise<void> {
  await waitFor(`the ${kind} badge to show "${wanted}"`, async () => ((await label(p, kind)) === wanted ? true : undefined), 20000);
}

/** The VM table as a person reads it: a row per VM, cells by column title. */
async function vmTable(p: Page): Promise<Array<Record<string, string>>> {
  return p.locator('#vm-table').evaluate((table) => {
    const titles = [...table.querySelectorAll('thead th')].map((th) => th.textContent ?? '');
    return [...table.querySelectorAll('tbody tr')].map((row) => Object.fromEntries([...row.children].map((cell, i) => [titles[i] ?? String(i), (cell.textContent ?? '').trim()])));
  });
}

const credentials = () => localCredentialsSchema.parse(JSON.parse(readFileSync(join(dataDir, 'credentials.json'), 'utf8')));

/** One VM's agent: its own credentials, its own document fetched from the store, its own report written. */
function agentOf(vm: string) {
  const { accessKeyId, secretAccessKey } = agentCredentials(credentials().masterKey, RG, vm);
  const client = new S3Client({ region: cp.info.region, endpoint: cp.info.s3Endpoint, forcePathStyle: true, credentials: { accessKeyId, secretAccessKey } });
  const identity = { bucket: cp.info.bucket, resourceGroup: RG, vm };
  return {
    async document(): Promise<{ generation: number; hash: string }> {
      const fetched = await fetchDocument(client, identity, undefined);
      if (fetched.kind !== 'fetched') throw new Error(`${vm}: no document to fetch (${fetched.kind})`);
      return JSON.parse(fetched.body) as { generation: number; hash: string };
    },
    report: (report: Omit<Parameters<typeof putReport>[2], 'resourceGroup' | 'vm'>) => putReport(client, identity, { resourceGroup: RG, vm, ...report }),
  };
}

test('a page with no data and no secret, opened by the URL `ringmaster open` prints, keeps its token out of the address bar', async () => {
  expect(pageUrl).toBe(`${cp.info.apiUrl}/resource-groups/${RG}#token=${encodeURIComponent(cp.info.apiToken)}`);
  const html = await (await fetch(`${cp.info.apiUrl}/resource-groups/${RG}`)).text();
  expect(html).not.toContain(cp.info.apiToken);
  await page.goto(pageUrl);
  await badgeShows(page, 'sync', 'syncing');
  expect(page.url()).toBe(`${cp.info.apiUrl}/resource-groups/${RG}`);
  expect(cp.output()).not.toContain(cp.info.apiToken);
});

test('just provisioned: the badges say "syncing" and "no report", and the table lists every VM without a report', async () => {
  await badgeShows(page, 'health', 'no report');
  const rows = await vmTable(page);
  expect(rows.map((r) => r.VM).sort()).toEqual(['db01', 'kube01', 'kube02', 'kube03', 'nfs01', 'web01'].sort());
  for (const row of rows) expect(row).toMatchObject({ Applied: '—', Sync: 'no report', 'Last outcome': 'no report' });
  expect(rows.find((r) => r.VM === 'kube01')).toMatchObject({ Roles: 'k3s-server', Wanted: expect.stringMatching(/^\d+$/) });
  await page.screenshot({ path: join(SCREENSHOTS, '1-syncing.png'), fullPage: true });
}, 30000);

test('every VM reports its document applied (the test stands in for the agents, with their own store credentials): "in sync" and "healthy"', async () => {
  const rows = await vmTable(page);
  await Promise.all(
    rows.map(async ({ VM }) => {
      const agent = agentOf(VM!);
      const { generation, hash } = await agent.document();
      const at = new Date().toISOString();
      await agent.report({ appliedGeneration: generation, appliedHash: hash, attemptedGeneration: generation, outcome: 'applied', at, lastContact: at });
    }),
  );
  await badgeShows(page, 'sync', 'in sync');
  await badgeShows(page, 'health', 'healthy');
  for (const row of await vmTable(page)) expect(row).toMatchObject({ Sync: 'in sync', Lag: '0', 'Last outcome': 'applied', 'Last contact': expect.stringMatching(/s ago$/) });
  await page.screenshot({ path: join(SCREENSHOTS, '2-in-sync.png'), fullPage: true });
}, 30000);

test('an agent back from an outage says how long it lasted: the VM table shows it beside the last contact', async () => {
  const kube02 = agentOf('kube02');
  const { generation, hash } = await kube02.document();
  const at = new Date().toISOString();
  const lastOutage = { startedAt: new Date(Date.now() - 40_000).toISOString(), endedAt: new Date(Date.now() - 6_000).toISOString(), seconds: 34 };
  await kube02.report({ appliedGeneration: generation, appliedHash: hash, attemptedGeneration: generation, outcome: 'applied', at, lastContact: at, lastOutage });
  await waitFor('the outage on the page', async () => ((await vmTable(page)).find((r) => r.VM === 'kube02')?.['Last contact']?.includes('outage') ? true : undefined));
  expect((await vmTable(page)).find((r) => r.VM === 'kube02')!['Last contact']).toMatch(/s ago\s*back from a 34 s outage \d+ s ago$/);
}, 30000);

test('whether nudges reach each agent: "push connected", or "push down" since when while it polls', async () => {
  const at = new Date().toISOString();
  for (const [vm, connected] of [['kube01', true], ['kube03', false]] as const) {
    const agent = agentOf(vm);
    const { generation, hash } = await agent.document();
    await agent.report({ appliedGeneration: generation, appliedHash: hash, attemptedGeneration: generation, outcome: 'applied', at, lastContact: at, push: { connected, since: new Date(Date.now() - 90_000).toISOString() } });
  }
  await waitFor('the push channels on the page', async () => ((await vmTable(page)).find((r) => r.VM === 'kube03')?.['Last contact']?.includes('push') ? true : undefined));
  const rows = await vmTable(page);
  expect(rows.find((r) => r.VM === 'kube01')!['Last contact']).toMatch(/s ago\s*push connected$/);
  expect(rows.find((r) => r.VM === 'kube03')!['Last contact']).toMatch(/s ago\s*push down \d+ (s|min) ago: polling$/);
  // An agent without a push channel says nothing of one.
  expect(rows.find((r) => r.VM === 'nfs01')!['Last contact']).not.toContain('push');
  await page.screenshot({ path: join(SCREENSHOTS, 'push-channels.png'), fullPage: true });
}, 30000);

test("the webgateway's certificates as its agent reports them: a Certificates table per host, and a failing one turns the health badge amber", async () => {
  const web01 = agentOf('web01');
  const { generation, hash } = await web01.document();
  const at = new Date().toISOString();
  const nextTryAt = new Date(Date.now() + 600_000).toISOString();
  await web01.report({
    appliedGeneration: generation, appliedHash: hash, attemptedGeneration: generation, outcome: 'applied', at, lastContact: at,
    certificates: [
      { host: 'myapp.example.com', state: 'valid', notAfter: '2027-03-04T16:01:11.000Z', renewAt: '2027-02-02T16:01:11.000Z', orders: 1 },
      { host: 'shop.example.com', state: 'failing', error: 'ordering the certificate for shop.example.com failed: the directory cannot be reached: ECONNREFUSED', nextTryAt, orders: 1 },
    ],
  });
  await badgeShows(page, 'health', 'warning');
  expect(await badge(page, 'health').textContent()).toContain('certificate failing: shop.example.com on web01');
  const rows = await page.locator('section[aria-labelledby="certificates"] tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.children].map((td) => (td.textContent ?? '').trim())));
  expect(rows.map((cells) => cells.slice(0, 3))).toEqual([['web01', 'myapp.example.com', 'valid'], ['web01', 'shop.example.com', 'failing']]);
  expect(rows[1]![3]).toContain(`ECONNREFUSED; next try ${nextTryAt}`);
  await page.screenshot({ path: join(SCREENSHOTS, '3-certificates.png'), fullPage: true });
}, 30000);

test("a failed apply shows the agent's error, short and expandable from the keyboard, and the health badge turns red", async () => {
  const web01 = agentOf('web01');
  const { generation, hash } = await web01.document();
  const error = `haproxy -c rejected the configuration: [ALERT] (1) : config : parsing [/etc/haproxy/haproxy.cfg:42] : unknown keyword 'bind-oops' in 'frontend myapp' section\n${'[ALERT] (1) : config : Error(s) found in configuration file\n'.repeat(3)}`;
  const at = new Date().toISOString();
  await web01.report({ appliedGeneration: generation, appliedHash: hash, attemptedGeneration: generation + 1, outcome: 'failed', error, at, lastContact: at });
  await badgeShows(page, 'health', 'failing');
  expect(await badge(page, 'health').textContent()).toContain('web01');
  expect(await badge(page, 'health').evaluate((element) => getComputedStyle(element).backgroundColor)).toBe('rgb(251, 228, 228)');
  const row = (await vmTable(page)).find((r) => r.VM === 'web01')!;
  expect(row['Last outcome']).toBe(`failed (gen ${generation + 1})`);
  expect(row.Error).toContain("unknown keyword 'bind-oops'");
  // Short in the table; the whole text one Enter away.
  const details = page.locator('#vm-table details').first();
  expect(await details.locator('summary').textContent()).toMatch(/…$/);
  await details.locator('summary').focus();
  await page.keyboard.press('Enter');
  expect(await details.locator('pre').isVisible()).toBe(true);
  expect(await details.locator('pre').textContent()).toBe(error.slice(0, 4000));
  // The next refresh keeps it open (the page redraws only when the data changes).
  await page.waitForTimeout(3500);
  expect(await page.locator('#vm-table details').first().evaluate((element) => (element as HTMLDetailsElement).open)).toBe(true);
  await page.screenshot({ path: join(SCREENSHOTS, '4-failed.png'), fullPage: true });
}, 30000);

test('the overview lists the group with its badges; a tab without the token is told how to get one', async () => {
  const overview = await browser.newPage();
  await overview.goto(`${cp.info.apiUrl}/`);
  // A new tab has its own sessionStorage: no token, so the API refuses and the page says what to do.
  await waitFor('the notice', async () => ((await overview.locator('#notice').textContent())?.includes('ringmaster open') ? true : undefined));
  await overview.goto(`${cp.info.apiUrl}/#token=${encodeURIComponent(cp.info.apiToken)}`);
  await waitFor('the group in the overview', async () => ((await overview.locator('#group-table a').first().textContent().catch(() => null)) === RG ? true : undefined), 10000);
  expect(await label(overview, 'health')).toBe('failing');
  await overview.screenshot({ path: join(SCREENSHOTS, '4-overview.png'), fullPage: true });
  await overview.locator('#group-table a').first().click();
  await overview.waitForURL(`${cp.info.apiUrl}/resource-groups/${RG}`);
  await overview.close();
}, 30000);
