/**
 * Observed endpoints, in the shape the Kubernetes API returns (`discovery.k8s.io/v1`
 * EndpointSlice, `v1` Service ports), so the cluster webhook can forward objects unchanged.
 * Unknown Kubernetes fields are dropped, not refused: the API grows.
 */
import { z } from 'zod';
import { dnsLabel, serviceName } from './primitives.ts';

export const endpointConditionsSchema = z.object({
  ready: z.boolean().nullish(),
  serving: z.boolean().nullish(),
  terminating: z.boolean().nullish(),
});

export const endpointSchema = z.object({
  addresses: z.array(z.string().min(1).max(253)).min(1, 'must list at least one address'),
  conditions: endpointConditionsSchema.default({}),
  nodeName: z.string().max(253).nullish(),
  targetRef: z
    .object({
      kind: z.string().max(63).nullish(),
      name: z.string().max(253).nullish(),
      namespace: z.string().max(63).nullish(),
      uid: z.string().max(64).nullish(),
    })
    .nullish(),
});

export const endpointPortSchema = z.object({
  name: z.string().max(63).nullish(),
  port: z.number().int().min(1).max(65535).nullish(),
  protocol: z.enum(['TCP', 'UDP', 'SCTP']).nullish(),
});

export const endpointSliceSchema = z.object({
  metadata: z.object({
    name: z.string().min(1).max(253),
    resourceVersion: z.string().max(64).optional(),
  }),
  addressType: z.enum(['IPv4', 'IPv6', 'FQDN'], { error: 'must be "IPv4", "IPv6" or "FQDN"' }),
  endpoints: z.array(endpointSchema).nullish().transform((list) => list ?? []),
  ports: z.array(endpointPortSchema).nullish().transform((list) => list ?? []),
});

export const servicePortSchema = z.object({
  name: z.string().max(63).nullish(),
  port: z.number().int().min(1).max(65535),
  targetPort: z.union([z.number().int().min(1).max(65535), z.string().min(1).max(15)]).nullish(),
  protocol: z.enum(['TCP', 'UDP', 'SCTP']).nullish(),
});

export const serviceEndpointsSchema = z.strictObject({
  namespace: dnsLabel,
  service: serviceName,
  /** The Service's `spec.ports`, when known: lets a frontend follow a changed `targetPort`. */
  ports: z.array(servicePortSchema).default([]),
  slices: z.array(endpointSliceSchema).default([]),
});

export type EndpointSlice = z.output<typeof endpointSliceSchema>;
export type ServiceEndpoints = z.output<typeof serviceEndpointsSchema>;
export type ServicePort = z.output<typeof servicePortSchema>;
