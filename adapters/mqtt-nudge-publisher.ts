/**
 * Nudges published over MQTT, on each VM's own topic (shared/contract/nudges.ts), with the control
 * plane's own broker account (the only one allowed to publish there). QoS 1: the broker keeps a
 * nudge for a subscriber that is reconnecting in a persistent session; a nudge that is lost all
 * the same costs the agent one safety poll.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { nudgeTopic } from '../shared/contract/nudges.ts';
import type { NudgePublisher } from '../shared/ports.ts';

export interface MqttNudgePublisherOptions {
  readonly url: string;
  readonly username?: string;
  readonly password?: string;
  readonly onError?: (error: Error) => void;
}

export class MqttNudgePublisher implements NudgePublisher {
  readonly #client: MqttClient;

  constructor(options: MqttNudgePublisherOptions) {
    this.#client = mqtt.connect(options.url, {
      clientId: `ringmaster-control-plane-${process.pid}`,
      ...(options.username !== undefined ? { username: options.username } : {}),
      ...(options.password !== undefined ? { password: options.password } : {}),
      protocolVersion: 5,
      reconnectPeriod: 1000,
    });
    this.#client.on('error', (error) => options.onError?.(error));
  }

  async publish(nudge: { resourceGroup: string; vm: string; generation: number }): Promise<void> {
    // Not connected (the broker away): dropped rather than queued without bound; polling covers it.
    if (!this.#client.connected) return;
    await this.#client.publishAsync(nudgeTopic(nudge.resourceGroup, nudge.vm), JSON.stringify(nudge), { qos: 1 });
  }

  async close(): Promise<void> {
    await this.#client.endAsync(true);
  }
}
