/**
 * Staged rollout with two real sandboxed gateways (issue 19): the real agent of each runs the
 * real haproxy under its own folder and loopback address, against the local control plane.
 * A frontend change haproxy rejects stops at the first gateway (the canary), whose agent
 * reports the failure signed with its own key; the second keeps its document and serves on;
 * the status says the rollout halted and why. The next, good change reaches the canary first,
 * its backends come back up, and only then the second gateway; the status shows each step.
 * Stood in for: systemd (the sandbox service manager), k3s' service load balancer (an HTTP
 * server at the k3s-agent's address and lbServicePort).
 */
import { readFileSync } from 'node:fs';
import type { StatusView } from '../shared/contract/status-view.ts';
import { storeKeys } from '../shared/contract/store-layout.ts';
import { reportOf, type SandboxedGateway, type SandboxedGroup, startSandboxedGateways } from './helpers/sandboxed-gateways.ts';
import { freePort } from './helpers/servers.ts';

let group: SandboxedGroup;
let port: number;
let lbPort: number;

async function get(address: string): Promise<string> {
  try {
    return await (await fetch(`http://${address}:${port}/`, { signal: AbortSignal.timeout(3000) })).text();
  } catch (error) {
    return (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
  }
}

const frontend = (serverOptions: string) => ({ type: 'frontend.upserted' as const, payload: { name: 'myapp', frontend: { binds: [`*:${port}`], lbServicePort: lbPort, haproxyExtraConfig: serverOptions } } });
/** The haproxy config on the gateway's disk (a sandboxed VM's paths already lead into its folder). */
const configOf = (gateway: SandboxedGateway) => readFileSync(gateway.layout.haproxyConfig, 'utf8');
const generationOf = (status: StatusView, vm: string) => status.documents.find((d) => d.vm === vm)!.generation!;

/** Samples the status back to back until stopped (a step can last a tenth of a second): what an operator watching it would have seen. */
function watchStatus() {
  const seen: StatusView[] = [];
  let running = true;
  const done = (async () => {
    while (running) {
      seen.push(await group.status());
      await new Promise((resolve) => setImmediate(resolve));
    }
  })();
  return {
    seen,
    stop: async () => {
      running = false;
      await done;
      return seen;
    },
  };
}

beforeAll(async () => {
  port = await freePort();
  lbPort = await freePort();
  group = await startSandboxedGateways({ count: 2, frontends: { myapp: { binds: [`*:${port}`], lbServicePort: lbPort, haproxyExtraConfig: 'weight 100' } }, resourceGroup: 'staged', addressSlot: 70 });
  for (const gateway of group.gateways) await group.waitForVm(gateway.vm, (view) => view.inSync, 'its first document applied');
}, 90_000);

afterAll(async () => {
  await group?.stop();
}, 60_000);

test('a config haproxy rejects stops at the canary: the other gateway keeps its document and serves, and the status says the rollout halted and why', async () => {
  const [web01, web02] = group.gateways as [SandboxedGateway, SandboxedGateway];
  const before = await group.status();
  const web02Config = configOf(web02);
  const watch = watchStatus();
  await group.send([frontend('no-such-keyword 1')]);

  const status = await waitForStatus((view) => view.rollout?.phase === 'halted', 'the rollout halted');
  const seen = await watch.stop();
  expect(status.rollout).toMatchObject({ phase: 'halted', canary: 'web01', held: ['web02'], generation: generationOf(status, 'web01') });
  expect(status.rollout!.reason).toMatch(/no-such-keyword/);
  // The canary's own report says the same, and it serves its last good config.
  expect(reportOf(status.documents.find((d) => d.vm === 'web01')!)).toMatchObject({ outcome: 'failed', attemptedGeneration: status.rollout!.generation });
  expect(await get(web01.address)).toBe(`lb kube02 (${group.loadBalancer}:${lbPort})\n`);
  // web02 never got it: the same stored document, the same config on disk, serving.
  expect(generationOf(status, 'web02')).toBe(generationOf(before, 'web02'));
  expect(configOf(web02)).toBe(web02Config);
  expect(await get(web02.address)).toBe(`lb kube02 (${group.loadBalancer}:${lbPort})\n`);
  // Each step was there to see: waiting for the canary, then halted.
  const phases = [...new Set(seen.map((view) => view.rollout?.phase ?? 'none'))];
  expect(phases).toEqual(expect.arrayContaining(['waiting', 'halted']));
  expect(phases.indexOf('waiting')).toBeLessThan(phases.indexOf('halted'));
}, 60_000);

test('the next good change resumes it: the canary applies it and its backends come back up, then the other gateway gets it; the rollout ends', async () => {
  const [web01, web02] = group.gateways as [SandboxedGateway, SandboxedGateway];
  const watch = watchStatus();
  const sent = Date.now();
  await group.send([frontend('weight 50')]);
  const done = await waitForStatus((view) => view.rollout === null && view.documents.filter((d) => d.roles.includes('webgateway')).every((d) => d.inSync) && configOf(web02).includes('weight 50'), 'both gateways on the new config');
  const allDone = Date.now() - sent;
  const seen = await watch.stop();
  expect(configOf(web01)).toContain('weight 50');
  expect(done.rollout).toBeNull();
  // The order an operator saw: web01 applied the new generation while web02 still had the old one.
  const canaryFirst = seen.find((view) => view.rollout?.phase === 'waiting' && reportOf(view.documents.find((d) => d.vm === 'web01')!)?.appliedGeneration === view.rollout.generation);
  expect(canaryFirst).toBeDefined();
  const web02Then = canaryFirst!.documents.find((d) => d.vm === 'web02')!;
  expect(web02Then.generation).toBeLessThan(generationOf(done, 'web02'));
  // This round never halted (the views from before the change still show the last one's halt).
  expect(seen.some((view) => view.rollout?.phase === 'halted' && view.rollout.generation === canaryFirst!.rollout!.generation)).toBe(false);
  for (const gateway of [web01, web02]) expect(await get(gateway.address)).toBe(`lb kube02 (${group.loadBalancer}:${lbPort})\n`);
  // Most of it is the canary's settle time after its reload (health checks: inter 2 s, fall 2).
  console.log(`staged rollout: change sent -> both gateways in sync on it ${allDone} ms`);
}, 90_000);

async function waitForStatus(until: (view: StatusView) => boolean, what: string, timeoutMs = 45_000): Promise<StatusView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const view = await group.status();
    if (until(view)) return view;
    if (Date.now() > deadline) {
      const state = JSON.stringify({ rollout: view.rollout, documents: view.documents.map((d) => ({ vm: d.vm, generation: d.generation, inSync: d.inSync, agent: reportOf(d) && { applied: reportOf(d)!.appliedGeneration, outcome: reportOf(d)!.outcome } })) });
      // What the agents did meanwhile: the only way to tell a lost nudge from a stuck apply.
      const logs = group.gateways.map((gateway) => `--- ${gateway.vm}'s agent (last lines):\n${gateway.log().split('\n').slice(-25).join('\n')}`);
      const stored = await Promise.all(group.gateways.map(async (gateway) => {
        const object = await group.controlPlane.store.get(storeKeys.desired(group.resourceGroup, gateway.vm));
        return `${gateway.vm} stored: ${object?.etag} ${object?.body.match(/"generation":\d+/)?.[0]}`;
      }));
      throw new Error(`timed out waiting for ${what}: ${state}\n${stored.join('\n')}\n${logs.join('\n')}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
