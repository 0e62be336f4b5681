/**
 * Cluster secrets are derived, never drawn: HMAC-SHA256 under a key only the control plane (its
 * master key) or the user (the token file of `ringmaster plan`) holds, over the resource group,
 * a scope and what the secret is for. The same inputs always give the same secret, so a replay
 * of the events, or a second `ringmaster plan` of the same description, writes byte-identical
 * documents; without the key no secret can be computed, and one secret reveals nothing of the
 * key or of the others (a webgateway's agent token says nothing of the server token).
 */
import { createHmac } from 'node:crypto';

export type SecretPurpose = 'cluster-token' | 'agent-token' | 'webhook-key' | 'datastore-password';

/**
 * `scope` separates the clusters one key makes secrets for: the provisioning event's id in the
 * control plane (a cluster provisioned again gets new secrets), `plan` for `ringmaster plan`.
 */
export function deriveSecret(key: string, resourceGroup: string, scope: string, purpose: SecretPurpose): string {
  return createHmac('sha256', key).update(`ringmaster/${purpose}/v1/${resourceGroup}/${scope}`).digest('hex');
}

/**
 * The k3s agent token (`agent-token`: "used to join agents to the cluster, but not servers"),
 * derived from the server token, so a cluster (and a plan) has one without anything stored, and
 * holding it (an internet-facing webgateway does) never reveals the server token.
 */
export function agentTokenOf(serverToken: string, resourceGroup: string): string {
  return deriveSecret(serverToken, resourceGroup, 'k3s', 'agent-token');
}

/**
 * What an agent or the webgateway joins with: k3s' secure token form (`K10<CA hash>::node:<agent
 * token>`) once the server's CA is known, so the node checks the server's CA before it sends its
 * credentials (k3s docs, `k3s token`: "The secure format is preferred"); the short form (the
 * agent token alone) until then. The user name is k3s' own for agents (it joins them as `node`).
 */
export function agentJoinToken(agentToken: string, clusterCaHash: string | undefined): string {
  return clusterCaHash === undefined ? agentToken : `K10${clusterCaHash}::node:${agentToken}`;
}
