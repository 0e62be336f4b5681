/**
 * The API's OpenAPI 3.1 document, made from the route table and the zod schemas the handlers
 * validate with: nothing in it is written by hand, so it cannot drift from what runs. A test
 * checks real answers of every route against it.
 */
import { z } from 'zod';
import { SIGNATURE_HEADER, SIGNATURE_PATTERN, TIMESTAMP_HEADER, TIMESTAMP_PATTERN } from './cluster-request-signing.ts';
import { PROBLEM_CONTENT_TYPE, problemSchema } from './problem.ts';
import { ROUTE_IDS, type RouteId, type RouteSpec, responsesOf, routes } from './routes.ts';

const jsonSchema = (schema: z.ZodType, io: 'input' | 'output'): Record<string, unknown> => {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Record<string, unknown>;
  return rest;
};

const clusterSignatureHeaders = [
  { name: TIMESTAMP_HEADER, in: 'header', required: true, schema: { type: 'string', pattern: TIMESTAMP_PATTERN.source }, description: 'Unix time in seconds; at most 5 minutes off' },
  { name: SIGNATURE_HEADER, in: 'header', required: true, schema: { type: 'string', pattern: SIGNATURE_PATTERN.source }, description: 'HMAC-SHA256 of "<timestamp>.<body>" with the cluster\'s key' },
];

function operation(id: RouteId): Record<string, unknown> {
  const route: RouteSpec = routes[id];
  const responses = Object.fromEntries(
    Object.entries(responsesOf(id)).map(([status, response]) => {
      const content = response.body
        ? { [response.contentType ?? 'application/json']: { schema: jsonSchema(response.body, 'output') } }
        : response.contentType
          ? { [response.contentType]: { schema: { type: 'string' } } }
          : { [PROBLEM_CONTENT_TYPE]: { schema: { $ref: '#/components/schemas/Problem' } } };
      const headers = response.headers ? Object.fromEntries(Object.entries(response.headers).map(([name, description]) => [name, { description, schema: { type: 'string' } }])) : undefined;
      return [status, { description: response.description, content, ...(headers ? { headers } : {}) }];
    }),
  );
  return {
    operationId: id,
    summary: route.summary,
    // The page's files hold no data: locally a browser on the machine loads them without a token (`{}`).
    security: route.auth === 'portal' ? [{ portal: [] }] : route.auth === 'page' ? [{ portal: [] }, {}] : [],
    parameters: [
      ...Object.entries(route.pathParameters).map(([name, schema]) => ({ name, in: 'path', required: true, schema: jsonSchema(schema, 'input') })),
      ...(route.auth === 'cluster' ? clusterSignatureHeaders : []),
    ],
    ...(route.body ? { requestBody: { required: true, content: { 'application/json': { schema: jsonSchema(route.body.schema, 'input') } } } } : {}),
    responses,
  };
}

export function openApiDocument(serverUrl: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const id of ROUTE_IDS) {
    const route = routes[id];
    paths[route.path] = { ...paths[route.path], [route.method.toLowerCase()]: operation(id) };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Ringmaster control plane', version: '1', description: 'Portal events, cluster calls, resource-group status and dead letters.' },
    ...(serverUrl ? { servers: [{ url: serverUrl }] } : {}),
    components: {
      securitySchemes: { portal: { type: 'http', scheme: 'bearer', description: 'Local mode; in AWS the portal signs requests with IAM (SigV4).' } },
      schemas: { Problem: jsonSchema(problemSchema, 'output') },
    },
    paths,
  };
}
