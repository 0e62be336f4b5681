/** The API's OpenAPI 3.1 document, generated from the same zod schemas the handlers validate with. */
import { z } from 'zod';
import { endpointWebhookBodySchema } from '../../shared/events/endpoint-events.ts';
import { kubeconfigDeliverySchema } from '../../shared/events/kubeconfig-events.ts';
import { MAX_EVENTS_PER_REQUEST, portalEventSchema } from '../../shared/events/portal-events.ts';
import { rgStatusSchema } from '../../shared/state/status.ts';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER } from '../../shared/webhook-signature.ts';

const schema = (s: z.ZodType, io: 'input' | 'output') => {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(s, { io, unrepresentable: 'any' }) as Record<string, unknown>;
  return rest;
};

const clusterParameters = [
  { name: 'rg', in: 'path', required: true, schema: { type: 'string' } },
  { name: TIMESTAMP_HEADER, in: 'header', required: true, schema: { type: 'string', pattern: '^\\d+$' }, description: 'Unix time in seconds; at most 5 minutes off' },
  { name: SIGNATURE_HEADER, in: 'header', required: true, schema: { type: 'string', pattern: '^v1=[0-9a-f]{64}$' }, description: 'HMAC-SHA256 of "<timestamp>.<body>" with the webhook key' },
];

/** A route a cluster calls, signed with its webhook key: the same checks and answers for each. */
const clusterRoute = (summary: string, bodySchema: string, accepted: string, invalid: string, tooLarge: string) => ({
  post: {
    summary,
    parameters: clusterParameters,
    requestBody: { required: true, content: { 'application/json': { schema: { $ref: `#/components/schemas/${bodySchema}` } } } },
    responses: {
      '202': { description: accepted },
      '400': problemResponse(invalid),
      '401': problemResponse('Bad, stale or missing signature'),
      '409': problemResponse('Replay of an accepted request'),
      '413': problemResponse(tooLarge),
      '415': problemResponse('Not application/json'),
    },
  },
});

const problemResponse = (description: string) => ({ description, content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } } });

export function openApiDocument(serverUrl: string): Record<string, unknown> {
  return {
    openapi: '3.1.0',
    info: { title: 'Ringmaster control plane', version: '1', description: 'Portal events, cluster endpoint webhooks and resource-group status.' },
    ...(serverUrl ? { servers: [{ url: serverUrl }] } : {}),
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'Local mode; in AWS the portal signs requests with IAM (SigV4).' } },
      schemas: {
        PortalEvent: schema(portalEventSchema, 'input'),
        EndpointWebhookBody: schema(endpointWebhookBodySchema, 'input'),
        KubeconfigDelivery: schema(kubeconfigDeliverySchema, 'input'),
        ResourceGroupStatus: schema(rgStatusSchema, 'output'),
        Problem: {
          type: 'object',
          required: ['title', 'status', 'detail'],
          properties: {
            type: { type: 'string' },
            title: { type: 'string' },
            status: { type: 'integer' },
            detail: { type: 'string' },
            errors: { type: 'array', items: { type: 'object', properties: { index: { type: 'integer' }, id: { type: 'string' }, field: { type: 'string' }, reason: { type: 'string' } }, required: ['field', 'reason'] } },
          },
        },
      },
    },
    paths: {
      '/v1/events': {
        post: {
          summary: 'Send portal events (one, or a batch)',
          security: [{ bearer: [] }],
          requestBody: {
            required: true,
            content: { 'application/json': { schema: { oneOf: [{ $ref: '#/components/schemas/PortalEvent' }, { type: 'array', minItems: 1, maxItems: MAX_EVENTS_PER_REQUEST, items: { $ref: '#/components/schemas/PortalEvent' } }] } } },
          },
          responses: {
            '202': { description: 'Every event is durably queued', content: { 'application/json': { schema: { type: 'object', properties: { accepted: { type: 'array', items: { type: 'string' } } } } } } },
            '400': problemResponse('Invalid events: each named with field and reason; nothing was queued'),
            '401': problemResponse('Missing or wrong credentials'),
            '413': problemResponse('Body larger than 256 KiB'),
            '415': problemResponse('Not application/json'),
          },
        },
      },
      '/v1/clusters/{rg}/endpoints': clusterRoute("A cluster's EndpointSlice changes, signed with its webhook key", 'EndpointWebhookBody', 'Queued', 'Invalid changes', 'Body larger than 256 KiB'),
      '/v1/clusters/{rg}/kubeconfigs': clusterRoute(
        'A kubeconfig the k3s server issued for a sudo-srv user, signed with the webhook key; stored for the portal only',
        'KubeconfigDelivery',
        'Stored; a kubeconfig.issued event is queued',
        'Invalid delivery (field and reason)',
        'Body too large',
      ),
      '/v1/resource-groups/{rg}/kubeconfigs/{user}': {
        get: {
          summary: 'The newest kubeconfig issued for a user (a secret: not cached)',
          security: [{ bearer: [] }],
          parameters: [
            { name: 'rg', in: 'path', required: true, schema: { type: 'string' } },
            { name: 'user', in: 'path', required: true, schema: { type: 'string' } },
          ],
          responses: {
            '200': { description: 'The kubeconfig; `x-ringmaster-expires-at` says until when its token works', content: { 'application/yaml': { schema: { type: 'string' } } } },
            '400': problemResponse('Invalid resource group or user name'),
            '401': problemResponse('Missing or wrong credentials'),
            '404': problemResponse('None issued (send kubeconfig.requested), or the user lost access'),
          },
        },
      },
      '/v1/resource-groups/{rg}': {
        get: {
          summary: "A resource group's status, with what each agent reported",
          security: [{ bearer: [] }],
          parameters: [{ name: 'rg', in: 'path', required: true, schema: { type: 'string' } }],
          responses: {
            '200': { description: 'Status', content: { 'application/json': { schema: { $ref: '#/components/schemas/ResourceGroupStatus' } } } },
            '401': problemResponse('Missing or wrong credentials'),
            '404': problemResponse('No event of this resource group was processed yet'),
          },
        },
      },
    },
  };
}
