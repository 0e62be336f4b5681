/**
 * The local HTTP front door: node:http on 127.0.0.1, turning requests into the API Gateway
 * (HTTP API v2) events the cloud functions take, so the very same router and handlers
 * answer (functions/shared/api.ts). Bodies are read up to a limit and no further.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { ROUTE_IDS, routes, type RouteSpec } from '../shared/contract/routes.ts';
import type { ApiHandler } from '../functions/shared/api.ts';
import { type HttpEvent, HttpProblem, type HttpResult } from '../functions/shared/http.ts';
import { localContext } from './lambda-context.ts';

/** One byte past the largest body any route takes: enough for that route's 413, and no more is read. */
const READ_LIMIT = Math.max(...ROUTE_IDS.map((id) => (routes[id] as RouteSpec).body?.maxBytes ?? 0)) + 1;

/** The body, or READ_LIMIT bytes standing for a longer one (which the router answers 413) when it was cut short. */
async function readBody(request: IncomingMessage): Promise<{ body: Buffer; cut: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > READ_LIMIT) return { body: Buffer.alloc(READ_LIMIT), cut: true };
    chunks.push(chunk as Buffer);
  }
  return { body: Buffer.concat(chunks), cut: false };
}

function send(response: ServerResponse, result: HttpResult, close = false): void {
  const headers = Object.fromEntries(Object.entries(result.headers ?? {}).map(([k, v]) => [k.toLowerCase(), String(v)]));
  // The rest of a body cut short is never read: the connection cannot carry another request.
  if (close) headers.connection = 'close';
  response.writeHead(result.statusCode ?? 200, headers);
  response.end(result.body ?? '');
}

function toEvent(request: IncomingMessage, url: URL, sourceIp: string, body: Buffer): HttpEvent {
  const headers = Object.fromEntries(Object.entries(request.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(',') : (v ?? '')]));
  const method = request.method ?? 'GET';
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: url.pathname,
    rawQueryString: url.search.replace(/^\?/, ''),
    headers,
    isBase64Encoded: true,
    body: body.toString('base64'),
    requestContext: {
      accountId: 'local',
      apiId: 'local',
      domainName: request.headers.host ?? '127.0.0.1',
      domainPrefix: 'local',
      http: { method, path: url.pathname, protocol: `HTTP/${request.httpVersion}`, sourceIp, userAgent: request.headers['user-agent'] ?? '' },
      requestId: randomUUID(),
      routeKey: '$default',
      stage: '$default',
      time: new Date().toISOString(),
      timeEpoch: Date.now(),
    },
  };
}

/** A request answered as a stream rather than by the functions (true when it was one). */
export type StreamHandler = (request: IncomingMessage, response: ServerResponse, url: URL) => Promise<boolean>;

export function createApiServer(api: ApiHandler, onError: (error: unknown) => void, streams?: StreamHandler): Server {
  return createServer(async (request, response) => {
    try {
      const url = new URL(request.url ?? '/', 'http://localhost');
      if (streams && (await streams(request, response, url))) return;
      // Read before the body: a body cut short ends the request stream, and its socket with it.
      const sourceIp = request.socket.remoteAddress ?? '';
      const { body, cut } = await readBody(request);
      send(response, await api(toEvent(request, url, sourceIp, body), localContext('ringmaster-api')), cut);
    } catch (error) {
      // The router answers every error itself; this is a failure of the front door.
      onError(error);
      const failed = new HttpProblem(500, 'Internal Server Error', 'the request failed; see the control plane log');
      if (!response.headersSent) send(response, { statusCode: failed.statusCode, headers: failed.headers, body: failed.message });
    }
  });
}

/**
 * The status page's files are served without a login to a browser on this machine only: the
 * server listens on loopback, and the Host header must name it too, so a web page elsewhere that
 * rebinds its own name to 127.0.0.1 (DNS rebinding) is refused. The page holds no data anyway:
 * its reads need the API token, which `ringmaster open` hands over in the URL fragment.
 */
export function servedToThisMachine(event: HttpEvent, apiUrl: string): boolean {
  const port = new URL(apiUrl).port;
  const host = Object.entries(event.headers ?? {}).find(([name]) => name.toLowerCase() === 'host')?.[1] ?? '';
  const loopbackSource = /^(127\.\d+\.\d+\.\d+|::1|::ffff:127\.\d+\.\d+\.\d+)$/.test(event.requestContext.http.sourceIp);
  return loopbackSource && [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`].includes(host.toLowerCase());
}
