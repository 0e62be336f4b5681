/**
 * The agent's end of the push channel over MQTT (AWS IoT Core, or a broker such as mosquitto):
 * it subscribes to its own topic (shared/contract/nudges.ts; the broker lets it read no other)
 * and passes each nudge on. The MQTT client reconnects by itself (a second, then up to five
 * apart) and subscribes again; the agent is told whether nudges can reach it, so it polls
 * slowly only while they can.
 */
import { readFile } from 'node:fs/promises';
import mqtt from 'mqtt';
import { deviceName, type Nudge, nudgeSchema, nudgeTopic } from '../shared/contract/nudges.ts';

export interface MqttNudgeListenerOptions {
  /** mqtt://, mqtts:// (AWS IoT: mqtts://<endpoint>:8883), ws:// or wss://. */
  readonly url: string;
  readonly resourceGroup: string;
  readonly vm: string;
  /** A local broker's password for this VM (its user is the device name); none with certificates. */
  readonly password?: string;
  /** AWS IoT: the device's certificate and key, and the CA the endpoint's certificate chains to (PEM files). */
  readonly certFile?: string;
  readonly keyFile?: string;
  readonly caFile?: string;
  readonly onNudge: (nudge: Nudge) => void;
  readonly onConnected?: (connected: boolean) => void;
  readonly log?: (message: string, fields?: Record<string, unknown>, level?: 'info' | 'warn') => void;
}

/** Listens until `signal` aborts. */
export async function listenForMqttNudges(options: MqttNudgeListenerOptions, signal: AbortSignal): Promise<void> {
  const name = deviceName(options.resourceGroup, options.vm);
  const topic = nudgeTopic(options.resourceGroup, options.vm);
  const [cert, key, ca] = await Promise.all([options.certFile, options.keyFile, options.caFile].map((file) => (file ? readFile(file) : undefined)));
  const client = mqtt.connect(options.url, {
    // AWS IoT ties a connection to its thing by the client id; a local broker by the user name.
    clientId: name,
    username: name,
    ...(options.password !== undefined ? { password: options.password } : {}),
    ...(cert && key ? { cert, key } : {}),
    ...(ca ? { ca } : {}),
    protocolVersion: 5,
    clean: true,
    reconnectPeriod: 1000,
    connectTimeout: 10_000,
    keepalive: 30,
  });
  let failures = 0;
  client.on('connect', () => {
    client.subscribe(topic, { qos: 1 }, (error, granted) => {
      const refused = error ?? (granted?.some((grant) => grant.qos >= 128) ? new Error(`the broker refused the subscription to ${topic}`) : undefined);
      if (refused) {
        options.log?.('push channel: subscription refused; polling carries on', { error: refused.message }, 'warn');
        return;
      }
      if (failures > 0) options.log?.('push channel connected again', { failedAttempts: failures });
      failures = 0;
      options.onConnected?.(true);
    });
  });
  client.on('message', (_topic, payload) => {
    let value: unknown;
    try {
      value = JSON.parse(payload.toString('utf8'));
    } catch {
      return;
    }
    const nudge = nudgeSchema.safeParse(value);
    if (nudge.success && nudge.data.resourceGroup === options.resourceGroup && nudge.data.vm === options.vm) options.onNudge(nudge.data);
  });
  client.on('close', () => {
    options.onConnected?.(false);
  });
  client.on('error', (error) => {
    failures++;
    if (failures === 1 || failures % 60 === 0) options.log?.('push channel unavailable; polling carries on', { error: error.message, attempt: failures }, 'warn');
  });
  client.on('offline', () => {
    failures++;
    if (failures === 1 || failures % 60 === 0) options.log?.('push channel unavailable; polling carries on', { attempt: failures }, 'warn');
  });
  // mqtt.js backs off on its own only at a fixed period: cap the retries at five seconds apart.
  client.on('reconnect', () => {
    client.options.reconnectPeriod = Math.min(5000, 1000 * 2 ** Math.min(failures, 3));
  });
  await new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    signal.addEventListener('abort', () => resolve(), { once: true });
  });
  await client.endAsync(true);
}
