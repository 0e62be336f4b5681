/**
 * Store credentials for one VM's agent where the store is ours (the local control plane's
 * embedded S3 endpoint): derived from the master key, so none has to be kept, and allowed
 * exactly what the design gives an agent: read its own document, write its own report. (In
 * AWS the same is a role with principal tags; see the CDK app.)
 */
import { createHmac } from 'node:crypto';
import { storeKeys } from './contract/store-layout.ts';

export interface AgentCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

const PREFIX = 'vm.';

export function agentCredentials(masterKey: string, resourceGroup: string, vm: string): AgentCredentials {
  return {
    accessKeyId: `${PREFIX}${resourceGroup}.${vm}`,
    secretAccessKey: createHmac('sha256', masterKey).update(`ringmaster/s3-agent/v1/${resourceGroup}/${vm}`).digest('base64url'),
  };
}

/** The resource group and VM an agent access key stands for (names are DNS labels: no dots). */
export function agentOfAccessKey(accessKeyId: string): { resourceGroup: string; vm: string } | undefined {
  const match = /^vm\.([a-z0-9-]{1,63})\.([a-z0-9-]{1,63})$/.exec(accessKeyId);
  return match ? { resourceGroup: match[1]!, vm: match[2]! } : undefined;
}

/** What an agent may do: GET (or HEAD) its document, PUT its report. Nothing else, no listing. */
export function agentMay(resourceGroup: string, vm: string, method: string, key: string | undefined): boolean {
  if (key === storeKeys.desired(resourceGroup, vm)) return method === 'GET' || method === 'HEAD';
  if (key === storeKeys.report(resourceGroup, vm)) return method === 'PUT';
  return false;
}

/** The secret of `accessKeyId` when it is the key of exactly this VM's agent; undefined for any other key. */
export function agentSecretFor(masterKey: string, accessKeyId: string, resourceGroup: string, vm: string): string | undefined {
  const agent = agentOfAccessKey(accessKeyId);
  return agent?.resourceGroup === resourceGroup && agent.vm === vm ? agentCredentials(masterKey, resourceGroup, vm).secretAccessKey : undefined;
}
