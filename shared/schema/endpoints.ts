/**
 * Observed endpoints, in the shape the Kubernetes API returns (`discovery.k8s.io/v1`
 * EndpointSlice, `v1` Service ports), so the cluster webhook can forward objects unchanged.
 * Unknown Kubernetes fields are dropped, not refused: the API grows.
 */
import { z } from 'zod';
import { dnsLabel, hostName, ipAddress, serviceName } from './primitives.ts';

/**
 * Everything here comes from a customer's cluster and ends up in haproxy's config and runtime
 * commands: each field is held to what Kubernetes itself allows, so nothing can add lines.
 */
const objectName = z
  .string()
  .max(253)
  .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'must be a Kubernetes object name (DNS-1123 subdomain)');
const endpointAddress = z.union([ipAddress, hostName], { error: 'must be an IP address or a host name' });
const portName = z
  .string()
  .max(63)
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be a port name (DNS-1123 label)');

export const endpointConditionsSchema = z.object({
  ready: z.boolean().nullish(),
  serving: z.boolean().nullish(),
  terminating: z.boolean().nullish(),
});

export const endpointSchema = z.object({
  addresses: z.array(endpointAddress).min(1, 'must list at least one address').max(100),
  conditions: endpointConditionsSchema.default({}),
  nodeName: objectName.nullish(),
  targetRef: z
    .object({
      kind: z.string().regex(/^[A-Za-z][A-Za-z0-9]{0,62}$/, 'must be a Kubernetes kind such as "Pod"').nullish(),
      name: objectName.nullish(),
      namespace: dnsLabel.nullish(),
      uid: z.string().regex(/^[0-9a-f-]{1,64}$/, 'must be a Kubernetes uid').nullish(),
    })
    .nullish(),
});

export const endpointPortSchema = z.object({
  name: z.union([z.literal(''), portName]).nullish(),
  port: z.number().int().min(1).max(65535).nullish(),
  protocol: z.enum(['TCP', 'UDP', 'SCTP']).nullish(),
});

export const endpointSliceSchema = z.object({
  metadata: z.object({
    name: objectName,
    resourceVersion: z.string().regex(/^\d{1,20}$/, 'must be the resourceVersion the API server returned').optional(),
  }),
  addressType: z.enum(['IPv4', 'IPv6', 'FQDN'], { error: 'must be "IPv4", "IPv6" or "FQDN"' }),
  endpoints: z.array(endpointSchema).nullish().transform((list) => list ?? []),
  ports: z.array(endpointPortSchema).nullish().transform((list) => list ?? []),
});

export const servicePortSchema = z.object({
  name: z.union([z.literal(''), portName]).nullish(),
  port: z.number().int().min(1).max(65535),
  targetPort: z.union([z.number().int().min(1).max(65535), z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be a port number or name').max(15)]).nullish(),
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
