/**
 * The canary's side of a rollout, in parts: "its backends are up" after a reload (a frontend
 * that had a server up must have one again once health checks ran), and its report reaching
 * the control plane even when the control plane is away when it is first sent (the other
 * gateways wait for it). The report goes to the real local control plane over HTTP, signed by
 * the VM's own key.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backendsBackUp, frontendsDownSince } from '../agent/canary-health.ts';
import { CanaryReporter } from '../agent/canary-reporter.ts';
import { type LocalControlPlane, startLocalControlPlane } from '../local/control-plane.ts';
import { loadOrCreateCredentials } from '../local/credentials.ts';
import { agentCredentials } from '../shared/agent-identity.ts';
import type { BackendServer } from '../shared/contract/agent-report.ts';
import { routeUrl } from '../shared/contract/routes.ts';
import { freePort } from './helpers/servers.ts';

const server = (frontend: string, name: string, state: BackendServer['state']): BackendServer => ({ frontend, server: name, address: '10.42.1.5:8080', state });

describe('backends back up after a reload', () => {
  test('a frontend that had a server up and has none now is named; one that had none up (no pods yet) is not', () => {
    const before = [server('web', 'pod1', 'up'), server('web', 'pod2', 'down'), server('api', 'pod1', 'down'), server('shop', 'pod1', 'up')];
    const after = [server('web', 'pod1', 'down'), server('web', 'pod2', 'down'), server('api', 'pod1', 'down'), server('shop', 'pod1', 'up')];
    expect(frontendsDownSince(before, after)).toEqual(['web']);
    expect(frontendsDownSince(before, [server('web', 'pod2', 'up'), server('shop', 'pod1', 'drain')])).toEqual(['shop']);
  });

  test('up again once the checks ran: no reason; still down at the timeout: the reason names the frontend', async () => {
    const before = [server('web', 'pod1', 'up')];
    const reads: BackendServer['state'][] = ['up', 'down', 'down', 'up', 'up', 'up', 'up'];
    let i = 0;
    const read = async () => [server('web', 'pod1', reads[Math.min(i++, reads.length - 1)]!)];
    expect(await backendsBackUp(before, { read, settleMs: 1200, timeoutMs: 5000 })).toBeUndefined();
    // Seen up right after the reload is not enough: the checks ran only once the settle time passed.
    expect(i).toBeGreaterThanOrEqual(3);
    const down = await backendsBackUp(before, { read: async () => [server('web', 'pod1', 'down')], settleMs: 200, timeoutMs: 1200 });
    expect(down).toBe('after the reload no server was up for 1 s in web (servers were up before)');
  });
});

describe('the canary report', () => {
  let dataDir: string;
  let cp: LocalControlPlane | undefined;
  beforeEach(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'ringmaster-canary-'));
  });
  afterEach(async () => {
    await cp?.stop();
    cp = undefined;
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('sent while the control plane is away, it is sent again until accepted once it is back', async () => {
    const port = await freePort();
    const { masterKey } = loadOrCreateCredentials(join(dataDir, 'credentials.json'));
    const logged: string[] = [];
    const reporter = new CanaryReporter({ credentials: agentCredentials(masterKey, 'demo', 'web01'), region: 'us-east-1', retryMs: 100, log: (message) => logged.push(message) });
    const url = routeUrl(`http://127.0.0.1:${port}`, 'postCanaryReport', { rg: 'demo', vm: 'web01' });
    const delivered = reporter.report(url, { generation: 4, outcome: 'applied' });
    await new Promise((resolve) => setTimeout(resolve, 700));
    expect(logged.filter((m) => m === 'canary report not delivered; sending it again').length).toBeGreaterThanOrEqual(2);
    cp = await startLocalControlPlane({ dataDir, apiPort: port, s3Port: 0 });
    await delivered;
    reporter.stop();
    expect(logged.at(-1)).toBe('canary report accepted');
    // Sent once more, an accepted report is not sent again.
    await reporter.report(url, { generation: 4, outcome: 'applied' });
    expect(logged.filter((m) => m === 'canary report accepted')).toHaveLength(1);
  }, 30_000);

  test("signed with another VM's key, it is refused (403) and not sent again", async () => {
    cp = await startLocalControlPlane({ dataDir, apiPort: 0, s3Port: 0 });
    const { masterKey } = loadOrCreateCredentials(join(dataDir, 'credentials.json'));
    const logged: Array<{ message: string; fields?: Record<string, unknown> }> = [];
    const reporter = new CanaryReporter({ credentials: agentCredentials(masterKey, 'demo', 'web02'), region: 'us-east-1', retryMs: 100, log: (message, fields) => logged.push({ message, ...(fields ? { fields } : {}) }) });
    await reporter.report(routeUrl(cp.info.apiUrl, 'postCanaryReport', { rg: 'demo', vm: 'web01' }), { generation: 4, outcome: 'failed', reason: 'haproxy refused it' });
    reporter.stop();
    expect(logged).toEqual([{ message: 'canary report refused; not sent again', fields: expect.objectContaining({ status: 403, answer: expect.stringContaining('an agent speaks only for its own VM') }) }]);
  });
});
