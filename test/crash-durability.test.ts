/**
 * Durability of the local control plane: SIGKILL in the middle of a burst, start again, and
 * every event that was answered 202 is applied exactly once.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { storeKeys } from '../shared/contract/store-layout.ts';
import { type ControlPlaneProcess, startControlPlaneProcess, waitFor } from './helpers/control-plane-process.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'ringmaster-crash-'));
let cp: ControlPlaneProcess | undefined;
afterAll(async () => {
  await cp?.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

const at = (i: number) => new Date(Date.UTC(2026, 10, 24, 10, 0, 0, i)).toISOString();
const provision = [
  { id: 'p-1', type: 'cluster.provisioned', resourceGroup: 'burst', occurredAt: at(0), payload: { settings: {} } },
  { id: 'p-2', type: 'vm.upserted', resourceGroup: 'burst', occurredAt: at(1), payload: { vm: { name: 'srv', roles: ['k3s-server'], cpu: 2, memoryMiB: 8192, disks: [{ sizeGiB: 30, kind: 'ssd' }], srvAddresses: ['172.22.0.2'], fqdn: 'srv.example.com' } } },
];
const userEvent = (i: number) => ({ id: `u-${i}`, type: 'user.upserted', resourceGroup: 'burst', occurredAt: at(100 + i), payload: { user: { name: `user${i}`, permissions: ['sudo-srv'] } } });

test('SIGKILL mid-burst and restart: every accepted event is applied exactly once', async () => {
  cp = await startControlPlaneProcess(dataDir);
  expect((await cp.api('POST', '/v1/events', provision)).status).toBe(202);

  const accepted: string[] = [];
  let next = 0;
  const total = 400;
  const killAfter = 120;
  let killed = false;
  const sender = async () => {
    while (next < total) {
      const event = userEvent(next++);
      try {
        const response = await cp!.api('POST', '/v1/events', event);
        if (response.status === 202) accepted.push(event.id);
      } catch {
        // The process is gone: this event was never accepted.
      }
      if (!killed && accepted.length >= killAfter) {
        killed = true;
        await cp!.kill('SIGKILL');
      }
    }
  };
  await Promise.all(Array.from({ length: 8 }, sender));
  expect(killed).toBe(true);
  expect(accepted.length).toBeGreaterThanOrEqual(killAfter);

  cp = await startControlPlaneProcess(dataDir);
  await waitFor('the queue to drain', async () => ((await cp!.api('GET', '/healthz')).body.queued === 0 ? true : undefined), 60000);
  const state = JSON.parse((await cp.store.get(storeKeys.state('burst')))!.body);
  const applied: string[] = state.appliedEventIds.filter((id: string) => id.startsWith('u-'));
  expect(new Set(applied).size).toBe(applied.length);
  for (const id of accepted) expect(applied).toContain(id);
  const users = new Set(state.description.users.map((u: { name: string }) => u.name));
  for (const id of accepted) expect(users.has(`user${id.slice(2)}`)).toBe(true);
  const server = JSON.parse((await cp.store.get(storeKeys.desired('burst', 'srv')))!.body);
  expect(server.kubernetes.accessUsers).toEqual([...users].sort());
}, 120000);
