/** The contracts between processes (shared/contract/), on their own: the rules both sides rely on. */
import { agentReportSchema, type ReadReport, type RecentOutcome, withOutcome } from '../shared/contract/agent-report.ts';
import { historyView } from '../shared/contract/history-view.ts';
import { signDocument, storedDocumentSchema, type StoredDocuments, verifyStoredDocument } from '../shared/contract/document-envelope.ts';
import { trustedRoot } from '../shared/contract/document-signing.ts';
import { startingTrust } from '../shared/contract/root-announcement.ts';
import { ROUTE_IDS, responsesOf, routePath, routes, type RouteSpec, routeUrl } from '../shared/contract/routes.ts';
import { statusView } from '../shared/contract/status-view.ts';
import { kubeconfigKeyPattern, reportedVm, storeKeys } from '../shared/contract/store-layout.ts';
import { computeDesiredState } from '../shared/desired-state.ts';
import { rgStatusSchema } from '../shared/state/status.ts';
import { documentOf, example } from './helpers/fixtures.ts';
import { newTestRoot, signerUnder, TEST_ROOT, TEST_SIGNER, TEST_TRUSTED_KEYS } from './helpers/signing.ts';

describe('routes', () => {
  test('every {name} of a path has a schema, and every schema a {name}', () => {
    for (const id of ROUTE_IDS) {
      const route: RouteSpec = routes[id];
      const named = [...route.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
      expect([id, named]).toEqual([id, Object.keys(route.pathParameters).sort()]);
    }
  });

  test('paths are filled in percent-encoded, under any base URL', () => {
    expect(routePath('getKubeconfig', { rg: 'demo', user: 'a/b' })).toBe('/v1/resource-groups/demo/kubeconfigs/a%2Fb');
    expect(routeUrl('https://api.example.com/prod/', 'postClusterEndpoints', { rg: 'demo' })).toBe('https://api.example.com/prod/v1/clusters/demo/endpoints');
  });

  test('each kind of route documents the answers every route of its kind gives', () => {
    expect(Object.keys(responsesOf('postEvents')).sort()).toEqual(['202', '400', '401', '413', '415', '500']);
    expect(Object.keys(responsesOf('postClusterEndpoints')).sort()).toEqual(['202', '400', '401', '409', '413', '415', '500']);
    expect(Object.keys(responsesOf('getHealth')).sort()).toEqual(['200', '500']);
  });
});

describe('store layout', () => {
  test('kubeconfig keys the cluster function makes are the only ones an event may name', () => {
    expect(kubeconfigKeyPattern.test(storeKeys.kubeconfig('demo', 'alice', 'wh-0123abcd'))).toBe(true);
    for (const key of ['kubeconfigs/demo/../state/demo.yaml', 'desired/demo/alice/x.yaml', 'kubeconfigs/Demo/alice/x.yaml', 'kubeconfigs/demo/alice/x.json', 'kubeconfigs/demo/alice/sub/x.yaml']) {
      expect([key, kubeconfigKeyPattern.test(key)]).toEqual([key, false]);
    }
  });

  test('a report key names its VM; anything else under the prefix does not', () => {
    expect(reportedVm('demo', storeKeys.report('demo', 'web01'))).toBe('web01');
    expect(reportedVm('demo', 'reports/demo/web01.json.tmp')).toBeUndefined();
    expect(reportedVm('demo', 'reports/demo/sub/web01.json')).toBeUndefined();
    expect(reportedVm('demo', storeKeys.report('other', 'web01'))).toBeUndefined();
  });
});

describe('agent report', () => {
  test('parsing cuts what is too long instead of refusing the report (the limits live in the schema only)', () => {
    const base = { resourceGroup: 'demo', vm: 'kube01', appliedGeneration: 1, appliedHash: 'sha256:x', outcome: 'failed' as const, at: '2026-12-02T10:00:00Z' };
    const errors = Array.from({ length: 30 }, (_, i) => `error ${i} ${'x'.repeat(2000)}`);
    const kubernetes = { at: base.at, accessUsers: [], revoked: [], kubeconfigsDelivered: [], drain: [], endpointWebhook: { calls: 0, failures: 0 }, errors };
    const report = agentReportSchema.parse({ ...base, error: 'y'.repeat(10_000), kubernetes });
    expect(report.error).toHaveLength(4000);
    expect(report.error!.endsWith('…')).toBe(true);
    expect(report.kubernetes!.errors).toHaveLength(20);
    expect(report.kubernetes!.errors[0]!.startsWith('error 0 ')).toBe(true);
    expect(report.kubernetes!.errors.every((e) => e.length <= 1000)).toBe(true);
  });
});

describe('stored document envelope', () => {
  const content = { ...documentOf(computeDesiredState(example('reference-architecture')).documents, 'web01'), generation: 3 };
  const now = new Date('2026-12-02T10:00:00Z');
  const expiresAt = '2026-12-09T10:00:00Z';
  // Delegated from a date before `now` (the shared test signer's starts a day before the real clock).
  const signer = signerUnder(TEST_ROOT, { notBefore: new Date('2026-11-01T00:00:00Z') });
  const document = signDocument({ ...content, expiresAt }, signer);
  const trust = startingTrust(TEST_TRUSTED_KEYS, undefined);
  const policy = { owner: { resourceGroup: 'demo', vm: 'web01' }, trust, now, appliedGeneration: 3 };
  const check = (value: unknown, overrides: Partial<typeof policy> = {}) => verifyStoredDocument(typeof value === 'string' ? value : JSON.stringify(value), { ...policy, ...overrides });

  test('a document signed under a trusted root, for its owner, not expired and not older verifies', () => {
    expect(check(document)).toEqual({ document: storedDocumentSchema.parse(document), trust, trustChanged: false });
    // The content hash leaves the envelope out: the same content under another generation keeps it.
    expect(signDocument({ ...content, generation: 4, expiresAt }, signer).hash).toBe(document.hash);
  });

  test('each way a document can be wrong is refused with its reason', () => {
    const stranger = signerUnder(newTestRoot());
    const lapsed = signerUnder(TEST_ROOT, { notBefore: new Date('2026-11-20T00:00:00Z'), notAfter: new Date('2026-11-28T00:00:00Z') });
    const mismatched = signerUnder(TEST_ROOT, { certifyOther: true });
    const { signature: _signature, ...unsigned } = document;
    const cases: Array<[string, unknown, Partial<typeof policy>, string]> = [
      ['broken JSON', '{"apiVersion":', {}, 'not valid JSON'],
      ['no generation', { ...document, generation: undefined }, {}, 'generation'],
      ['content changed after signing', { ...document, pollIntervalSeconds: 99 }, {}, 'hash'],
      ["another VM's", document, { owner: { resourceGroup: 'demo', vm: 'kube01' } }, 'the document is for demo/web01, not for demo/kube01'],
      ['unsigned', unsigned, {}, 'signature'],
      ['a delegation by an untrusted root', signDocument({ ...content, expiresAt }, stranger), {}, `the delegation of key ${stranger.keyId} is signed by root ${stranger.delegation.rootKeyId}, which this agent does not trust`],
      ['an expired delegation', signDocument({ ...content, expiresAt }, lapsed), {}, `the delegation of key ${lapsed.keyId} expired at 2026-11-28T00:00:00.000Z`],
      ['a delegation not yet valid', signDocument({ ...content, expiresAt }, signerUnder(TEST_ROOT, { notBefore: new Date('2026-12-03T00:00:00Z') })), {}, 'holds only from 2026-12-03'],
      ['a document key the delegation does not certify', signDocument({ ...content, expiresAt }, mismatched), {}, `signed by key ${mismatched.keyId}, but its delegation is for key ${mismatched.delegation.keyId}`],
      ['a delegation changed after the root signed it', { ...document, signature: { ...document.signature, delegation: { ...document.signature.delegation, notAfter: '2099-01-01T00:00:00Z' } } }, {}, 'does not verify against root'],
      ['the envelope changed after signing', { ...document, expiresAt: '2027-12-09T10:00:00Z' }, {}, 'does not verify'],
      ['expired', document, { now: new Date(expiresAt) }, 'expired at 2026-12-09T10:00:00Z'],
      ['a rollback', document, { appliedGeneration: 4 }, 'generation 3 is older than the running 4 (a rollback)'],
    ];
    for (const [what, value, overrides, reason] of cases) expect([what, check(value, overrides)]).toEqual([what, { reason: expect.stringContaining(reason) }]);
  });

  test('root keys are read as `agent-credentials` prints them, and anything else is refused with the reason', () => {
    expect(trustedRoot(TEST_ROOT.publicKey).keyId).toBe(TEST_ROOT.keyId);
    expect(() => trustedRoot('not base64!')).toThrow('must be a root public key in base64');
    expect(() => trustedRoot(Buffer.from('hello').toString('base64'))).toThrow('is not a public key');
    // An Ed25519 key is an online key, never a root.
    expect(() => trustedRoot(TEST_SIGNER.delegation.publicKey)).toThrow('must be an ECDSA P-256 root key, not ed25519');
  });
});

describe('status view', () => {
  const status = rgStatusSchema.parse({
    resourceGroup: 'demo',
    updatedAt: '2026-12-02T10:00:00Z',
    clusterProvisioned: true,
    findings: [],
    documents: [
      { vm: 'kube01', roles: ['k3s-server'], generation: 2, hash: 'sha256:server' },
      { vm: 'kube02', roles: ['k3s-agent'], generation: 1, hash: 'sha256:agent' },
      { vm: 'web01', roles: ['webgateway'], generation: 5, hash: 'sha256:web' },
    ],
    rejections: [],
    pendingKubeconfigRequests: [],
  });
  const report = (vm: string, appliedHash: string, drainOf?: string) => ({
    resourceGroup: 'demo',
    vm,
    appliedGeneration: 1,
    appliedHash,
    outcome: 'applied' as const,
    at: '2026-12-02T10:00:00Z',
    ...(drainOf
      ? { kubernetes: { at: '2026-12-02T10:00:01Z', accessUsers: [], revoked: [], kubeconfigsDelivered: [], endpointWebhook: { calls: 0, failures: 0 }, errors: [], drain: [{ node: drainOf, phase: 'drained' as const, remainingPods: 0, blockedPods: [], safeToTakeDown: true, message: 'drained' }] } }
      : {}),
  });

  const copy = (generation: number, hash: string) => ({ generation, hash, expiresAt: '2026-12-09T10:00:00Z' });
  const asWanted: StoredDocuments = { copies: { kube01: copy(2, 'sha256:server'), kube02: copy(1, 'sha256:agent'), web01: copy(5, 'sha256:web') }, strays: [] };

  test('in sync means running exactly the stored hash; an unreadable report and no report are shown as such', () => {
    const view = statusView(status, new Map<string, ReadReport>([['kube01', agentReportSchema.parse(report('kube01', 'sha256:server'))], ['kube02', agentReportSchema.parse(report('kube02', 'sha256:old'))], ['web01', { invalid: 'the report is not valid JSON' }]]), asWanted);
    expect(view.documents.map((d) => [d.vm, d.inSync])).toEqual([['kube01', true], ['kube02', false], ['web01', false]]);
    expect(view.documents[2]!.agent).toEqual({ invalid: 'the report is not valid JSON' });
    expect(statusView(status, new Map(), asWanted).documents.every((d) => d.agent === null && !d.inSync)).toBe(true);
  });

  test('what is really stored is shown next to what the state wants, and a difference or a stray object is flagged', () => {
    expect(statusView(status, new Map(), asWanted).documents.every((d) => d.storedAsWanted)).toBe(true);
    expect(statusView(status, new Map(), asWanted).strayDocuments).toEqual([]);
    const drifted: StoredDocuments = { copies: { kube01: copy(3, 'sha256:newer'), web01: copy(5, 'sha256:web'), gone: copy(1, 'sha256:orphan') }, strays: ['desired/demo/notes.txt'] };
    const view = statusView(status, new Map(), drifted);
    expect(view.documents.map((d) => [d.vm, d.stored, d.storedAsWanted])).toEqual([
      ['kube01', { generation: 3, hash: 'sha256:newer' }, false],
      ['kube02', null, false],
      ['web01', { generation: 5, hash: 'sha256:web' }, true],
    ]);
    expect(view.strayDocuments).toEqual(['desired/demo/gone.json', 'desired/demo/notes.txt']);
  });

  test("maintenance comes from the k3s server's report only: another VM cannot declare a node safe to take down", () => {
    const view = statusView(status, new Map<string, ReadReport>([['kube01', agentReportSchema.parse(report('kube01', 'sha256:server', 'kube02'))], ['web01', agentReportSchema.parse(report('web01', 'sha256:web', 'kube03'))]]), asWanted);
    expect(view.maintenance).toEqual([expect.objectContaining({ vm: 'kube02', safeToTakeDown: true, reportedAt: '2026-12-02T10:00:01Z' })]);
  });
});

describe('history view', () => {
  const entry = (generation: number | null) => ({ generation, hash: generation === null ? null : `sha256:h${generation}`, at: '2026-12-04T10:00:00Z', events: [{ id: `e${generation}`, type: 'vm.upserted', occurredAt: '2026-12-04T09:59:00Z' }], moreEvents: 0, repair: false });
  const status = rgStatusSchema.parse({
    resourceGroup: 'demo',
    updatedAt: '2026-12-04T10:00:00Z',
    clusterProvisioned: true,
    findings: [],
    documents: [],
    rejections: [],
    pendingKubeconfigRequests: [],
    history: { web01: [entry(3), entry(2), entry(1)], old: [entry(null), entry(1)] },
  });

  test("each generation shows what the agent said of it: remembered outcomes, else the latest report's own generation", () => {
    let recent: RecentOutcome[] = [];
    recent = withOutcome(recent, { generation: 1, outcome: 'applied', at: '2026-12-04T10:00:01Z' });
    recent = withOutcome(recent, { generation: 2, outcome: 'failed', at: '2026-12-04T10:00:02Z', error: 'haproxy -c: unknown keyword' });
    recent = withOutcome(recent, { generation: 3, outcome: 'failed', at: '2026-12-04T10:00:03Z', error: 'first try' });
    recent = withOutcome(recent, { generation: 3, outcome: 'applied', at: '2026-12-04T10:00:04Z' });
    expect(recent.map((r) => [r.generation, r.outcome])).toEqual([[3, 'applied'], [2, 'failed'], [1, 'applied']]);
    const report = agentReportSchema.parse({ resourceGroup: 'demo', vm: 'web01', appliedGeneration: 3, appliedHash: 'sha256:h3', outcome: 'applied', at: '2026-12-04T10:00:04Z', recent });
    const view = historyView(status, new Map<string, ReadReport>([['web01', report]]));
    expect(view.vms.map((v) => v.vm)).toEqual(['old', 'web01']);
    expect(view.vms[1]!.entries.map((e) => [e.generation, e.agent?.outcome ?? null, e.agent?.error ?? null])).toEqual([
      [3, 'applied', null],
      [2, 'failed', 'haproxy -c: unknown keyword'],
      [1, 'applied', null],
    ]);
    // Without remembered outcomes (an agent restarted), only the latest report's generation is known.
    const plain = agentReportSchema.parse({ ...report, recent: undefined });
    expect(historyView(status, new Map<string, ReadReport>([['web01', plain]])).vms[1]!.entries.map((e) => e.agent?.outcome ?? null)).toEqual(['applied', null, null]);
    expect(Array.from({ length: 15 }, (_, i) => i + 1).reduce<RecentOutcome[]>((all, generation) => withOutcome(all, { generation, outcome: 'applied', at: '2026-12-04T10:00:00Z' }), [])).toHaveLength(10);
  });
});
