/**
 * The HTTP API's route table, written once. The Lambda entries, the local server, the CDK
 * routes and the OpenAPI document are all made from it, and one router (functions/shared/api.ts)
 * serves it: a route added here appears everywhere, and a route without a handler does not
 * compile. Each route says who may call it, what it takes and what it answers.
 */
import type { z } from 'zod';
import { endpointWebhookBodySchema } from '../events/endpoint-events.ts';
import { kubeconfigDeliverySchema, MAX_KUBECONFIG_BYTES } from '../events/kubeconfig-events.ts';
import { clusterCaReportSchema } from '../events/cluster-ca-events.ts';
import { canaryReportSchema } from '../events/rollout-events.ts';
import { dnsLabel } from '../schema/primitives.ts';
import { userSchema } from '../schema/user.ts';
import {
  acceptedSchema,
  deadLetterListSchema,
  deadLetterReplaySchema,
  healthSchema,
  kubeconfigStoredSchema,
  openApiDocumentSchema,
  portalEventsBodySchema,
  replayedSchema,
  resourceGroupListSchema,
} from './api-bodies.ts';
import { statusViewSchema } from './status-view.ts';
import { historyViewSchema } from './history-view.ts';

export type HttpMethod = 'GET' | 'POST';

/**
 * Who may call: `portal` is the platform (a bearer token locally, IAM in AWS); `cluster` is a
 * resource group's cluster, signing with its own key (checked in the function: a VM has no
 * AWS identity); `agent` is one VM's agent, about itself only (SigV4 by the VM's own key locally;
 * in AWS an IAM-authorized route the agent policy opens for the VM's own path only); `public` is anyone. `page` is the status page's own files, which hold no data and
 * no secret (the page reads everything through portal routes): behind IAM in AWS like the
 * portal's routes, and locally served without a login to a browser on this machine only.
 */
export type RouteAuth = 'portal' | 'cluster' | 'agent' | 'public' | 'page';

/** The cloud functions serving the API (one Lambda each in AWS; one process locally). */
export const API_FUNCTIONS = ['ingest', 'cluster', 'status', 'dead-letters'] as const;
export type ApiFunction = (typeof API_FUNCTIONS)[number];

export interface ResponseSpec {
  readonly description: string;
  /** The body's schema; absent for a problem (`application/problem+json`). */
  readonly body?: z.ZodType;
  /** Default `application/json`. */
  readonly contentType?: string;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface RouteSpec {
  readonly method: HttpMethod;
  /** API Gateway's form: `{name}` for a path parameter. */
  readonly path: string;
  readonly function: ApiFunction;
  readonly auth: RouteAuth;
  readonly summary: string;
  /** Every `{name}` of the path with the schema its value must pass (else 400 naming it). */
  readonly pathParameters: Readonly<Record<string, z.ZodType<string>>>;
  /** A JSON body: the largest accepted (else 413) and its schema. */
  readonly body?: { readonly schema: z.ZodType; readonly maxBytes: number };
  /** The answers specific to this route; those every route of its kind gives are added by `responsesOf`. */
  readonly responses: Readonly<Record<number, ResponseSpec>>;
}

/** SQS takes messages of up to 256 KiB: a request of this size fits any batch split. */
export const MAX_QUEUED_BODY_BYTES = 256 * 1024;

const problem = (description: string): ResponseSpec => ({ description });
const rg = { rg: dnsLabel };

export const routes = {
  postEvents: {
    method: 'POST',
    path: '/v1/events',
    function: 'ingest',
    auth: 'portal',
    summary: 'Send portal events (one, or a batch)',
    pathParameters: {},
    body: { schema: portalEventsBodySchema, maxBytes: MAX_QUEUED_BODY_BYTES },
    responses: {
      202: { description: 'Every event is durably queued', body: acceptedSchema },
      400: problem('Invalid events: each named with field and reason; nothing was queued'),
    },
  },
  postClusterEndpoints: {
    method: 'POST',
    path: '/v1/clusters/{rg}/endpoints',
    function: 'cluster',
    auth: 'cluster',
    summary: "A cluster's EndpointSlice changes, signed with its key",
    pathParameters: rg,
    body: { schema: endpointWebhookBodySchema, maxBytes: MAX_QUEUED_BODY_BYTES },
    responses: {
      202: { description: 'Queued', body: acceptedSchema },
      400: problem('Invalid changes (field and reason); nothing was queued'),
    },
  },
  postClusterKubeconfig: {
    method: 'POST',
    path: '/v1/clusters/{rg}/kubeconfigs',
    function: 'cluster',
    auth: 'cluster',
    summary: 'A kubeconfig the k3s server issued for a sudo-srv user, signed with its key; stored for the portal only',
    pathParameters: rg,
    // The kubeconfig and the JSON around it.
    body: { schema: kubeconfigDeliverySchema, maxBytes: MAX_KUBECONFIG_BYTES + 4096 },
    responses: {
      202: { description: 'Stored; a kubeconfig.issued event is queued', body: kubeconfigStoredSchema },
      400: problem('Invalid delivery (field and reason); nothing was stored'),
    },
  },
  postClusterCa: {
    method: 'POST',
    path: '/v1/clusters/{rg}/ca',
    function: 'cluster',
    auth: 'cluster',
    summary: "The hash of the CA k3s made on the cluster's server, signed with its key: pinned, then agents join with the secure token form",
    pathParameters: rg,
    body: { schema: clusterCaReportSchema, maxBytes: 1024 },
    responses: {
      202: { description: 'Queued (a hash other than the pinned one is refused in the status)', body: acceptedSchema },
      400: problem('Not a CA hash (field and reason); nothing was queued'),
    },
  },
  postCanaryReport: {
    method: 'POST',
    path: '/v1/agents/{rg}/{vm}/canary-reports',
    function: 'cluster',
    auth: 'agent',
    summary: "The canary gateway of a rollout says whether it applied a generation: the other gateways follow an `applied`, a `failed` halts the rollout",
    pathParameters: { ...rg, vm: dnsLabel },
    body: { schema: canaryReportSchema, maxBytes: 8 * 1024 },
    responses: {
      202: { description: 'Queued (a report no rollout waits for changes nothing)', body: acceptedSchema },
      400: problem('Invalid report (field and reason); nothing was queued'),
    },
  },
  getResourceGroup: {
    method: 'GET',
    path: '/v1/resource-groups/{rg}',
    function: 'status',
    auth: 'portal',
    summary: "A resource group's status, with what each agent reported",
    pathParameters: rg,
    responses: {
      200: { description: 'Status', body: statusViewSchema },
      404: problem('No event of this resource group was processed yet'),
    },
  },
  getResourceGroupHistory: {
    method: 'GET',
    path: '/v1/resource-groups/{rg}/history',
    function: 'status',
    auth: 'portal',
    summary: "Which events produced which generation of each VM's document, and what its agent reported (the last generations per VM)",
    pathParameters: rg,
    responses: {
      200: { description: 'History', body: historyViewSchema },
      404: problem('No event of this resource group was processed yet'),
    },
  },
  listResourceGroups: {
    method: 'GET',
    path: '/v1/resource-groups',
    function: 'status',
    auth: 'portal',
    summary: 'The resource groups that have a status (some event of theirs was processed)',
    pathParameters: {},
    responses: { 200: { description: 'Their names, sorted', body: resourceGroupListSchema } },
  },
  getKubeconfig: {
    method: 'GET',
    path: '/v1/resource-groups/{rg}/kubeconfigs/{user}',
    function: 'status',
    auth: 'portal',
    summary: 'The newest kubeconfig issued for a user (a secret: never cached)',
    pathParameters: { ...rg, user: userSchema.shape.name },
    responses: {
      200: {
        description: 'The kubeconfig',
        contentType: 'application/yaml',
        headers: { 'x-ringmaster-expires-at': 'Until when its token works (RFC 3339)', 'cache-control': 'no-store' },
      },
      404: problem('None issued (send kubeconfig.requested), or the user lost access'),
    },
  },
  listDeadLetters: {
    method: 'GET',
    path: '/v1/dead-letters',
    function: 'dead-letters',
    auth: 'portal',
    summary: 'Events that could not be processed, with the reason',
    pathParameters: {},
    responses: { 200: { description: 'The dead letters (at most 100)', body: deadLetterListSchema } },
  },
  replayDeadLetters: {
    method: 'POST',
    path: '/v1/dead-letters/replay',
    function: 'dead-letters',
    auth: 'portal',
    summary: 'Send dead letters back to the queue once their cause is fixed',
    pathParameters: {},
    body: { schema: deadLetterReplaySchema, maxBytes: 64 * 1024 },
    responses: {
      200: { description: 'How many were sent back', body: replayedSchema },
      400: problem('Invalid replay request'),
    },
  },
  getOpenApi: {
    method: 'GET',
    path: '/v1/openapi.json',
    function: 'status',
    auth: 'public',
    summary: 'This document',
    pathParameters: {},
    responses: { 200: { description: 'OpenAPI 3.1', body: openApiDocumentSchema } },
  },
  getStatusPage: {
    method: 'GET',
    path: '/',
    function: 'status',
    auth: 'page',
    summary: 'The status page: every resource group at a glance (HTML; its data comes from the status API)',
    pathParameters: {},
    responses: { 200: { description: 'The page', contentType: 'text/html' } },
  },
  getResourceGroupPage: {
    method: 'GET',
    path: '/resource-groups/{rg}',
    function: 'status',
    auth: 'page',
    summary: "The status page of one resource group (the same page; it reads the group's status)",
    pathParameters: rg,
    responses: { 200: { description: 'The page', contentType: 'text/html' } },
  },
  getPageScript: {
    method: 'GET',
    path: '/page/app.js',
    function: 'status',
    auth: 'page',
    summary: "The status page's script",
    pathParameters: {},
    responses: { 200: { description: 'An ES module', contentType: 'text/javascript' } },
  },
  getPageStyle: {
    method: 'GET',
    path: '/page/style.css',
    function: 'status',
    auth: 'page',
    summary: "The status page's style sheet",
    pathParameters: {},
    responses: { 200: { description: 'CSS', contentType: 'text/css' } },
  },
  getHealth: {
    method: 'GET',
    path: '/healthz',
    function: 'status',
    auth: 'public',
    summary: 'Liveness',
    pathParameters: {},
    responses: { 200: { description: 'Serving', body: healthSchema } },
  },
} as const satisfies Record<string, RouteSpec>;

export type Routes = typeof routes;
export type RouteId = keyof Routes;
export const ROUTE_IDS = Object.keys(routes) as RouteId[];

/** The routes one function serves. */
export type RoutesOf<F extends ApiFunction> = { [K in RouteId]: Routes[K]['function'] extends F ? K : never }[RouteId];
export const routesOf = <F extends ApiFunction>(fn: F): Array<RoutesOf<F>> => ROUTE_IDS.filter((id): id is RoutesOf<F> => routes[id].function === fn);

/** The values of a route's path parameters, by name. */
export type PathParameters<K extends RouteId> = { readonly [P in keyof Routes[K]['pathParameters']]: string };

/** API Gateway's route key: `GET /v1/resource-groups/{rg}`. */
export const routeKey = (id: RouteId): string => `${routes[id].method} ${routes[id].path}`;

/** A route's path with its parameters filled in (percent-encoded). */
export function routePath<K extends RouteId>(id: K, parameters: PathParameters<K>): string {
  const values = parameters as Readonly<Record<string, string>>;
  return routes[id].path.replace(/\{(\w+)\}/g, (_, name: string) => {
    const value = values[name];
    if (value === undefined) throw new TypeError(`${routeKey(id)} needs the path parameter ${name}`);
    return encodeURIComponent(value);
  });
}

/** A route's URL under an API base URL (with or without a trailing slash or a stage path). */
export function routeUrl<K extends RouteId>(baseUrl: string, id: K, parameters: PathParameters<K>): string {
  return `${baseUrl.replace(/\/+$/, '')}${routePath(id, parameters)}`;
}

/** The route whose path pattern matches a concrete path, with any method (for 405 answers). */
const PATH_PATTERNS = ROUTE_IDS.map((id) => [id, new RegExp(`^${routes[id].path.replace(/\{\w+\}/g, '[^/]+')}/?$`)] as const);

export function routesMatchingPath(path: string): RouteId[] {
  return PATH_PATTERNS.filter(([, pattern]) => pattern.test(path)).map(([id]) => id);
}

/**
 * Every answer a route gives: its own, and those every route of its kind gives (a bad path
 * parameter or body, credentials, a replayed signature, size and content type, a failure).
 */
export function responsesOf(id: RouteId): Readonly<Record<number, ResponseSpec>> {
  const route: RouteSpec = routes[id];
  const takesInput = Object.keys(route.pathParameters).length > 0 || route.body !== undefined;
  const common: Record<number, ResponseSpec> = {};
  if (takesInput) common[400] = problem('A path parameter or the body is invalid: each named with field and reason');
  if (route.auth === 'portal') common[401] = { ...problem('Missing or wrong credentials'), headers: { 'www-authenticate': 'Bearer (local mode; in AWS, API Gateway answers for IAM)' } };
  if (route.auth === 'page') common[401] = problem('Not a browser on this machine (local mode; in AWS, API Gateway answers for IAM)');
  if (route.auth === 'agent') {
    common[401] = problem('Missing or bad signature (local mode; in AWS, API Gateway answers for IAM)');
    common[403] = problem("Signed with another VM's key");
  }
  if (route.auth === 'cluster') {
    common[401] = problem('Bad, stale or missing signature (or no such resource group)');
    common[409] = problem('Replay of an accepted request');
  }
  if (route.body) {
    common[413] = problem(`Body larger than ${route.body.maxBytes} bytes`);
    common[415] = problem('Not application/json');
  }
  common[500] = problem('The request failed; see the control plane log');
  return { ...common, ...route.responses };
}

type SuccessSchema<K extends RouteId> = Routes[K]['responses'] extends { readonly 200: { readonly body: infer S } } ? S : Routes[K]['responses'] extends { readonly 202: { readonly body: infer S } } ? S : never;
/** What a route answers when it succeeds: its 2xx body, parsed (a text body where it has no schema). */
export type SuccessBody<K extends RouteId> = SuccessSchema<K> extends z.ZodType ? z.output<SuccessSchema<K>> : string;

/** A route's success answer (its one 2xx). */
export function successOf(id: RouteId): ResponseSpec {
  const route: RouteSpec = routes[id];
  const status = Object.keys(route.responses).map(Number).find((code) => code >= 200 && code < 300);
  if (status === undefined) throw new TypeError(`${routeKey(id)} has no success answer`);
  return route.responses[status]!;
}
