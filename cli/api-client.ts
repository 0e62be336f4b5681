/**
 * How the operator commands reach a control plane: `--api-url`/`--token`, else the
 * RINGMASTER_API_URL/RINGMASTER_TOKEN environment, else the local control plane's defaults
 * (its token read from the data folder).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_API_PORT } from '../local/ports.ts';
import { localCredentialsSchema } from '../local/credentials.ts';
import { formatFieldErrors, fieldErrors } from '../shared/schema/errors.ts';
import { type PathParameters, type RouteId, routeKey, routePath, routes, type SuccessBody, successOf } from '../shared/contract/routes.ts';

export interface ConnectionOptions {
  readonly apiUrl?: string;
  readonly token?: string;
  readonly dataDir?: string;
  /** Sign requests with AWS credentials (SigV4, service execute-api) for a control plane in AWS. */
  readonly awsRegion?: string;
}

export class ApiError extends Error {
  readonly status: number;
  readonly body: unknown;
  constructor(status: number, body: unknown, message: string) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

export const DEFAULT_DATA_DIR = '.data';
export const DEFAULT_API_URL = `http://127.0.0.1:${DEFAULT_API_PORT}`;

export function resolveToken(options: ConnectionOptions): string | undefined {
  if (options.token) return options.token;
  if (process.env.RINGMASTER_TOKEN) return process.env.RINGMASTER_TOKEN;
  const file = join(options.dataDir ?? process.env.RINGMASTER_DATA_DIR ?? DEFAULT_DATA_DIR, 'credentials.json');
  if (!existsSync(file)) return undefined;
  const parsed = localCredentialsSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
  return parsed.success ? parsed.data.apiToken : undefined;
}

export class ApiClient {
  readonly baseUrl: string;
  readonly #token: string | undefined;
  readonly #awsRegion: string | undefined;

  constructor(options: ConnectionOptions = {}) {
    this.baseUrl = (options.apiUrl ?? process.env.RINGMASTER_API_URL ?? DEFAULT_API_URL).replace(/\/$/, '');
    this.#awsRegion = options.awsRegion;
    this.#token = options.awsRegion ? undefined : resolveToken(options);
  }

  /** Headers for a request: a bearer token, or a SigV4 signature over it. */
  async #headers(method: string, url: URL, body: string | undefined): Promise<Record<string, string>> {
    const headers: Record<string, string> = { ...(body === undefined ? {} : { 'content-type': 'application/json' }) };
    if (!this.#awsRegion) return this.#token ? { ...headers, authorization: `Bearer ${this.#token}` } : headers;
    // Loaded only for a control plane in AWS.
    const [{ defaultProvider }, { SignatureV4 }, { NodeSha256 }] = await Promise.all([import('@aws-sdk/credential-provider-node'), import('@smithy/signature-v4'), import('../adapters/sigv4-verifier.ts')]);
    const signer = new SignatureV4({ credentials: defaultProvider(), region: this.#awsRegion, service: 'execute-api', sha256: NodeSha256 });
    const signed = await signer.sign({
      method,
      protocol: url.protocol,
      hostname: url.hostname,
      ...(url.port ? { port: Number(url.port) } : {}),
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: { ...headers, host: url.host },
      ...(body === undefined ? {} : { body }),
    });
    return Object.fromEntries(Object.entries(signed.headers).filter(([name]) => name !== 'host').map(([name, value]) => [name, String(value)]));
  }

  /** Calls a route of the API's table and checks the answer against the table's description of it. */
  async call<K extends RouteId>(id: K, parameters: PathParameters<K>, body?: unknown): Promise<SuccessBody<K>> {
    const value = await this.request(routes[id].method, routePath(id, parameters), body);
    const schema = successOf(id).body;
    if (!schema) return value as SuccessBody<K>;
    const parsed = schema.safeParse(value);
    if (!parsed.success) {
      throw new ApiError(0, value, `${routeKey(id)}: the answer does not match the API's description (a control plane of another version?): ${formatFieldErrors(fieldErrors(parsed.error)).slice(0, 3).join('; ')}`);
    }
    return parsed.data as SuccessBody<K>;
  }

  async request(method: string, path: string, body?: unknown): Promise<unknown> {
    let response: Response;
    const url = new URL(`${this.baseUrl}${path}`);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    try {
      response = await fetch(url, { method, headers: await this.#headers(method, url, payload), ...(payload === undefined ? {} : { body: payload }) });
    } catch (error) {
      throw new ApiError(0, undefined, `cannot reach the control plane at ${this.baseUrl}: ${(error as Error).cause ?? (error as Error).message}`);
    }
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON: keep the text
    }
    if (!response.ok) {
      const detail = (parsed as { detail?: string } | undefined)?.detail ?? text;
      throw new ApiError(response.status, parsed, `${method} ${path}: ${response.status} ${detail}`);
    }
    return parsed;
  }
}
