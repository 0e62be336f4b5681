/**
 * HTTP plumbing shared by the API functions (API Gateway HTTP API v2 events): JSON answers,
 * problems as errors that carry their status (RFC 9457; the router's middleware renders
 * them), body decoding with a size limit and content-type check, and who may call. No
 * domain logic here.
 */
import { timingSafeEqual } from 'node:crypto';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { type Problem, PROBLEM_CONTENT_TYPE, type ProblemFieldError } from '../../shared/contract/problem.ts';

export type HttpEvent = APIGatewayProxyEventV2;
export type HttpResult = APIGatewayProxyStructuredResultV2;

export function json(statusCode: number, body: unknown, headers: Record<string, string> = {}): HttpResult {
  return { statusCode, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) };
}

/**
 * A 4xx (or 5xx) answer, thrown. It has the shape @middy/http-error-handler renders
 * (`statusCode`, `expose`, a JSON `message`, `headers`), so a handler says what went wrong
 * and never builds the response itself.
 */
export class HttpProblem extends Error {
  readonly statusCode: number;
  readonly expose = true;
  readonly headers: Record<string, string>;
  readonly problem: Problem;

  constructor(statusCode: number, title: string, detail: string, errors?: readonly ProblemFieldError[], headers: Record<string, string> = {}) {
    const problem: Problem = { type: 'about:blank', title, status: statusCode, detail, ...(errors ? { errors: [...errors] } : {}) };
    super(JSON.stringify(problem));
    this.name = 'HttpProblem';
    this.statusCode = statusCode;
    this.problem = problem;
    // The error handler sets `Content-Type` from the message; this one wins.
    this.headers = { 'Content-Type': PROBLEM_CONTENT_TYPE, ...headers };
  }
}

export const badRequest = (detail: string, errors: readonly ProblemFieldError[]) => new HttpProblem(400, 'Bad Request', detail, errors);
export const notFound = (detail: string) => new HttpProblem(404, 'Not Found', detail);

export function header(event: HttpEvent, name: string): string | undefined {
  const wanted = name.toLowerCase();
  for (const [key, value] of Object.entries(event.headers ?? {})) if (key.toLowerCase() === wanted) return value;
  return undefined;
}

export interface JsonBody {
  /** The exact text received: a signature is checked over these bytes. */
  readonly raw: string;
  readonly value: unknown;
}

/** Checks the content type and size and parses JSON; every failure is a precise 4xx. */
export function readJsonBody(event: HttpEvent, maxBytes: number): JsonBody {
  const type = header(event, 'content-type') ?? '';
  if (!/^application\/json\s*(;|$)/i.test(type)) {
    throw new HttpProblem(415, 'Unsupported Media Type', `send the body as application/json (got ${type ? `"${type}"` : 'no content type'})`);
  }
  // JSON is UTF-8 (RFC 8259): a body declared in another charset would be misread, not parsed.
  const charset = /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(type)?.[1];
  if (charset && !/^utf-?8$/i.test(charset)) {
    throw new HttpProblem(415, 'Unsupported Media Type', `send the body as UTF-8 JSON (got charset ${charset})`);
  }
  const raw = event.isBase64Encoded ? Buffer.from(event.body ?? '', 'base64').toString('utf8') : (event.body ?? '');
  const size = Buffer.byteLength(raw, 'utf8');
  if (size > maxBytes) throw new HttpProblem(413, 'Content Too Large', `the body has ${size} bytes; at most ${maxBytes} are accepted`);
  if (raw.trim() === '') throw badRequest('the body is empty', [{ field: 'body', reason: 'is required' }]);
  try {
    return { raw, value: JSON.parse(raw) };
  } catch (error) {
    throw badRequest('the body is not valid JSON', [{ field: 'body', reason: `not valid JSON: ${(error as Error).message}` }]);
  }
}

function equalSecrets(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

/** Who may call the portal's routes. */
export type Authorizer = (event: HttpEvent) => boolean;
/** Checks a call an agent makes about itself (the route's `{rg}` and `{vm}`): throws the 401 or 403 it answers. */
export type AgentAuthorizer = (event: HttpEvent) => Promise<void>;

/** Local mode: a bearer token. */
export function bearerAuthorizer(token: string): Authorizer {
  return (event) => {
    const match = /^Bearer\s+(\S+)$/i.exec(header(event, 'authorization') ?? '');
    return match !== null && equalSecrets(match[1]!, token);
  };
}

/** AWS: API Gateway checked the caller's IAM signature (route authorization AWS_IAM) before the function runs. */
export const iamAuthorizer: Authorizer = (event) => {
  const context = event.requestContext as HttpEvent['requestContext'] & { authorizer?: { iam?: unknown } };
  return Boolean(context.authorizer?.iam);
};
