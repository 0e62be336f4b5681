/**
 * From observed EndpointSlices to the pods a frontend sends traffic to. Follows the
 * EndpointSlice API's rules: `ready`/`serving` unset mean true, `terminating` unset means
 * false; a pod that is terminating but still serving is drained, not cut off.
 */
import { compareText } from './compare.ts';
import type { EndpointSlice, ServiceEndpoints } from './schema/endpoints.ts';
import type { Frontend } from './schema/frontend.ts';
import type { SlotState } from './schema/document.ts';

export interface PodEndpoint {
  /** Stable identity of the pod across updates: its targetRef, else its address. */
  readonly key: string;
  readonly address: string;
  readonly port: number;
  readonly state: SlotState;
}

const STATE_RANK: Record<SlotState, number> = { ready: 0, drain: 1, maint: 2 };

export function findService(observed: readonly ServiceEndpoints[], frontend: Frontend): ServiceEndpoints | undefined {
  return observed.find((entry) => entry.namespace === frontend.namespace && entry.service === frontend.serviceName);
}

/**
 * The port the pods of one slice listen on for this frontend. Usually `podPort`; when the
 * Service's `targetPort` moved, the Service port named by `lbServicePort` tells which
 * slice port is meant, so the frontend follows the pods (a limitation the spec lists, lifted).
 */
export function slicePort(slice: EndpointSlice, frontend: Frontend, service: ServiceEndpoints): number | undefined {
  const ports = slice.ports.filter((p): p is typeof p & { port: number } => typeof p.port === 'number' && (p.protocol ?? 'TCP') === 'TCP');
  if (ports.length === 0) return frontend.podPort;
  if (ports.some((p) => p.port === frontend.podPort)) return frontend.podPort;
  const servicePort = service.ports.find((p) => p.port === (frontend.lbServicePort ?? frontend.servicePort));
  if (servicePort) {
    const named = ports.find((p) => (p.name ?? '') === (servicePort.name ?? ''));
    if (named) return named.port;
  }
  return ports.length === 1 ? ports[0]!.port : undefined;
}

export function endpointState(conditions: EndpointSlice['endpoints'][number]['conditions']): SlotState {
  const ready = conditions.ready ?? true;
  const serving = conditions.serving ?? ready;
  const terminating = conditions.terminating ?? false;
  if (ready && !terminating) return 'ready';
  if (serving) return 'drain';
  return 'maint';
}

/** The pods behind a frontend with `podPort`, one entry per pod, sorted by key. */
export function podEndpoints(frontend: Frontend, observed: readonly ServiceEndpoints[]): PodEndpoint[] {
  if (frontend.podPort === undefined) return [];
  const service = findService(observed, frontend);
  if (!service) return [];
  const byKey = new Map<string, PodEndpoint & { family: number }>();
  for (const slice of service.slices) {
    if (slice.addressType === 'FQDN') continue;
    const port = slicePort(slice, frontend, service);
    if (port === undefined) continue;
    const family = slice.addressType === 'IPv4' ? 0 : 1;
    for (const endpoint of slice.endpoints) {
      const address = endpoint.addresses[0]!;
      const ref = endpoint.targetRef;
      const key = ref?.name ? `${ref.kind ?? 'Pod'}/${ref.namespace ?? service.namespace}/${ref.name}` : address;
      const candidate = { key, address, port, state: endpointState(endpoint.conditions), family };
      const existing = byKey.get(key);
      // A pod seen twice (two slices mid-update, or IPv4 and IPv6): keep its best state, IPv4 first.
      if (!existing || STATE_RANK[candidate.state] < STATE_RANK[existing.state] || (candidate.state === existing.state && family < existing.family)) {
        byKey.set(key, candidate);
      }
    }
  }
  return [...byKey.values()]
    .map(({ family: _family, ...endpoint }) => endpoint)
    .sort((a, b) => compareText(a.key, b.key));
}
