/**
 * The local HTTP front door: node:http on 127.0.0.1, turning requests into the API Gateway
 * (HTTP API v2) events the cloud functions take, so the very same handlers answer. Bodies
 * are read up to a limit and no further.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { HttpEvent, HttpResult } from '../functions/shared/http.ts';
import { problem } from '../functions/shared/http.ts';
import { localContext } from './lambda-context.ts';

export type Invoke = (event: HttpEvent, context: ReturnType<typeof localContext>) => Promise<HttpResult>;

export interface Route {
  readonly method: string;
  /** e.g. `/v1/clusters/{rg}/endpoints` */
  readonly path: string;
  readonly name: string;
  readonly invoke: Invoke;
}

/** A little above the largest body any route takes, so an oversized one still gets its 413. */
const READ_LIMIT = 512 * 1024;

function compile(path: string): { regex: RegExp; names: string[] } {
  const names: string[] = [];
  const pattern = path.replace(/\{(\w+)\}/g, (_, name: string) => {
    names.push(name);
    return '([^/]+)';
  });
  return { regex: new RegExp(`^${pattern}$`), names };
}

async function readBody(request: IncomingMessage): Promise<{ body: Buffer; truncated: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > READ_LIMIT) return { body: Buffer.alloc(READ_LIMIT + 1), truncated: true };
    chunks.push(chunk as Buffer);
  }
  return { body: Buffer.concat(chunks), truncated: false };
}

function send(response: ServerResponse, result: HttpResult): void {
  const headers = Object.fromEntries(Object.entries(result.headers ?? {}).map(([k, v]) => [k, String(v)]));
  response.writeHead(result.statusCode ?? 200, headers);
  response.end(result.body ?? '');
}

export function createApiServer(routes: readonly Route[]): Server {
  const compiled = routes.map((route) => ({ ...route, ...compile(route.path) }));
  return createServer(async (request, response) => {
    try {
      const url = new URL(request.url ?? '/', 'http://localhost');
      const matches = compiled.map((route) => ({ route, match: route.regex.exec(url.pathname) })).filter((m) => m.match);
      const hit = matches.find((m) => m.route.method === request.method);
      if (!hit) {
        if (matches.length > 0) {
          request.resume();
          return send(response, problem(405, 'Method Not Allowed', `${request.method} is not allowed on ${url.pathname}`, undefined, { allow: matches.map((m) => m.route.method).join(', ') }));
        }
        request.resume();
        return send(response, problem(404, 'Not Found', `no route for ${url.pathname}`));
      }
      const { body } = await readBody(request);
      let pathParameters: Record<string, string>;
      try {
        pathParameters = Object.fromEntries(hit.route.names.map((name, i) => [name, decodeURIComponent(hit.match![i + 1]!)]));
      } catch {
        return send(response, problem(400, 'Bad Request', `the path ${url.pathname} is not valid percent-encoding`));
      }
      const headers = Object.fromEntries(Object.entries(request.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(',') : (v ?? '')]));
      const event: HttpEvent = {
        version: '2.0',
        routeKey: `${hit.route.method} ${hit.route.path}`,
        rawPath: url.pathname,
        rawQueryString: url.search.replace(/^\?/, ''),
        headers,
        pathParameters,
        isBase64Encoded: true,
        // An oversized body arrives as READ_LIMIT + 1 bytes: enough for the handler's 413.
        body: body.toString('base64'),
        requestContext: {
          accountId: 'local',
          apiId: 'local',
          domainName: request.headers.host ?? '127.0.0.1',
          domainPrefix: 'local',
          http: { method: request.method ?? 'GET', path: url.pathname, protocol: `HTTP/${request.httpVersion}`, sourceIp: request.socket.remoteAddress ?? '', userAgent: request.headers['user-agent'] ?? '' },
          requestId: randomUUID(),
          routeKey: `${hit.route.method} ${hit.route.path}`,
          stage: '$default',
          time: new Date().toISOString(),
          timeEpoch: Date.now(),
        },
      };
      send(response, await hit.route.invoke(event, localContext(hit.route.name)));
    } catch (error) {
      send(response, problem(500, 'Internal Server Error', 'the request failed; see the control plane log'));
      process.stderr.write(`request failed: ${(error as Error).stack ?? error}\n`);
    }
  });
}
