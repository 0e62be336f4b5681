/** Endpoint webhook calls as a cluster's watcher sends them: one EndpointSlice change, signed. */
import { clusterRequestEventId, clusterRequestHeaders, SIGNATURE_HEADER } from '../shared/contract/cluster-request-signing.ts';

export interface SliceChange {
  readonly service: string;
  readonly port: number;
  readonly resourceVersion: number;
  readonly addresses: readonly string[];
  readonly sliceName?: string;
}

export function sliceChangeBody(change: SliceChange): string {
  return JSON.stringify({
    changes: [
      {
        type: 'MODIFIED',
        object: {
          metadata: { name: change.sliceName ?? `${change.service}-1`, namespace: 'default', resourceVersion: String(change.resourceVersion), labels: { 'kubernetes.io/service-name': change.service } },
          addressType: 'IPv4',
          ports: [{ name: 'http', port: change.port, protocol: 'TCP' }],
          endpoints: change.addresses.map((address) => ({
            addresses: [address],
            conditions: { ready: true },
            targetRef: { kind: 'Pod', namespace: 'default', name: `${change.service}-${address.replaceAll('.', '-')}` },
          })),
        },
      },
    ],
  });
}

/** Headers for a body signed with the cluster's key, and the id the control plane queues it under. */
export function signedHeaders(key: string, body: string): { headers: Record<string, string>; id: string } {
  const timestamp = Math.floor(Date.now() / 1000);
  const headers = clusterRequestHeaders(key, timestamp, body);
  return { headers, id: clusterRequestEventId(headers[SIGNATURE_HEADER]!) };
}
