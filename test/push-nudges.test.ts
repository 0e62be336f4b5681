/**
 * Push with polling as the safety net, locally: the real control plane announces every document
 * it stores over a server-sent-events stream; the agent (the real Agent and its listener, over
 * real HTTP with SigV4 signed by the VM's own key) fetches at once. Polling is slowed to ten
 * minutes here, so only a nudge can explain a change arriving in seconds. The daemons' commands
 * are stood in for (they succeed without running, so haproxy's runtime API is not there and the
 * apply of a change fails at it): what is tested is when the agent fetches and tries a generation.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { SignatureV4 } from '@smithy/signature-v4';
import { Agent } from '../agent/agent.ts';
import { listenForNudges } from '../agent/nudge-listener.ts';
import { NodeSha256 } from '../adapters/sigv4-verifier.ts';
import { agentCredentials } from '../shared/agent-identity.ts';
import { trustedRoot } from '../shared/contract/document-signing.ts';
import { NUDGE_SIGNING_SERVICE, nudgePath } from '../shared/contract/nudges.ts';
import { type LocalControlPlane, startLocalControlPlane } from '../local/control-plane.ts';
import { gatewayChanges, REFERENCE_EVENTS } from './helpers/gateway-changes.ts';
import { waitFor } from './helpers/control-plane-process.ts';

const work = mkdtempSync(join(tmpdir(), 'ringmaster-push-'));
const dataDir = join(work, 'data');
let cp: LocalControlPlane;
const { send, changeGateway, attempted, report } = gatewayChanges(() => cp, 'push');
const events = REFERENCE_EVENTS;
let masterKey: string;
let agent: Agent;
const stop = new AbortController();
let running: Promise<void>;
const connections: boolean[] = [];




beforeAll(async () => {
  cp = await startLocalControlPlane({ dataDir, apiPort: 0, s3Port: 0 });
  masterKey = JSON.parse(readFileSync(join(dataDir, 'credentials.json'), 'utf8')).masterKey;
  await send(events);
  await waitFor('web01\'s first document', async () => ((await cp.store.get('desired/demo/web01.json')) ? true : undefined));
  const credentials = agentCredentials(masterKey, 'demo', 'web01');
  const client = new S3Client({ endpoint: cp.info.s3Endpoint, region: cp.info.region, forcePathStyle: true, credentials });
  const root = join(work, 'vm');
  agent = new Agent({
    client,
    identity: { bucket: cp.info.bucket, resourceGroup: 'demo', vm: 'web01' },
    trustedKeys: cp.info.trustedRoots.map((text) => trustedRoot(text)),
    root,
    stateDir: join(work, 'state'),
    // Stand-in for haproxy, nginx, nft and systemd: every command succeeds without running.
    run: async () => ({ code: 0, output: '' }),
    push: {
      listen: (handlers, signal) =>
        listenForNudges(
          {
            url: cp.info.apiUrl,
            resourceGroup: 'demo',
            vm: 'web01',
            region: cp.info.region,
            credentials,
            onNudge: handlers.onNudge,
            onConnected: (connected) => {
              connections.push(connected);
              handlers.onConnected(connected);
            },
          },
          signal,
        ),
      // Ten minutes: a change seen within seconds came by a nudge.
      safetyPollSeconds: { gateway: 600, other: 600 },
    },
  });
  running = agent.run(stop.signal);
  await waitFor('the first document applied and the push channel up', async () => (agent.applied && cp.nudges.listeners('demo', 'web01') === 1 ? true : undefined));
}, 60_000);

afterAll(async () => {
  stop.abort();
  await running;
  await cp?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe('the agent is nudged when its document changes', () => {
  test('a change is fetched and tried at once, though polling waits ten minutes', async () => {
    const before = await attempted();
    await changeGateway();
    await waitFor('the new generation fetched and tried', async () => ((await attempted()) > before ? true : undefined), 10_000);
    // Its report says nudges reach it (the status shows it per VM).
    expect((await report())?.push).toEqual({ connected: true, since: expect.any(String) });
  }, 20_000);

  test('a nudge stream is only for the VM whose key signs for it: another VM\'s key 403, no or a bad signature 401', async () => {
    const url = new URL(nudgePath('demo', 'web01'), cp.info.apiUrl);
    const signedBy = async (credentials: { accessKeyId: string; secretAccessKey: string }) => {
      const signer = new SignatureV4({ credentials, region: cp.info.region, service: NUDGE_SIGNING_SERVICE, sha256: NodeSha256, uriEscapePath: false, applyChecksum: false });
      const signed = await signer.sign({ method: 'GET', protocol: 'http:', hostname: url.hostname, port: Number(url.port), path: url.pathname, headers: { host: url.host } });
      return fetch(url, { headers: signed.headers as Record<string, string> });
    };
    expect((await signedBy(agentCredentials(masterKey, 'demo', 'kube02'))).status).toBe(403);
    expect((await signedBy({ accessKeyId: 'vm.demo.web01', secretAccessKey: randomBytes(30).toString('base64url') })).status).toBe(401);
    expect((await fetch(url)).status).toBe(401);
    expect((await fetch(url, { method: 'POST' })).status).toBe(405);
    // The VM's own key opens a stream.
    const own = await signedBy(agentCredentials(masterKey, 'demo', 'web01'));
    expect(own.status).toBe(200);
    expect(own.headers.get('content-type')).toBe('text/event-stream');
    await own.body?.cancel();
  });

  test('the control plane restarted: the agent reconnects by itself and is nudged again', async () => {
    const api = Number(new URL(cp.info.apiUrl).port);
    const s3 = Number(new URL(cp.info.s3Endpoint).port);
    await cp.stop();
    await waitFor('the agent to notice', async () => (connections.at(-1) === false ? true : undefined), 10_000);
    const restartedAt = new Date();
    cp = await startLocalControlPlane({ dataDir, apiPort: api, s3Port: s3 });
    await waitFor('the push channel up again', async () => (cp.nudges.listeners('demo', 'web01') === 1 ? true : undefined), 15_000);
    // Reported at once (its poll on reconnecting), not at the next change: connected again since the restart.
    const again = await waitFor('the report of the channel back', async () => {
      const push = (await report())?.push;
      return push?.connected && Date.parse(push.since) >= restartedAt.getTime() ? push : undefined;
    }, 10_000);
    expect(again.connected).toBe(true);
    const before = await attempted();
    await changeGateway();
    await waitFor('the change after the restart fetched', async () => ((await attempted()) > before ? true : undefined), 10_000);
  }, 60_000);
});
