/**
 * Nudges published through AWS IoT Core's data plane (HTTPS, signed with the function's role,
 * which may publish under `ringmaster/nudges/` only): each VM's agent is subscribed to its own
 * topic over MQTT (see shared/contract/nudges.ts and the stack's IoT policy).
 */
import { IoTDataPlaneClient, PublishCommand } from '@aws-sdk/client-iot-data-plane';
import { nudgeTopic } from '../shared/contract/nudges.ts';
import type { NudgePublisher } from '../shared/ports.ts';

export class IotNudgePublisher implements NudgePublisher {
  readonly #client: IoTDataPlaneClient;

  /** `endpoint`: the account's `iot:Data-ATS` endpoint (https://…-ats.iot.<region>.amazonaws.com). */
  constructor(options: { endpoint: string; region?: string; credentials?: { accessKeyId: string; secretAccessKey: string } }) {
    this.#client = new IoTDataPlaneClient({ endpoint: options.endpoint, ...(options.region ? { region: options.region } : {}), ...(options.credentials ? { credentials: options.credentials } : {}) });
  }

  async publish(nudge: { resourceGroup: string; vm: string; generation: number }): Promise<void> {
    await this.#client.send(new PublishCommand({ topic: nudgeTopic(nudge.resourceGroup, nudge.vm), qos: 1, payload: Buffer.from(JSON.stringify(nudge)) }));
  }
}
