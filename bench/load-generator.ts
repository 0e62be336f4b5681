/**
 * The pipeline benchmark's load: concurrent HTTP clients on their own thread, so generating
 * requests does not take CPU from the control plane being measured.
 */
import { routePath } from '../shared/contract/routes.ts';
import { parentPort, workerData } from 'node:worker_threads';
import { signedHeaders, sliceChangeBody } from './webhook.ts';

export interface LoadPlan {
  readonly apiUrl: string;
  readonly token: string;
  /** Webhook key per resource group. */
  readonly keys: Record<string, string>;
  readonly rgs: readonly string[];
  readonly events: number;
  readonly concurrency: number;
  readonly firstResourceVersion: number;
  readonly vmAddress: (string)[];
}

const plan = workerData as LoadPlan;
const occurredAt = (i: number) => new Date(Date.UTC(2026, 10, 24, 12, 0, 0) + i).toISOString();

async function post(path: string, body: string, headers: Record<string, string>): Promise<void> {
  const response = await fetch(`${plan.apiUrl}${path}`, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });
  await response.arrayBuffer();
  if (response.status !== 202) throw new Error(`${path} answered ${response.status}`);
}

async function send(i: number): Promise<string> {
  const group = i % plan.rgs.length;
  const rg = plan.rgs[group]!;
  const kind = i % 3;
  if (kind === 0) {
    const event = { id: `tp-user-${i}`, type: 'user.upserted', resourceGroup: rg, occurredAt: occurredAt(i), payload: { user: { name: `u${i}`, permissions: i % 2 ? ['sudo-srv'] : [] } } };
    await post(routePath('postEvents', {}), JSON.stringify(event), { authorization: `Bearer ${plan.token}` });
    return event.id;
  }
  if (kind === 1) {
    const vm = { name: 'a2', roles: ['k3s-agent'], cpu: 4 + (i % 4), memoryMiB: 8192, disks: [{ sizeGiB: 50, kind: 'ssd' }], srvAddresses: [plan.vmAddress[group]!] };
    const event = { id: `tp-vm-${i}`, type: 'vm.upserted', resourceGroup: rg, occurredAt: occurredAt(i), payload: { vm } };
    await post(routePath('postEvents', {}), JSON.stringify(event), { authorization: `Bearer ${plan.token}` });
    return event.id;
  }
  const ips = [`10.42.${i % 250}.${(i % 200) + 1}`, `10.42.${(i + 1) % 250}.7`];
  const body = sliceChangeBody({ service: 'web', sliceName: 'web-abc', port: 8888, resourceVersion: plan.firstResourceVersion + i, addresses: ips });
  const signed = signedHeaders(plan.keys[rg]!, body);
  await post(routePath('postClusterEndpoints', { rg }), body, signed.headers);
  return signed.id;
}

const ids: string[] = [];
let next = 0;
const started = performance.now();
await Promise.all(
  Array.from({ length: plan.concurrency }, async () => {
    while (next < plan.events) ids.push(await send(next++));
  }),
);
parentPort!.postMessage({ ids, acceptedMs: performance.now() - started });
