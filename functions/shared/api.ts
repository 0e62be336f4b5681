/**
 * The one router of the HTTP API, made from the route table (shared/contract/routes.ts): each
 * Lambda entry serves its function's routes with it, the local server serves them all. Before
 * a handler runs, the route's own checks pass the same way everywhere: who may call (portal
 * routes), each path parameter against its schema (400 naming it), the body's content type,
 * size and JSON. Handlers throw `HttpProblem`s; middy's error handler renders them, and any
 * other error becomes a logged 500 that shows nothing of it.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import middy, { type MiddlewareObj } from '@middy/core';
import httpErrorHandler from '@middy/http-error-handler';
import httpRouterHandler from '@middy/http-router';
import type { Context } from 'aws-lambda';
import type { z } from 'zod';
import {
  type ApiFunction,
  type PathParameters,
  type RouteId,
  type Routes,
  type RoutesOf,
  type RouteSpec,
  routeKey,
  routes,
  routesMatchingPath,
} from '../../shared/contract/routes.ts';
import type { ProblemFieldError } from '../../shared/contract/problem.ts';
import { fieldErrors } from '../../shared/schema/errors.ts';
import { type AgentAuthorizer, type Authorizer, badRequest, type HttpEvent, HttpProblem, type HttpResult, type JsonBody, readJsonBody } from './http.ts';

type BodyOf<K extends RouteId> = Routes[K] extends { readonly body: object } ? JsonBody : undefined;

export interface ApiRequest<K extends RouteId> {
  readonly event: HttpEvent;
  /** Each path parameter, checked against the route's schema. */
  readonly parameters: PathParameters<K>;
  /** The JSON body of routes that take one: content type, size and syntax checked, the schema not yet. */
  readonly body: BodyOf<K>;
}

export type RouteHandler<K extends RouteId> = (request: ApiRequest<K>, context: Context) => Promise<HttpResult>;
export type RouteHandlers<K extends RouteId> = { readonly [P in K]: RouteHandler<P> };

export interface ApiOptions {
  /** Who may call the portal's routes. */
  readonly authorize: Authorizer;
  /** Who may load the status page's files (default: as the portal's routes). */
  readonly authorizePage?: Authorizer;
  /** Who may call an agent's routes (default: as the portal's routes: in AWS, IAM scoped to the VM's own path by the agent policy). */
  readonly authorizeAgent?: AgentAuthorizer;
  readonly logger: Logger;
}

export type ApiHandler = (event: HttpEvent, context: Context) => Promise<HttpResult>;

/** A route's body checked against its schema: the parsed value, or a 400 naming each bad field. */
export function parseBody<K extends RouteId>(id: K, body: JsonBody, detail: string): z.output<Routes[K] extends { readonly body: { readonly schema: infer S extends z.ZodType } } ? S : never> {
  const schema = (routes[id] as RouteSpec).body?.schema;
  if (!schema) throw new TypeError(`${routeKey(id)} takes no body`);
  const parsed = schema.safeParse(body.value);
  if (!parsed.success) throw badRequest(detail, fieldErrors(parsed.error));
  return parsed.data as never;
}

function checkedParameters(route: RouteSpec, event: HttpEvent): Record<string, string> {
  const values: Record<string, string> = {};
  const errors: ProblemFieldError[] = [];
  for (const [name, schema] of Object.entries(route.pathParameters)) {
    const parsed = schema.safeParse(event.pathParameters?.[name]);
    if (parsed.success) values[name] = parsed.data;
    else errors.push({ field: name, reason: parsed.error.issues[0]?.message ?? 'invalid' });
  }
  if (errors.length > 0) throw badRequest(`invalid ${errors.map((e) => e.field).join(' and ')} in the path`, errors);
  return values;
}

function routeEntry<K extends RouteId>(id: K, handler: RouteHandler<K>, options: ApiOptions) {
  const route: RouteSpec = routes[id];
  return async (event: HttpEvent, context: Context): Promise<HttpResult> => {
    // Credentials first: an unauthenticated caller learns nothing about names or bodies.
    if (route.auth === 'portal' && !options.authorize(event)) throw new HttpProblem(401, 'Unauthorized', 'missing or wrong credentials', undefined, { 'www-authenticate': 'Bearer' });
    if (route.auth === 'page' && !(options.authorizePage ?? options.authorize)(event)) throw new HttpProblem(401, 'Unauthorized', 'the status page is served to this machine only');
    const parameters = checkedParameters(route, event) as PathParameters<K>;
    const body = (route.body ? readJsonBody(event, route.body.maxBytes) : undefined) as BodyOf<K>;
    // An agent signs the body: checked once it is known to be whole (a body cut at the size limit is a 413, not a bad signature).
    if (route.auth === 'agent') {
      if (!options.authorizeAgent && !options.authorize(event)) throw new HttpProblem(401, 'Unauthorized', 'missing or wrong credentials');
      await options.authorizeAgent?.(event);
    }
    return handler({ event, parameters, body }, context);
  };
}

/** Unknown errors become a 500 that shows nothing of them (they are logged); problems pass as they are. */
function problemsOnly(logger: Logger): MiddlewareObj<HttpEvent, HttpResult> {
  return {
    onError: (request) => {
      if (request.error instanceof HttpProblem) {
        if (request.error.statusCode >= 500) logger.error('request failed', request.error);
        return;
      }
      logger.error('request failed', request.error as Error);
      request.error = new HttpProblem(500, 'Internal Server Error', 'the request failed; see the control plane log');
    },
  };
}

/** A path no served route has answers 404; a path served with other methods answers 405 with `Allow`. */
function noRoute(served: ReadonlySet<RouteId>, { method, path }: { method: string; path: string }): never {
  const others = routesMatchingPath(path).filter((id) => served.has(id)).map((id) => routes[id].method);
  if (others.length > 0) throw new HttpProblem(405, 'Method Not Allowed', `${method} is not allowed on ${path}`, undefined, { allow: [...new Set(others)].join(', ') });
  throw new HttpProblem(404, 'Not Found', `no route for ${method} ${path}`);
}

function createApi<K extends RouteId>(handlers: RouteHandlers<K>, options: ApiOptions): ApiHandler {
  const table = (Object.keys(handlers) as K[]).map((id) => ({ method: routes[id].method, path: routes[id].path, handler: routeEntry(id, handlers[id], options) }));
  const served = new Set(Object.keys(handlers) as K[]);
  const router = httpRouterHandler({ routes: table, notFoundResponse: (request) => noRoute(served, request) }) as unknown as ApiHandler;
  // onError runs last-used first: unknown errors are turned into problems, then rendered.
  const handler = middy<HttpEvent, HttpResult>(router).use(httpErrorHandler({ logger: false })).use(problemsOnly(options.logger));
  return (event, context) => handler(event, context);
}

/**
 * One Lambda's API: exactly the routes its function serves (a missing or extra one does not
 * compile). The function's name is there for the type check: it picks the routes required.
 */
export function functionApi<F extends ApiFunction>(_fn: F, handlers: RouteHandlers<RoutesOf<F>>, options: ApiOptions): ApiHandler {
  return createApi(handlers, options);
}

/** The whole API in one process (local mode): every route of the table. */
export function wholeApi(handlers: RouteHandlers<RouteId>, options: ApiOptions): ApiHandler {
  return createApi(handlers, options);
}
