/**
 * HTTP plumbing shared by the API functions (API Gateway HTTP API v2 events): JSON and
 * problem responses (RFC 9457), body decoding with a size limit, content-type checks and
 * bearer-token authentication. No domain logic here.
 */
import { timingSafeEqual } from 'node:crypto';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';

export type HttpEvent = APIGatewayProxyEventV2;
export type HttpResult = APIGatewayProxyStructuredResultV2;

export function json(statusCode: number, body: unknown, headers: Record<string, string> = {}): HttpResult {
  return { statusCode, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) };
}

export interface ProblemError {
  readonly field: string;
  readonly reason: string;
  readonly index?: number;
  readonly id?: string;
}

export function problem(statusCode: number, title: string, detail: string, errors?: readonly ProblemError[], headers: Record<string, string> = {}): HttpResult {
  return {
    statusCode,
    headers: { 'content-type': 'application/problem+json', ...headers },
    body: JSON.stringify({ type: 'about:blank', title, status: statusCode, detail, ...(errors ? { errors } : {}) }),
  };
}

export function header(event: HttpEvent, name: string): string | undefined {
  const wanted = name.toLowerCase();
  for (const [key, value] of Object.entries(event.headers ?? {})) if (key.toLowerCase() === wanted) return value;
  return undefined;
}

export type BodyResult = { ok: true; raw: string; value: unknown } | { ok: false; response: HttpResult };

/** Checks the content type and size and parses JSON; every failure is a precise 4xx. */
export function readJsonBody(event: HttpEvent, maxBytes: number): BodyResult {
  const type = header(event, 'content-type') ?? '';
  if (!/^application\/json\s*(;|$)/i.test(type)) {
    return { ok: false, response: problem(415, 'Unsupported Media Type', `send the body as application/json (got ${type ? `"${type}"` : 'no content type'})`) };
  }
  const raw = event.isBase64Encoded ? Buffer.from(event.body ?? '', 'base64').toString('utf8') : (event.body ?? '');
  const size = Buffer.byteLength(raw, 'utf8');
  if (size > maxBytes) return { ok: false, response: problem(413, 'Content Too Large', `the body has ${size} bytes; at most ${maxBytes} are accepted`) };
  if (raw.trim() === '') return { ok: false, response: problem(400, 'Bad Request', 'the body is empty', [{ field: 'body', reason: 'is required' }]) };
  try {
    return { ok: true, raw, value: JSON.parse(raw) };
  } catch (error) {
    return { ok: false, response: problem(400, 'Bad Request', 'the body is not valid JSON', [{ field: 'body', reason: `not valid JSON: ${(error as Error).message}` }]) };
  }
}

function equalSecrets(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

/** Who may call the portal-facing API. */
export type Authorizer = (event: HttpEvent) => boolean;

/** Local mode: a bearer token. */
export function bearerAuthorizer(token: string): Authorizer {
  return (event) => {
    const match = /^Bearer\s+(\S+)$/i.exec(header(event, 'authorization') ?? '');
    return match !== null && equalSecrets(match[1]!, token);
  };
}

export const unauthorized = (): HttpResult => problem(401, 'Unauthorized', 'missing or wrong credentials', undefined, { 'www-authenticate': 'Bearer' });

/** AWS: API Gateway checked the caller's IAM signature (route authorization AWS_IAM) before the function runs. */
export const iamAuthorizer: Authorizer = (event) => {
  const context = event.requestContext as HttpEvent['requestContext'] & { authorizer?: { iam?: unknown } };
  return Boolean(context.authorizer?.iam);
};

/**
 * One Lambda serving several HTTP API routes: dispatches on the exact route key API Gateway
 * sends (`GET /v1/resource-groups/{rg}`); anything else answers 404.
 */
export function routeHandler<C>(routes: Record<string, (event: HttpEvent, context: C) => Promise<HttpResult>>) {
  return async (event: HttpEvent, context: C): Promise<HttpResult> => {
    const route = routes[event.routeKey ?? ''];
    return route ? route(event, context) : problem(404, 'Not Found', `no such route: ${event.routeKey ?? '(none)'}`);
  };
}
