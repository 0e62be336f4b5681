/**
 * Push, with polling as the safety net: when a VM's document changes, the control plane nudges
 * that VM ("generation N is ready") and its agent fetches at once; polling goes on, slowed, so a
 * lost nudge costs at most one safety interval. Two channels carry the same nudges: a stream of
 * server-sent events from `ringmaster serve`, signed for with the agent's own key, and MQTT (AWS
 * IoT Core in AWS, any broker locally), on a topic only that VM may subscribe to. A VM hears
 * only its own nudges either way. A nudge carries no content: the agent still fetches and verifies the signed
 * document, so a forged nudge can at most cause one extra (conditional) GET.
 */
import { z } from 'zod';
import { dnsLabel } from '../schema/primitives.ts';
import type { KubernetesRole } from '../roles.ts';

export const nudgeSchema = z.strictObject({
  resourceGroup: dnsLabel,
  vm: dnsLabel,
  /** The generation now stored: an agent running it (or a newer one) has nothing to fetch. */
  generation: z.number().int().min(1),
});

export type Nudge = z.output<typeof nudgeSchema>;

/** Where a VM's agent listens for its nudges on the local control plane (GET, server-sent events). */
export const nudgePath = (resourceGroup: string, vm: string) => `/v1/agents/${resourceGroup}/${vm}/nudges`;
export const NUDGE_PATH_PATTERN = /^\/v1\/agents\/([a-z0-9-]{1,63})\/([a-z0-9-]{1,63})\/nudges$/;

/** The SigV4 service name the agent signs its subscription for (with the key it reads its document with). */
export const NUDGE_SIGNING_SERVICE = 'ringmaster';

/**
 * How often an agent still polls while its push channel is up: a nudge lost costs at most this.
 * A webgateway's changes (pods coming and going) are the urgent ones.
 */
export function safetyPollSeconds(roles: readonly KubernetesRole[] | undefined, settings: { gateway: number; other: number } = { gateway: 60, other: 300 }): number {
  return roles?.includes('webgateway') ? settings.gateway : settings.other;
}

/**
 * A VM's name on the MQTT broker (its AWS IoT thing name, its user on a local broker): group and
 * VM joined by `_`, which neither may contain (DNS labels), so two VMs never share one; IoT thing
 * names allow letters, digits, `:`, `_` and `-`, mosquitto user names anything but `:`.
 */
export const deviceName = (resourceGroup: string, vm: string) => `${resourceGroup}_${vm}`;

/** The MQTT topic a VM's nudges are published on: only that VM may subscribe to it (IoT policy, broker ACL). */
export const NUDGE_TOPIC_PREFIX = 'ringmaster/nudges/';
export const nudgeTopic = (resourceGroup: string, vm: string) => `${NUDGE_TOPIC_PREFIX}${deviceName(resourceGroup, vm)}`;
