/**
 * The cost model (`npm run cost`): monthly AWS request costs for a fleet given as flags, polling
 * only and with push, from requests COUNTED here per event kind on the local control plane (the
 * same functions as in AWS: its embedded S3 endpoint counts every request by method) and the
 * unit prices of bench/prices.ts. Storage, data transfer and compute of the VMs are not counted:
 * this is what the control plane's design decides.
 *
 *   node bench/cost.ts [--resource-groups 10000] [--vms-per-group 10] [--gateways-per-group 1]
 *     [--endpoint-changes-per-hour 6] [--portal-changes-per-hour 0.1] [--gateway-poll 1]
 *     [--other-poll 30] [--safety-gateway 60] [--safety-other 300] [--pushed-others-per-group N]
 *
 * `--pushed-others-per-group` (default: every VM) keeps only that many non-gateway VMs per group
 * on the push channel (say 1, the k3s server, which waits for kubeconfig requests); the rest
 * poll at `--safety-other` alone, and stop paying IoT connection minutes.
 *
 * Goal (issue 19): 100,000 VMs in 10,000 groups, gateway p99 <= 1 s, under $1,000 a month.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { startLocalControlPlane } from '../local/control-plane.ts';
import { routeUrl } from '../shared/contract/routes.ts';
import { loadSettledState } from '../functions/shared/state-store.ts';
import type { RgState } from '../shared/state/rg-state.ts';
import { PRICES } from './prices.ts';
import { signedHeaders, sliceChangeBody } from './webhook.ts';

const options = {
  'resource-groups': { type: 'string', default: '10000' },
  'vms-per-group': { type: 'string', default: '10' },
  'gateways-per-group': { type: 'string', default: '1' },
  'endpoint-changes-per-hour': { type: 'string', default: '6' },
  'portal-changes-per-hour': { type: 'string', default: '0.1' },
  'gateway-poll': { type: 'string', default: '1' },
  'other-poll': { type: 'string', default: '30' },
  'safety-gateway': { type: 'string', default: '60' },
  'safety-other': { type: 'string', default: '300' },
  'pushed-others-per-group': { type: 'string' },
  'what-if-puts-per-event': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;
const USAGE = `usage: npm run cost -- [--resource-groups 10000] [--vms-per-group 10] [--gateways-per-group 1]
  [--endpoint-changes-per-hour 6] [--portal-changes-per-hour 0.1] [--gateway-poll 1] [--other-poll 30]
  [--safety-gateway 60] [--safety-other 300] [--pushed-others-per-group N] [--what-if-puts-per-event N]
Polls and safety intervals are in seconds; --pushed-others-per-group defaults to every non-gateway VM.
--what-if-puts-per-event prices a design that writes N S3 objects per event instead of the counted figure.
`;
let parsed: ReturnType<typeof parseArgs<{ options: typeof options }>>;
try {
  parsed = parseArgs({ options });
} catch (error) {
  // An unknown flag or one without its value: said plainly, with the usage, not as a stack trace.
  process.stderr.write(`${(error as Error).message}\n${USAGE}`);
  process.exit(2);
}
if (parsed.values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const { help: _help, ...values } = parsed.values;
const given = Object.fromEntries(Object.entries(values).map(([name, text]) => [name, Number(text)])) as Partial<Record<keyof typeof options, number>>;
const settings = { ...given, 'pushed-others-per-group': given['pushed-others-per-group'] ?? given['vms-per-group']! - given['gateways-per-group']! } as Record<Exclude<keyof typeof options, 'help' | 'what-if-puts-per-event'>, number> & { 'what-if-puts-per-event'?: number };
for (const [name, value] of Object.entries(settings)) {
  const mayBeZero = name.endsWith('per-hour') || name === 'pushed-others-per-group' || name === 'what-if-puts-per-event';
  if (!Number.isFinite(value) || value < 0 || (value === 0 && !mayBeZero)) {
    process.stderr.write(`--${name}: must be a positive number (got ${values[name as keyof typeof values]})\n`);
    process.exit(2);
  }
}
if (settings['gateways-per-group'] > settings['vms-per-group']) {
  process.stderr.write('--gateways-per-group: must not be more than --vms-per-group\n');
  process.exit(2);
}
if (settings['pushed-others-per-group'] > settings['vms-per-group'] - settings['gateways-per-group']) {
  process.stderr.write('--pushed-others-per-group: must not be more than the non-gateway VMs of a group (--vms-per-group minus --gateways-per-group)\n');
  process.exit(2);
}

// The local control plane's own logs would bury the table (RINGMASTER_LOG_LEVEL=INFO shows them).
process.env.RINGMASTER_LOG_LEVEL ??= 'ERROR';

const MONTH_SECONDS = 30 * 24 * 3600;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Counted {
  readonly s3Get: number;
  readonly s3PutOrList: number;
  readonly documentsWritten: number;
}

/** S3 requests of one event of each kind, alone, counted on the local control plane's store. */
async function countPerEvent(): Promise<{ endpoint: Counted; portal: Counted }> {
  const dataDir = mkdtempSync(join(os.tmpdir(), 'ringmaster-cost-'));
  let written = 0;
  const cp = await startLocalControlPlane({ dataDir, apiPort: 0, s3Port: 0, onReconciled: (plan) => void (written += plan.writes.length) });
  try {
    const events = parseYaml(readFileSync(new URL('../examples/events/reference-architecture.yaml', import.meta.url), 'utf8')) as Array<{ id: string; type: string; occurredAt: string; payload: Record<string, unknown> }>;
    const post = (body: unknown) => fetch(routeUrl(cp.info.apiUrl, 'postEvents', {}), { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${cp.info.apiToken}` }, body: JSON.stringify(body) });
    await post(events);
    // The group's first run finished: its documents and the cluster key are there.
    let state: RgState | undefined;
    while (!(state = (await loadSettledState(cp.store, 'demo')).state) || state.pendingWrite) await sleep(20);
    const webhookKey = state.description.secrets.webhookKey!;
    await sleep(1500); // the start-up refresh and anything else in flight settle
    const snapshot = () => ({ get: (cp.s3Requests.GET ?? 0) + (cp.s3Requests.HEAD ?? 0), put: (cp.s3Requests.PUT ?? 0) + (cp.s3Requests.POST ?? 0), written });
    const settle = async (before: ReturnType<typeof snapshot>) => {
      // Done when nothing more happens for half a second.
      let last = JSON.stringify(snapshot());
      for (;;) {
        await sleep(500);
        const now = JSON.stringify(snapshot());
        if (now === last) break;
        last = now;
      }
      const after = snapshot();
      // A LIST is a GET on the bucket in the S3 protocol: the local endpoint counts it as a GET; priced here as a GET (the cheaper), see the note printed.
      return { s3Get: after.get - before.get, s3PutOrList: after.put - before.put, documentsWritten: after.written - before.written };
    };
    const runs = 5;
    const totals = { endpoint: { s3Get: 0, s3PutOrList: 0, documentsWritten: 0 }, portal: { s3Get: 0, s3PutOrList: 0, documentsWritten: 0 } };
    for (let i = 0; i < runs; i++) {
      let before = snapshot();
      const body = sliceChangeBody({ service: 'myapp', port: 8888, resourceVersion: 1000 + i, addresses: [`10.42.2.${10 + i}`, '10.42.3.21'] });
      const response = await fetch(routeUrl(cp.info.apiUrl, 'postClusterEndpoints', { rg: 'demo' }), { method: 'POST', body, headers: signedHeaders(webhookKey, body).headers });
      if (response.status !== 202) throw new Error(`webhook refused: ${response.status}`);
      for (const [key, value] of Object.entries(await settle(before))) totals.endpoint[key as keyof Counted] += value;
      before = snapshot();
      const user = { id: `cost-user-${i}`, type: 'user.upserted', resourceGroup: 'demo', occurredAt: new Date(Date.now() + i * 1000).toISOString(), payload: { user: { name: `costuser${i}`, permissions: ['sudo-srv'] } } };
      if ((await post(user)).status !== 202) throw new Error('portal event refused');
      for (const [key, value] of Object.entries(await settle(before))) totals.portal[key as keyof Counted] += value;
    }
    const per = (t: Counted): Counted => ({ s3Get: t.s3Get / runs, s3PutOrList: t.s3PutOrList / runs, documentsWritten: t.documentsWritten / runs });
    return { endpoint: per(totals.endpoint), portal: per(totals.portal) };
  } finally {
    await cp.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const measured = await countPerEvent();
/** What is priced: the counted requests, or the what-if's PUTs per event. */
const whatIfPuts = settings['what-if-puts-per-event'];
const priced = whatIfPuts === undefined ? measured : { endpoint: { ...measured.endpoint, s3PutOrList: whatIfPuts }, portal: { ...measured.portal, s3PutOrList: whatIfPuts } };
const groups = settings['resource-groups'];
const gateways = groups * settings['gateways-per-group'];
const others = groups * (settings['vms-per-group'] - settings['gateways-per-group']);
const endpointEvents = (groups * settings['endpoint-changes-per-hour'] * MONTH_SECONDS) / 3600;
const portalEvents = (groups * settings['portal-changes-per-hour'] * MONTH_SECONDS) / 3600;
const events = endpointEvents + portalEvents;
const documentsWritten = endpointEvents * priced.endpoint.documentsWritten + portalEvents * priced.portal.documentsWritten;

/** Per month, by service: the control plane's own requests (the same with or without push). */
const controlPlane = {
  // Each event: one SQS send, one receive, one delete (batches make this an upper bound); one invocation of ingest or cluster, one of the reconciler (~300 ms at 512 MB, measured p50 ~11-15 ms of work; the rest is start-up and S3 latency).
  sqs: events * 3 * PRICES.sqsFifoRequest,
  lambda: events * 2 * PRICES.lambdaInvocation + events * 0.3 * 0.5 * PRICES.lambdaArmGbSecond,
  s3Events: endpointEvents * (priced.endpoint.s3Get * PRICES.s3Get + priced.endpoint.s3PutOrList * PRICES.s3PutOrList) + portalEvents * (priced.portal.s3Get * PRICES.s3Get + priced.portal.s3PutOrList * PRICES.s3PutOrList),
  // Each VM fetches each new document once (a 200 GET) and writes a report after applying it (a PUT).
  s3Fetches: documentsWritten * (PRICES.s3Get + PRICES.s3PutOrList),
  // The renewer's one Sign a day, and the status function's reads are left out (small, and on demand).
  kms: 30 * PRICES.kmsRequest,
};

function polling(gatewayPoll: number, otherPoll: number): number {
  return ((gateways * MONTH_SECONDS) / gatewayPoll + (others * MONTH_SECONDS) / otherPoll) * PRICES.s3Get;
}

const pollingOnly = { ...controlPlane, s3Polls: polling(settings['gateway-poll'], settings['other-poll']), iot: 0 };
const withPush = {
  ...controlPlane,
  s3Polls: polling(settings['safety-gateway'], settings['safety-other']),
  // Every pushed VM connected all month, and one message per document written (the unpushed VMs' share is small: they change rarely).
  iot: (gateways + groups * settings['pushed-others-per-group']) * (MONTH_SECONDS / 60) * PRICES.iotConnectionMinute + documentsWritten * PRICES.iotMessage,
};
const total = (costs: Record<string, number>) => Object.values(costs).reduce((sum, cost) => sum + cost, 0);
const money = (value: number) => `$${value.toLocaleString('en-US', { minimumFractionDigits: 0, maximumFractionDigits: 0 })}`.padStart(10);

const rows: Array<[string, keyof typeof pollingOnly]> = [
  ['S3 polls (conditional GETs, 304)', 's3Polls'],
  ['S3 fetches and reports (per document)', 's3Fetches'],
  ['S3 by the functions (per event)', 's3Events'],
  ['SQS FIFO', 'sqs'],
  ['Lambda (invocations, arm64 GB-s)', 'lambda'],
  ['IoT Core (connection minutes, messages)', 'iot'],
  ['KMS (renewer)', 'kms'],
];
const lines = [
  'Cost model: monthly AWS request costs (prices: bench/prices.ts, US East, read 2026-12-04)',
  `settings ${JSON.stringify(settings)}`,
  `fleet: ${groups.toLocaleString('en-US')} groups, ${(gateways + others).toLocaleString('en-US')} VMs (${gateways.toLocaleString('en-US')} gateways); ${Math.round(events).toLocaleString('en-US')} events a month, ${Math.round(documentsWritten).toLocaleString('en-US')} documents written`,
  `counted per event on the local control plane (5 each, alone): endpoint change ${measured.endpoint.s3Get.toFixed(1)} S3 GET/LIST, ${measured.endpoint.s3PutOrList.toFixed(1)} PUT, ${measured.endpoint.documentsWritten.toFixed(1)} documents; portal change ${measured.portal.s3Get.toFixed(1)} GET/LIST, ${measured.portal.s3PutOrList.toFixed(1)} PUT, ${measured.portal.documentsWritten.toFixed(1)} documents`,
  ...(whatIfPuts === undefined ? [] : [`WHAT-IF: priced with ${whatIfPuts} S3 PUTs per event instead of the counted ones (a design that writes less; not what the code does today)`]),
  '',
  `${'service'.padEnd(42)}${'polling only'.padStart(14)}${'with push'.padStart(14)}`,
  ...rows.map(([label, key]) => `${label.padEnd(42)}${money(pollingOnly[key]).padStart(14)}${money(withPush[key]).padStart(14)}`),
  `${'total'.padEnd(42)}${money(total(pollingOnly)).padStart(14)}${money(total(withPush)).padStart(14)}`,
  '',
  `gateway latency (webhook 202 -> serving): polling at ${settings['gateway-poll']} s gives p99 ~${(settings['gateway-poll'] + 0.1).toFixed(1)} s; push p99 is the nudge path (bench/agent.ts), safety poll ${settings['safety-gateway']} s`,
  `goal: under $1,000 a month with gateway p99 <= 1 s: ${total(withPush) < 1000 ? 'met with push' : total(pollingOnly) < 1000 && settings['gateway-poll'] <= 0.9 ? 'met by polling' : 'NOT met'} (${money(total(withPush)).trim()} with push)`,
  'note: LISTs are counted with GETs by the local endpoint and priced as GETs; the reconciler lists only when it repairs after a crash.',
];
process.stdout.write(`${lines.join('\n')}\n`);
