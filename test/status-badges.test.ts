/** The status page's badges (shared/status-badges.ts): what an operator reads at a glance. */
import type { AgentReport } from '../shared/contract/agent-report.ts';
import type { DocumentView, StatusView } from '../shared/contract/status-view.ts';
import { statusText } from '../cli/commands/operator.ts';
import { ago, shortText, statusGlance, vmGlance } from '../shared/status-badges.ts';

const now = new Date('2026-12-04T12:00:00Z');
const inAWeek = '2026-12-11T12:00:00Z';

function report(vm: string, overrides: Partial<AgentReport> = {}): AgentReport {
  return { resourceGroup: 'demo', vm, appliedGeneration: 3, appliedHash: `sha256:${vm}`, outcome: 'applied', at: '2026-12-04T11:59:00Z', ...overrides };
}

function vm(name: string, agent: DocumentView['agent'], overrides: Partial<DocumentView> = {}): DocumentView {
  const hash = `sha256:${name}`;
  const inSync = agent !== null && !('invalid' in agent) && agent.appliedHash === hash;
  return { vm: name, roles: ['k3s-agent'], generation: 3, hash, expiresAt: inAWeek, blockedBy: [], agent, inSync, stored: { generation: 3, hash }, storedAsWanted: true, ...overrides };
}

function view(documents: DocumentView[], findings: StatusView['findings'] = [], certificates: StatusView['certificates'] = []): StatusView {
  return { resourceGroup: 'demo', updatedAt: now.toISOString(), clusterProvisioned: true, findings, documents, rejections: [], pendingKubeconfigRequests: [], kubeconfigs: [], dashboard: null, rollout: null, maintenance: [], strayDocuments: [], certificates };
}

const finding = (severity: 'error' | 'warning' | 'info'): StatusView['findings'][number] => ({ code: `x-${severity}`, severity, subject: { kind: 'vm', name: 'kube02' }, message: severity, blocks: [] });

describe('sync badge', () => {
  test('a group just provisioned: syncing, and its health says no report yet', () => {
    const glance = statusGlance(view([vm('web01', null), vm('kube01', null)]), now);
    expect(glance.sync).toMatchObject({ tone: 'pending', label: 'syncing', detail: expect.stringContaining('0 of 2 VMs in sync') });
    expect(glance.health).toMatchObject({ tone: 'unknown', label: 'no report', detail: 'no report yet from web01, kube01' });
    expect(glance.vms.map((v) => v.sync)).toEqual(['no report', 'no report']);
  });

  test('every VM runs its stored document: in sync and healthy', () => {
    const glance = statusGlance(view([vm('web01', report('web01')), vm('kube01', report('kube01'))]), now);
    expect(glance.sync).toMatchObject({ tone: 'good', label: 'in sync' });
    expect(glance.health).toMatchObject({ tone: 'good', label: 'healthy' });
    expect(glance.vms.map((v) => v.lag)).toEqual([0, 0]);
  });

  test('one VM behind keeps the whole group syncing, and says which and by how many generations', () => {
    const behind = report('kube01', { appliedGeneration: 1, appliedHash: 'sha256:old' });
    const glance = statusGlance(view([vm('web01', report('web01')), vm('kube01', behind)]), now);
    expect(glance.sync).toMatchObject({ label: 'syncing', detail: '1 of 2 VMs in sync; waiting for kube01 (syncing)' });
    expect(glance.vms[1]).toMatchObject({ sync: 'syncing', lag: 2, health: 'healthy' });
  });

  test('a VM without any document (blocked from the start) and an unreadable report are warnings, not progress', () => {
    const glance = statusGlance(view([vm('web01', report('web01')), vm('db01', null, { generation: undefined, hash: undefined, stored: null })]), now);
    expect(glance.sync).toMatchObject({ tone: 'warning', label: 'syncing' });
    expect(glance.vms[1]).toMatchObject({ sync: 'no document', lag: undefined });
    const unreadable = statusGlance(view([vm('web01', { invalid: 'the report is not valid JSON' })]), now);
    expect(unreadable.vms[0]).toMatchObject({ sync: 'unreadable report', health: 'failed', error: 'the report is not valid JSON' });
    expect(unreadable.health.tone).toBe('bad');
  });

  test('a group without VMs says so', () => {
    expect(statusGlance(view([]), now).sync).toMatchObject({ tone: 'unknown', label: 'no VMs' });
  });
});

describe('health badge', () => {
  test('a failed apply turns the group red and names the VM; the error is the report\'s', () => {
    const failed = report('web01', { outcome: 'failed', error: 'haproxy -c: [ALERT] parsing line 12' });
    const glance = statusGlance(view([vm('web01', failed), vm('kube01', report('kube01'))]), now);
    expect(glance.health).toMatchObject({ tone: 'bad', label: 'failing', detail: '1 VM failed to apply: web01' });
    expect(glance.vms[0]).toMatchObject({ health: 'failed', error: 'haproxy -c: [ALERT] parsing line 12' });
    // It still runs its last good document: in sync with nothing newer is not claimed.
    expect(glance.vms[0]!.sync).toBe('in sync');
  });

  test('the worst finding wins over the VMs: error red, warning amber, info nothing', () => {
    const healthy = [vm('web01', report('web01'))];
    expect(statusGlance(view(healthy, [finding('info')]), now).health.label).toBe('healthy');
    expect(statusGlance(view(healthy, [finding('info'), finding('warning')]), now).health).toMatchObject({ tone: 'warning', detail: '1 warning' });
    expect(statusGlance(view(healthy, [finding('warning'), finding('error')]), now).health).toMatchObject({ tone: 'bad', detail: '1 error finding' });
  });

  test('a stored signature that runs out within two days is a warning on its VM', () => {
    const soon = vm('web01', report('web01'), { expiresAt: '2026-12-05T06:00:00Z' });
    const glance = statusGlance(view([soon]), now);
    expect(glance.vms[0]!.health).toBe('expiring');
    expect(glance.health).toMatchObject({ tone: 'warning', detail: 'signature about to expire: web01' });
  });
});

describe('a VM line', () => {
  test('last contact is when the agent last reached the store, else when it reported', () => {
    expect(vmGlance(vm('web01', report('web01', { lastContact: '2026-12-04T11:59:55Z' })), now).lastContact).toBe('2026-12-04T11:59:55Z');
    expect(vmGlance(vm('web01', report('web01')), now).lastContact).toBe('2026-12-04T11:59:00Z');
    expect(vmGlance(vm('web01', null), now).lastContact).toBeUndefined();
  });

  test('the push channel: connected, down since when, or nothing for an agent without one; the CLI names the VMs it cannot reach', () => {
    const up = vm('web01', report('web01', { push: { connected: true, since: '2026-12-04T11:00:00Z' } }));
    const down = vm('kube01', report('kube01', { push: { connected: false, since: '2026-12-04T11:55:00Z' } }));
    const without = vm('kube02', report('kube02'));
    expect(vmGlance(up, now).push).toEqual({ connected: true, since: '2026-12-04T11:00:00Z' });
    expect(vmGlance(down, now).push).toEqual({ connected: false, since: '2026-12-04T11:55:00Z' });
    expect(vmGlance(without, now).push).toBeUndefined();
    const printed = statusText(view([up, down, without]), { wide: false, columns: 120, now });
    expect(printed).toContain("Push channel down (polling at the document's interval): kube01 since 2026-12-04T11:55:00Z");
    expect(printed).not.toMatch(/Push channel down.*(web01|kube02)/);
    expect(statusText(view([up, without]), { wide: false, columns: 120, now })).not.toContain('Push channel down');
  });

  test('a push channel down for more than 10 minutes warns, naming the VM; a shorter blip does not', () => {
    const since = (minutesAgo: number) => new Date(now.getTime() - minutesAgo * 60_000).toISOString();
    const blip = statusGlance(view([vm('web01', report('web01', { push: { connected: false, since: since(2) } }))]), now);
    expect(blip.health.label).toBe('healthy');
    const long = statusGlance(view([vm('web01', report('web01', { push: { connected: false, since: since(11) } })), vm('kube01', report('kube01', { push: { connected: true, since: since(60) } }))]), now);
    expect(long.health).toMatchObject({ tone: 'warning', label: 'warning' });
    expect(long.health.detail).toBe(`push channel down, polling instead: web01 (since ${since(11)})`);
  });

  test('errors are cut to one short line with …; times read as "ago"', () => {
    expect(shortText('short', 20)).toBe('short');
    expect(shortText('a'.repeat(30), 10)).toBe(`${'a'.repeat(9)}…`);
    expect(shortText('first line\nsecond line', 40)).toBe('first line…');
    expect(ago('2026-12-04T11:59:48Z', now)).toBe('12 s ago');
    expect(ago('2026-12-04T11:57:00Z', now)).toBe('3 min ago');
    expect(ago('2026-12-04T09:00:00Z', now)).toBe('3 h ago');
    expect(ago('2026-11-30T12:00:00Z', now)).toBe('4 d ago');
  });
});

describe('certificates in the health badge', () => {
  const healthy = () => [vm('web01', report('web01'))];
  const certificate = (overrides: Partial<StatusView['certificates'][number]>): StatusView['certificates'][number] => ({ vm: 'web01', host: 'myapp.example.com', state: 'valid', notAfter: '2027-03-01T00:00:00Z', renewAt: '2027-01-30T00:00:00Z', orders: 1, reportedAt: now.toISOString(), ...overrides });

  test('valid certificates and a fresh placeholder leave the group healthy', () => {
    const glance = statusGlance(view(healthy(), [], [certificate({}), certificate({ host: 'shop.example.com', state: 'placeholder', notAfter: undefined, renewAt: undefined, orders: 0 })]), now);
    expect(glance.health).toMatchObject({ tone: 'good', label: 'healthy' });
  });

  test('a failing certificate warns, naming the host, its VM and the next try', () => {
    const failing = certificate({ host: 'shop.example.com', state: 'failing', renewAt: undefined, error: 'the directory cannot be reached: ECONNREFUSED', nextTryAt: '2026-12-04T12:10:00Z' });
    expect(statusGlance(view(healthy(), [], [certificate({}), failing]), now).health).toEqual({ tone: 'warning', label: 'warning', detail: 'certificate failing: shop.example.com on web01 (next try 2026-12-04T12:10:00Z)' });
  });

  test('a valid certificate that expires within two weeks (renewal should have come at 30 days) warns too', () => {
    expect(statusGlance(view(healthy(), [], [certificate({ notAfter: '2026-12-10T00:00:00Z' })]), now).health).toMatchObject({ tone: 'warning', detail: 'certificate expiring: myapp.example.com on web01 (2026-12-10T00:00:00Z)' });
  });
});

describe('gateway rollout', () => {
  const gateways = () => [vm('web01', report('web01')), vm('web02', report('web02'))];
  const rollout = (phase: 'waiting' | 'halted', since = '2026-12-04T11:58:00Z'): StatusView['rollout'] => ({ phase, canary: 'web01', generation: 4, held: ['web02'], startedAt: '2026-12-04T11:50:00Z', since, ...(phase === 'halted' ? { reason: 'haproxy refused the config', haltedAt: '2026-12-04T11:59:00Z' } : {}) });

  test('every VM runs its stored document, yet a held gateway waits for the canary: syncing, saying who waits for whom', () => {
    const glance = statusGlance({ ...view(gateways()), rollout: rollout('waiting') }, now);
    expect(glance.sync).toEqual({ tone: 'pending', label: 'syncing', detail: 'rollout: web02 waits for web01 (canary) to apply generation 4' });
    expect(glance.health.label).toBe('healthy');
  });

  test('a canary silent for more than 10 minutes into its round warns: its agent may not run', () => {
    const glance = statusGlance({ ...view(gateways()), rollout: rollout('waiting', '2026-12-04T11:45:00Z') }, now);
    expect(glance.health).toEqual({ tone: 'warning', label: 'warning', detail: 'rollout waiting since 2026-12-04T11:45:00Z: web01 (canary) has not reported; is its agent running?' });
  });

  test('a halted rollout fails the health badge with the canary and its reason', () => {
    const glance = statusGlance({ ...view(gateways()), rollout: rollout('halted') }, now);
    expect(glance.health).toEqual({ tone: 'bad', label: 'failing', detail: 'rollout halted: web01 (canary) failed generation 4: haproxy refused the config; web02 keeps its frontends until the next change' });
  });
});
