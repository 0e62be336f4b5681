/**
 * The push channel over MQTT, against a real broker nobody here wrote: Debian's mosquitto on
 * 127.0.0.1, with a password per VM (its user is its device name) and an ACL that lets a VM read
 * only its own topic and the control plane alone publish, as the IoT policy does in AWS. The real
 * local control plane publishes every document it writes; the real Agent subscribes with the
 * `mqtt` client. Polling is slowed to ten minutes, so only a nudge explains a change arriving in
 * seconds. The daemons' commands are stood in for: what is tested is when the agent fetches.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import mqtt from 'mqtt';
import { Agent } from '../agent/agent.ts';
import { listenForMqttNudges } from '../agent/mqtt-nudge-listener.ts';
import { agentCredentials } from '../shared/agent-identity.ts';
import { trustedRoot } from '../shared/contract/document-signing.ts';
import { deviceName, nudgeTopic } from '../shared/contract/nudges.ts';
import { type LocalControlPlane, type LocalOptions, startLocalControlPlane } from '../local/control-plane.ts';
import { gatewayChanges, REFERENCE_EVENTS } from './helpers/gateway-changes.ts';
import { waitFor } from './helpers/control-plane-process.ts';
import { type Mosquitto, startMosquitto } from './helpers/mosquitto.ts';
import { freePort } from './helpers/servers.ts';

const work = mkdtempSync(join(tmpdir(), 'ringmaster-mqtt-'));
// mosquitto started as root runs as its own user: it must be able to read its files here.
chmodSync(work, 0o755);
// Made for this run, never committed.
const PASSWORDS = { controlPlane: randomBytes(18).toString('base64url'), web01: randomBytes(18).toString('base64url'), kube02: randomBytes(18).toString('base64url') };
let broker: Mosquitto | undefined;
let brokerPort: number;
let cp: LocalControlPlane;
const { send, changeGateway, attempted } = gatewayChanges(() => cp, 'mqtt');
const events = REFERENCE_EVENTS;
let agent: Agent;
const stop = new AbortController();
let running: Promise<void>;
const connections: boolean[] = [];

/** mosquitto with users (mosquitto_passwd hashes the passwords) and a per-user topic ACL. */
async function startBroker(): Promise<void> {
  const passwords = join(work, 'passwd');
  writeFileSync(passwords, '');
  execFileSync('mosquitto_passwd', ['-b', passwords, 'control-plane', PASSWORDS.controlPlane]);
  execFileSync('mosquitto_passwd', ['-b', passwords, deviceName('demo', 'web01'), PASSWORDS.web01]);
  execFileSync('mosquitto_passwd', ['-b', passwords, deviceName('demo', 'kube02'), PASSWORDS.kube02]);
  writeFileSync(join(work, 'acl'), ['user control-plane', 'topic write ringmaster/nudges/#', '', '# every VM reads its own topic only (%u: its user, the device name)', 'pattern read ringmaster/nudges/%u', ''].join('\n'));
  chmodSync(passwords, 0o644);
  broker = await startMosquitto(work, brokerPort, ['allow_anonymous false', `password_file ${passwords}`, `acl_file ${join(work, 'acl')}`]);
}

async function stopBroker(): Promise<void> {
  await broker?.stop();
}

beforeAll(async () => {
  brokerPort = await freePort();
  await startBroker();
  const options: LocalOptions = { dataDir: join(work, 'data'), apiPort: 0, s3Port: 0, mqtt: { url: `mqtt://127.0.0.1:${brokerPort}`, username: 'control-plane', password: PASSWORDS.controlPlane } };
  cp = await startLocalControlPlane(options);
  await send(events);
  await waitFor("web01's first document", async () => ((await cp.store.get('desired/demo/web01.json')) ? true : undefined));
  const masterKey = JSON.parse(readFileSync(join(work, 'data', 'credentials.json'), 'utf8')).masterKey;
  const credentials = agentCredentials(masterKey, 'demo', 'web01');
  agent = new Agent({
    client: new S3Client({ endpoint: cp.info.s3Endpoint, region: cp.info.region, forcePathStyle: true, credentials }),
    identity: { bucket: cp.info.bucket, resourceGroup: 'demo', vm: 'web01' },
    trustedKeys: cp.info.trustedRoots.map((text) => trustedRoot(text)),
    root: join(work, 'vm'),
    stateDir: join(work, 'state'),
    // Stand-in for haproxy, nginx, nft and systemd: every command succeeds without running.
    run: async () => ({ code: 0, output: '' }),
    push: {
      listen: (handlers, signal) =>
        listenForMqttNudges(
          {
            url: `mqtt://127.0.0.1:${brokerPort}`,
            resourceGroup: 'demo',
            vm: 'web01',
            password: PASSWORDS.web01,
            onNudge: handlers.onNudge,
            onConnected: (connected) => {
              connections.push(connected);
              handlers.onConnected(connected);
            },
          },
          signal,
        ),
      safetyPollSeconds: { gateway: 600, other: 600 },
    },
  });
  running = agent.run(stop.signal);
  await waitFor('the first document tried and the subscription up', async () => ((await attempted()) > 0 && connections.at(-1) === true ? true : undefined));
}, 60_000);

afterAll(async () => {
  stop.abort();
  await running;
  await cp?.stop();
  await stopBroker();
  rmSync(work, { recursive: true, force: true });
});

describe('nudges over MQTT (mosquitto)', () => {
  test('a document written is published on the VM\'s topic, and its agent fetches it at once', async () => {
    const before = await attempted();
    await changeGateway();
    await waitFor('the new generation fetched and tried', async () => ((await attempted()) > before ? true : undefined), 10_000);
  }, 20_000);

  test('a VM may read only its own topic, and only the control plane may publish', async () => {
    const kube02 = await mqtt.connectAsync(`mqtt://127.0.0.1:${brokerPort}`, { clientId: 'kube02-snoop', username: deviceName('demo', 'kube02'), password: PASSWORDS.kube02, protocolVersion: 5 });
    try {
      // mosquitto checks read access when it delivers: kube02 may ask for web01's topic, and gets nothing from it.
      const heard: string[] = [];
      kube02.on('message', (topic) => heard.push(topic));
      await kube02.subscribeAsync([nudgeTopic('demo', 'web01'), nudgeTopic('demo', 'kube02')], { qos: 1 });
      const before = await attempted();
      await changeGateway();
      await waitFor('web01 nudged and fetching', async () => ((await attempted()) > before ? true : undefined), 10_000);
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(heard).not.toContain(nudgeTopic('demo', 'web01'));
      // A forged nudge from a VM is dropped by the broker (MQTT 5 answers "not authorized").
      const answer = await kube02.publishAsync(nudgeTopic('demo', 'web01'), JSON.stringify({ resourceGroup: 'demo', vm: 'web01', generation: 99 }), { qos: 1 }).then(
        (packet) => (packet as { reasonCode?: number } | undefined)?.reasonCode ?? 0,
        (error: Error) => error.message,
      );
      expect(answer === 135 || /not authori[sz]ed/i.test(String(answer))).toBe(true);
    } finally {
      await kube02.endAsync(true);
    }
    await expect(mqtt.connectAsync(`mqtt://127.0.0.1:${brokerPort}`, { clientId: 'intruder', username: deviceName('demo', 'web01'), password: 'wrong', protocolVersion: 5, reconnectPeriod: 0 })).rejects.toThrow(/Bad User Name or Password|Not authorized/i);
  });

  test('the broker down: polling carries on; back: the agent subscribes again by itself and is nudged', async () => {
    await stopBroker();
    await waitFor('the agent to notice the broker gone', async () => (connections.at(-1) === false ? true : undefined), 10_000);
    await startBroker();
    await waitFor('the subscription back', async () => (connections.at(-1) === true ? true : undefined), 20_000);
    const before = await attempted();
    // The control plane's own client reconnects too (a second apart).
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await changeGateway();
    await waitFor('the change after the broker came back fetched', async () => ((await attempted()) > before ? true : undefined), 10_000);
  }, 60_000);
});
