/**
 * The OpenAPI document the control plane serves is a promise to every client: this test holds
 * the running server to it. It starts a local control plane, fetches `GET /v1/openapi.json`
 * from it, compiles a JSON Schema validator for every documented answer (path, method,
 * status, content type), then calls every route of the table over real HTTP, successes and
 * failures, and checks each answer against the document: a documented status, a documented
 * content type, a body its schema accepts. A route or a status added to the table without a
 * call here fails the last test.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { parse as parseYaml } from 'yaml';
import { type LocalControlPlane, startLocalControlPlane } from '../local/control-plane.ts';
import { agentRequestHeaders } from '../agent/canary-reporter.ts';
import { agentCredentials } from '../shared/agent-identity.ts';
import type { AgentReportDraft } from '../shared/contract/agent-report.ts';
import { clusterRequestHeaders, SIGNATURE_HEADER, TIMESTAMP_HEADER } from '../shared/contract/cluster-request-signing.ts';
import { type PathParameters, responsesOf, ROUTE_IDS, type RouteId, routeKey, routePath, routes, type RouteSpec, routeUrl } from '../shared/contract/routes.ts';
import type { StatusView } from '../shared/contract/status-view.ts';
import { storeKeys } from '../shared/contract/store-layout.ts';
import { waitFor } from './helpers/control-plane-process.ts';
import { ROOT } from './helpers/fixtures.ts';

// ---------------------------------------------------------------------------------------------
// The served document, as far as this test reads it (OpenAPI 3.1).

interface MediaTypeObject {
  readonly schema?: unknown;
}
interface ResponseObject {
  readonly description: string;
  readonly content?: Readonly<Record<string, MediaTypeObject>>;
  readonly headers?: Readonly<Record<string, unknown>>;
}
interface ParameterObject {
  readonly name: string;
  readonly in: string;
  readonly schema?: unknown;
}
interface OperationObject {
  readonly operationId?: string;
  readonly parameters?: readonly ParameterObject[];
  readonly requestBody?: { readonly content: Readonly<Record<string, MediaTypeObject>> };
  readonly responses: Readonly<Record<string, ResponseObject>>;
}
interface OpenApiDocument {
  readonly openapi: string;
  readonly servers?: ReadonlyArray<{ readonly url: string }>;
  readonly paths: Readonly<Record<string, Readonly<Record<string, OperationObject>>>>;
}

/** The validators made from the served document, by where in it their schema is. */
interface Contract {
  readonly document: OpenApiDocument;
  /** `<path> <method> <status> <media type>` → the answer body's validator. */
  readonly responses: ReadonlyMap<string, ValidateFunction>;
  /** `<path> <method> request` → the JSON request body's validator; `<path> <method> parameter <name>` → a path parameter's. */
  readonly requests: ReadonlyMap<string, ValidateFunction>;
}

/** The document is added to ajv under this id; each validator is a `$ref` into it, so `#/components/...` resolves. */
const DOCUMENT_ID = 'https://ringmaster.test/openapi.json';

/** A JSON pointer into the document, as a URI fragment (`/` → `~1`, then percent-encoded: `{rg}`, `+`). */
const pointer = (...segments: string[]): string => `${DOCUMENT_ID}#/${segments.map((s) => encodeURIComponent(s.replace(/~/g, '~0').replace(/\//g, '~1'))).join('/')}`;

const responseKey = (path: string, method: string, status: number | string, mediaType: string) => `${path} ${method} ${status} ${mediaType}`;

/** The CIDR formats zod writes for network settings; ajv-formats has no such formats, and an unknown format must not pass silently. */
function isCidr(version: 4 | 6, value: string): boolean {
  const [address, length, ...rest] = value.split('/');
  return rest.length === 0 && address !== undefined && isIP(address) === version && /^\d{1,3}$/.test(length ?? '') && Number(length) <= (version === 4 ? 32 : 128);
}

/** Compiles every documented answer's schema (and each request body's and path parameter's) from the served document. */
function compileContract(document: OpenApiDocument): Contract {
  // `strict: false`: the document's OpenAPI keywords (`openapi`, `paths`, …) are not JSON Schema keywords.
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  // ajv-formats is CommonJS: its default export is the module object under NodeNext.
  addFormatsModule.default(ajv);
  ajv.addFormat('cidrv4', (value: string) => isCidr(4, value));
  ajv.addFormat('cidrv6', (value: string) => isCidr(6, value));
  ajv.addSchema({ ...document, $id: DOCUMENT_ID });
  const responses = new Map<string, ValidateFunction>();
  const requests = new Map<string, ValidateFunction>();
  for (const [path, operations] of Object.entries(document.paths)) {
    for (const [method, operation] of Object.entries(operations)) {
      for (const [status, response] of Object.entries(operation.responses)) {
        for (const mediaType of Object.keys(response.content ?? {})) {
          responses.set(responseKey(path, method, status, mediaType), ajv.compile({ $ref: pointer('paths', path, method, 'responses', status, 'content', mediaType, 'schema') }));
        }
      }
      if (operation.requestBody?.content['application/json']) {
        requests.set(`${path} ${method} request`, ajv.compile({ $ref: pointer('paths', path, method, 'requestBody', 'content', 'application/json', 'schema') }));
      }
      (operation.parameters ?? []).forEach((parameter, index) => {
        if (parameter.in === 'path') requests.set(`${path} ${method} parameter ${parameter.name}`, ajv.compile({ $ref: pointer('paths', path, method, 'parameters', String(index), 'schema') }));
      });
    }
  }
  return { document, responses, requests };
}

/** ajv's errors as lines a reader can act on: which field, what is wrong, what the schema said. */
const describeErrors = (errors: readonly ErrorObject[] | null | undefined): string[] =>
  (errors ?? []).map((e) => `${e.instancePath || '(the body)'} ${e.message ?? 'is invalid'} ${JSON.stringify(e.params)}`);

const mediaTypeOf = (contentType: string | null): string => (contentType ?? '').split(';')[0]!.trim().toLowerCase();
const isJsonMediaType = (mediaType: string): boolean => mediaType === 'application/json' || mediaType.endsWith('+json');

/**
 * Everything wrong with an answer of a route by the served document: an undocumented status,
 * an undocumented content type, a missing documented header, or a body its schema refuses
 * (each ajv error with its field). Empty when the answer keeps the promise.
 */
function contractViolations(contract: Contract, id: RouteId, status: number, contentType: string | null, text: string, headers: Headers = new Headers()): string[] {
  const { path, method: upperMethod } = routes[id];
  const method = upperMethod.toLowerCase();
  const operation = contract.document.paths[path]?.[method];
  if (!operation) return [`the served document has no operation ${method} ${path}`];
  const response = operation.responses[String(status)];
  if (!response) return [`status ${status} is not documented for ${method} ${path} (documented: ${Object.keys(operation.responses).join(', ')})`];
  const mediaType = mediaTypeOf(contentType);
  const documented = Object.keys(response.content ?? {});
  const validate = contract.responses.get(responseKey(path, method, status, mediaType));
  if (!validate) return [`content type "${contentType ?? ''}" is not documented for ${status} of ${method} ${path} (documented: ${documented.join(', ') || 'none'})`];
  const violations = Object.keys(response.headers ?? {})
    .filter((name) => !headers.has(name))
    .map((name) => `the documented header ${name} is missing`);
  let body: unknown = text;
  if (isJsonMediaType(mediaType)) {
    try {
      body = JSON.parse(text);
    } catch (error) {
      return [...violations, `the ${mediaType} body is not JSON: ${(error as Error).message}`];
    }
  }
  if (!validate(body)) violations.push(...describeErrors(validate.errors));
  return violations;
}

/** What a request the server accepted carried, checked against the document: a client following it must be able to send it. */
function requestViolations(contract: Contract, id: RouteId, parameters: Readonly<Record<string, string>>, body: string | undefined): string[] {
  const { path, method: upperMethod } = routes[id];
  const method = upperMethod.toLowerCase();
  const violations: string[] = [];
  for (const [name, value] of Object.entries(parameters)) {
    const validate = contract.requests.get(`${path} ${method} parameter ${name}`);
    if (!validate) violations.push(`the path parameter ${name} is not documented`);
    else if (!validate(value)) violations.push(...describeErrors(validate.errors).map((line) => `path parameter ${name}: ${line}`));
  }
  if (body !== undefined) {
    const validate = contract.requests.get(`${path} ${method} request`);
    if (!validate) violations.push('the request body is not documented');
    else if (!validate(JSON.parse(body))) violations.push(...describeErrors(validate.errors).map((line) => `request body: ${line}`));
  }
  return violations;
}

// ---------------------------------------------------------------------------------------------

describe('the served OpenAPI document describes every answer of every route', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'ringmaster-openapi-'));
  const events = parseYaml(readFileSync(`${ROOT}examples/events/reference-architecture.yaml`, 'utf8')) as Array<{ id: string }>;
  let cp: LocalControlPlane;
  let contract: Contract;
  /** The cluster key of `demo`, which signs its cluster calls. */
  let clusterKey: string;
  /** The status view once `demo` is provisioned (before any agent reported). */
  let provisioned: StatusView;
  /** Every status each route answered here: the last test checks nothing documented went untried. */
  const exercised = new Map<RouteId, Set<number>>();
  /** One real status view, for the test proving the check can fail. */
  let statusView: StatusView | undefined;

  interface CallOptions {
    /** The portal's bearer token (default), none, or a wrong one. */
    readonly auth?: 'token' | 'none' | 'wrong';
    readonly body?: string;
    readonly headers?: Readonly<Record<string, string>>;
  }
  interface Answer {
    readonly status: number;
    readonly headers: Headers;
    readonly text: string;
    /** The body parsed when it is JSON, else the text. */
    readonly body: unknown;
  }

  /**
   * Calls a route over HTTP and holds the answer to the served document (throwing with each
   * violation when it breaks it), and records the route and status as exercised.
   */
  async function call<K extends RouteId>(id: K, parameters: PathParameters<K>, request: CallOptions = {}): Promise<Answer> {
    const auth = request.auth ?? 'token';
    const headers: Record<string, string> = { ...(auth === 'none' ? {} : { authorization: `Bearer ${auth === 'token' ? cp.info.apiToken : 'wrong-token'}` }), ...request.headers };
    const response = await fetch(`${cp.info.apiUrl}${routePath(id, parameters)}`, { method: routes[id].method, headers, ...(request.body === undefined ? {} : { body: request.body }) });
    const text = await response.text();
    const contentType = response.headers.get('content-type');
    const violations = contractViolations(contract, id, response.status, contentType, text, response.headers);
    // An accepted request must be one the document allows: otherwise a client generated from it cannot send it.
    if (response.status < 300) violations.push(...requestViolations(contract, id, parameters as Readonly<Record<string, string>>, request.body));
    if (violations.length > 0) {
      throw new Error(`${routeKey(id)} (${routePath(id, parameters)}) answered ${response.status} ${contentType ?? ''}, breaking the served document:\n  - ${violations.join('\n  - ')}\nbody: ${text.slice(0, 2000)}`);
    }
    exercised.set(id, new Set([...(exercised.get(id) ?? []), response.status]));
    return { status: response.status, headers: response.headers, text, body: isJsonMediaType(mediaTypeOf(contentType)) ? JSON.parse(text) : text };
  }

  const asJson = (value: unknown): CallOptions => ({ body: JSON.stringify(value), headers: { 'content-type': 'application/json' } });
  /** One byte more than the route takes, valid JSON (a string) so only the size is wrong. */
  const oversized = (id: RouteId): CallOptions => ({ body: `"${'x'.repeat((routes[id] as RouteSpec).body!.maxBytes - 1)}"`, headers: { 'content-type': 'application/json' } });
  const asText: CallOptions = { body: 'plain text', headers: { 'content-type': 'text/plain' } };
  const now = () => Math.floor(Date.now() / 1000);
  /** A cluster call signed with `demo`'s key (no portal token: clusters do not have one). */
  const signed = (value: unknown, timestamp = now()): CallOptions => {
    const body = typeof value === 'string' ? value : JSON.stringify(value);
    return { auth: 'none', body, headers: clusterRequestHeaders(clusterKey, timestamp, body) };
  };
  const badlySigned = (value: unknown): CallOptions => {
    const body = JSON.stringify(value);
    return { auth: 'none', body, headers: { 'content-type': 'application/json', [TIMESTAMP_HEADER]: String(now()), [SIGNATURE_HEADER]: `v1=${'0'.repeat(64)}` } };
  };

  const endpointChange = (resourceVersion: string, ips: string[]) => ({
    changes: [
      {
        type: 'MODIFIED',
        object: {
          metadata: { name: 'myapp-abc', namespace: 'default', resourceVersion, labels: { 'kubernetes.io/service-name': 'myapp' } },
          addressType: 'IPv4',
          ports: [{ name: 'http', port: 8888, protocol: 'TCP' }],
          endpoints: ips.map((ip) => ({ addresses: [ip], conditions: { ready: true, serving: true, terminating: false }, targetRef: { kind: 'Pod', namespace: 'default', name: `myapp-${ip}` } })),
        },
      },
    ],
  });
  const kubeconfig = 'apiVersion: v1\nkind: Config\nusers: [{name: alice, user: {token: contract-token}}]\n';
  const inAnHour = () => new Date(Date.now() + 3_600_000).toISOString();

  async function demoStatus(): Promise<StatusView | undefined> {
    const answer = await call('getResourceGroup', { rg: 'demo' });
    // The body passed the document's schema of the status view (checked in `call`).
    return answer.status === 200 ? (answer.body as StatusView) : undefined;
  }

  beforeAll(async () => {
    cp = await startLocalControlPlane({ dataDir, apiPort: 0, s3Port: 0 });
    // The document under test is the one the server serves, not the one this process could make.
    const served = await fetch(routeUrl(cp.info.apiUrl, 'getOpenApi', {}));
    expect(served.status).toBe(200);
    contract = compileContract((await served.json()) as OpenApiDocument);
    // Provision `demo` (the reference architecture) for the routes that need a resource group.
    expect((await call('postEvents', {}, asJson(events))).status).toBe(202);
    provisioned = await waitFor('six documents of demo', async () => {
      const view = await demoStatus();
      return view && view.documents.filter((d) => d.generation).length === 6 ? view : undefined;
    });
    // The reconciler wrote `demo`'s state, with the key its cluster signs calls with.
    clusterKey = (JSON.parse((await cp.store.get(storeKeys.state('demo')))!.body) as { description: { secrets: { webhookKey: string } } }).description.secrets.webhookKey;
  }, 60000);

  afterAll(async () => {
    await cp?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('the served document is OpenAPI 3.1, names this server, and has every route of the table under its id', async () => {
    const answer = await call('getOpenApi', {});
    const document = answer.body as OpenApiDocument;
    expect(document.openapi).toBe('3.1.0');
    expect(document.servers).toEqual([{ url: cp.info.apiUrl }]);
    for (const id of ROUTE_IDS) {
      const operation = document.paths[routes[id].path]?.[routes[id].method.toLowerCase()];
      expect(operation?.operationId).toBe(id);
      expect(Object.keys(operation?.responses ?? {}).sort()).toEqual(Object.keys(responsesOf(id)).sort());
    }
    expect((await call('getHealth', {})).body).toEqual(expect.objectContaining({ ok: true }));
  });

  test('POST /v1/events: accepted (again: events are idempotent), and refused for credentials, body, content type and size', async () => {
    expect((await call('postEvents', {}, { ...asJson(events), auth: 'none' })).status).toBe(401);
    expect((await call('postEvents', {}, { ...asJson(events), auth: 'wrong' })).status).toBe(401);
    const invalid = await call('postEvents', {}, asJson([{ id: 'bad-1', type: 'vm.exploded', resourceGroup: 'demo', occurredAt: 'yesterday' }]));
    expect(invalid.status).toBe(400);
    expect((await call('postEvents', {}, { body: '{"id": ', headers: { 'content-type': 'application/json' } })).status).toBe(400);
    expect((await call('postEvents', {}, { body: '', headers: { 'content-type': 'application/json' } })).status).toBe(400);
    expect((await call('postEvents', {}, asText)).status).toBe(415);
    expect((await call('postEvents', {}, oversized('postEvents'))).status).toBe(413);
    const accepted = await call('postEvents', {}, asJson(events));
    expect(accepted).toMatchObject({ status: 202, body: { accepted: events.map((e) => e.id) } });
  });

  test('GET /v1/resource-groups/{rg}/history: the audit trail, checked against the document; its refusals', async () => {
    expect((await call('getResourceGroupHistory', { rg: 'demo' }, { auth: 'none' })).status).toBe(401);
    expect((await call('getResourceGroupHistory', { rg: 'Not_A_Name' })).status).toBe(400);
    expect((await call('getResourceGroupHistory', { rg: 'nosuchrg' })).status).toBe(404);
    const answer = await call('getResourceGroupHistory', { rg: 'demo' });
    expect(answer.status).toBe(200);
    expect((answer.body as { vms: Array<{ entries: unknown[] }> }).vms.every((vm) => vm.entries.length > 0)).toBe(true);
  });

  test('GET /v1/resource-groups/{rg}: the status view with each agent report, and its refusals', async () => {
    expect((await call('getResourceGroup', { rg: 'demo' }, { auth: 'none' })).status).toBe(401);
    expect((await call('getResourceGroup', { rg: 'demo' }, { auth: 'wrong' })).status).toBe(401);
    expect((await call('getResourceGroup', { rg: 'Not_A_Name' })).status).toBe(400);
    expect((await call('getResourceGroup', { rg: 'nosuchrg' })).status).toBe(404);
    // Reports as agents write them, so the view carries each shape `documents[].agent` may have:
    // a valid report (in sync, with the k3s server's drain, which fills `maintenance`), an unreadable one, and none.
    const kube01 = provisioned.documents.find((d) => d.vm === 'kube01')!;
    const at = new Date().toISOString();
    const report: AgentReportDraft = {
      resourceGroup: 'demo', vm: 'kube01', appliedGeneration: kube01.generation!, appliedHash: kube01.hash!, outcome: 'applied', at,
      kubernetes: {
        at, accessUsers: ['alice'], revoked: [], kubeconfigsDelivered: [], endpointWebhook: { calls: 1, failures: 0, lastSentAt: at }, errors: [],
        drain: [{ node: 'kube02', phase: 'drained', remainingPods: 0, blockedPods: [], startedAt: at, safeToTakeDown: true, message: 'drained for maintenance' }],
      },
    };
    await cp.store.put(storeKeys.report('demo', 'kube01'), JSON.stringify(report));
    await cp.store.put(storeKeys.report('demo', 'web01'), '{ not json');
    const view = (await demoStatus())!;
    expect(view.documents.find((d) => d.vm === 'kube01')).toMatchObject({ inSync: true, agent: { vm: 'kube01', outcome: 'applied' } });
    expect(view.documents.find((d) => d.vm === 'web01')).toMatchObject({ inSync: false, agent: { invalid: expect.any(String) } });
    expect(view.documents.find((d) => d.vm === 'db01')).toMatchObject({ inSync: false, agent: null });
    expect(view.maintenance).toEqual([expect.objectContaining({ vm: 'kube02', phase: 'drained', safeToTakeDown: true, reportedAt: at })]);
    statusView = view;
  });

  test('GET /v1/resource-groups and the status page: groups listed; page, script and style served to this machine with a strict CSP, and refused to another Host', async () => {
    expect((await call('listResourceGroups', {})).body).toEqual({ resourceGroups: expect.arrayContaining([{ name: 'demo' }]) });
    expect((await call('listResourceGroups', {}, { auth: 'none' })).status).toBe(401);
    /** A request naming another host, as a page elsewhere rebinding its name to 127.0.0.1 would send (fetch cannot set Host). */
    const fromElsewhere = <K extends RouteId>(id: K, parameters: PathParameters<K>) =>
      new Promise<number>((resolve, reject) => {
        const url = new URL(`${cp.info.apiUrl}${routePath(id, parameters)}`);
        httpGet(url, { headers: { host: `rebound.example:${url.port}` } }, (response) => {
          let text = '';
          response.on('data', (chunk) => (text += chunk));
          response.on('end', () => {
            const status = response.statusCode ?? 0;
            expect(contractViolations(contract, id, status, response.headers['content-type'] ?? null, text)).toEqual([]);
            exercised.set(id, new Set([...(exercised.get(id) ?? []), status]));
            resolve(status);
          });
        }).on('error', reject);
      });
    for (const [id, type] of [['getStatusPage', 'text/html'], ['getPageScript', 'text/javascript'], ['getPageStyle', 'text/css']] as const) {
      const answer = await call(id, {}, { auth: 'none' });
      expect([id, answer.status, mediaTypeOf(answer.headers.get('content-type'))]).toEqual([id, 200, type]);
      expect(answer.headers.get('content-security-policy')).toMatch(/default-src 'none'.*script-src 'self'/);
      expect(answer.text).not.toContain(cp.info.apiToken);
      expect(await fromElsewhere(id, {})).toBe(401);
    }
    const page = await call('getResourceGroupPage', { rg: 'demo' }, { auth: 'none' });
    expect(page.text).toContain('<script type="module" src="/page/app.js">');
    expect(page.text).not.toContain(cp.info.apiToken);
    expect((await call('getResourceGroupPage', { rg: 'Not_A_Name' }, { auth: 'none' })).status).toBe(400);
    expect(await fromElsewhere('getResourceGroupPage', { rg: 'demo' })).toBe(401);
  });

  test('POST /v1/clusters/{rg}/endpoints: accepted once, refused for a replay, signature, path, body, content type and size', async () => {
    const change = signed(endpointChange('100', ['10.42.2.14']));
    expect((await call('postClusterEndpoints', { rg: 'demo' }, change)).status).toBe(202);
    expect((await call('postClusterEndpoints', { rg: 'demo' }, change)).status).toBe(409);
    expect((await call('postClusterEndpoints', { rg: 'demo' }, badlySigned(endpointChange('101', [])))).status).toBe(401);
    expect((await call('postClusterEndpoints', { rg: 'demo' }, signed(endpointChange('101', []), now() - 600))).status).toBe(401);
    // An unknown group answers like a bad signature: nothing tells a caller which groups exist.
    expect((await call('postClusterEndpoints', { rg: 'nosuchrg' }, signed(endpointChange('101', [])))).status).toBe(401);
    expect((await call('postClusterEndpoints', { rg: 'Not_A_Name' }, signed(endpointChange('101', [])))).status).toBe(400);
    expect((await call('postClusterEndpoints', { rg: 'demo' }, signed({ changes: [{ type: 'EXPLODED' }] }))).status).toBe(400);
    expect((await call('postClusterEndpoints', { rg: 'demo' }, signed('{"changes": '))).status).toBe(400);
    expect((await call('postClusterEndpoints', { rg: 'demo' }, { ...asText, auth: 'none' })).status).toBe(415);
    expect((await call('postClusterEndpoints', { rg: 'demo' }, { ...oversized('postClusterEndpoints'), auth: 'none' })).status).toBe(413);
  });

  test('POST /v1/clusters/{rg}/kubeconfigs and GET /v1/resource-groups/{rg}/kubeconfigs/{user}: delivered, read back as YAML, and refusals', async () => {
    expect((await call('postClusterKubeconfig', { rg: 'demo' }, badlySigned({ user: 'alice', kubeconfig, expiresAt: inAnHour() }))).status).toBe(401);
    expect((await call('postClusterKubeconfig', { rg: 'Not_A_Name' }, signed({ user: 'alice', kubeconfig, expiresAt: inAnHour() }))).status).toBe(400);
    expect((await call('postClusterKubeconfig', { rg: 'demo' }, signed({ user: 'Alice!', kubeconfig: '', expiresAt: 'tomorrow' }))).status).toBe(400);
    expect((await call('postClusterKubeconfig', { rg: 'demo' }, signed({ user: 'alice', kubeconfig, expiresAt: '2020-01-01T00:00:00Z' }))).status).toBe(400);
    expect((await call('postClusterKubeconfig', { rg: 'demo' }, { ...asText, auth: 'none' })).status).toBe(415);
    expect((await call('postClusterKubeconfig', { rg: 'demo' }, { ...oversized('postClusterKubeconfig'), auth: 'none' })).status).toBe(413);

    // alice has sudo-srv in the example, so her kubeconfig is kept for the portal.
    const delivery = signed({ user: 'alice', kubeconfig, expiresAt: inAnHour() });
    const stored = await call('postClusterKubeconfig', { rg: 'demo' }, delivery);
    expect(stored).toMatchObject({ status: 202, body: { location: expect.stringMatching(/^kubeconfigs\/demo\/alice\//) } });
    expect((await call('postClusterKubeconfig', { rg: 'demo' }, delivery)).status).toBe(409);

    expect((await call('getKubeconfig', { rg: 'demo', user: 'alice' }, { auth: 'none' })).status).toBe(401);
    expect((await call('getKubeconfig', { rg: 'demo', user: 'Not_A_Name' })).status).toBe(400);
    expect((await call('getKubeconfig', { rg: 'demo', user: 'bob' })).status).toBe(404);
    const read = await waitFor('alice\'s kubeconfig', async () => {
      const answer = await call('getKubeconfig', { rg: 'demo', user: 'alice' });
      return answer.status === 200 ? answer : undefined;
    });
    expect(read.text).toBe(kubeconfig);
    expect(read.headers.get('cache-control')).toBe('no-store');
});

  test('POST /v1/clusters/{rg}/ca: the first hash is pinned and agents join with the secure token; another hash is refused', async () => {
    const caHash = 'ab'.repeat(32);
    expect((await call('postClusterCa', { rg: 'demo' }, badlySigned({ caHash }))).status).toBe(401);
    expect((await call('postClusterCa', { rg: 'demo' }, signed({ caHash: 'not-a-hash' }))).status).toBe(400);
    expect((await call('postClusterCa', { rg: 'demo' }, { ...asText, auth: 'none' })).status).toBe(415);
    expect((await call('postClusterCa', { rg: 'demo' }, { ...oversized('postClusterCa'), auth: 'none' })).status).toBe(413);
    const report = signed({ caHash });
    expect((await call('postClusterCa', { rg: 'demo' }, report)).status).toBe(202);
    expect((await call('postClusterCa', { rg: 'demo' }, report)).status).toBe(409);
    // What an agent finds in its token file once the reconciler ran: k3s' secure form with the pinned hash.
    const token = await waitFor('the agent token in the secure form', async () => {
      const document = JSON.parse((await cp.store.get(storeKeys.desired('demo', 'kube02')))!.body) as { files: Array<{ path: string; content: string }> };
      const file = document.files.find((f) => f.path.endsWith('/k3s-token'))!.content;
      return file.startsWith('K10') ? file : undefined;
    });
    expect(token).toMatch(new RegExp(`^K10${caHash}::node:[0-9a-f]{64}\n$`));
    const server = JSON.parse((await cp.store.get(storeKeys.desired('demo', 'kube01')))!.body) as { files: Array<{ path: string; content: string }>; kubernetes: { clusterCaHash?: string } };
    expect(server.kubernetes.clusterCaHash).toBe(caHash);
    // The server keeps its own token and accepts the agent token in the short form.
    expect(server.files.find((f) => f.path.endsWith('/k3s-agent-token'))!.content).toBe(`${token.split('::node:')[1]}`);
    expect(server.files.find((f) => f.path.endsWith('/k3s-token'))!.content).not.toMatch(/^K10/);

    expect((await call('postClusterCa', { rg: 'demo' }, signed({ caHash: 'cd'.repeat(32) }))).status).toBe(202);
    const refused = await waitFor('the other CA refused', async () => {
      const view = await demoStatus();
      return view?.rejections.find((r) => r.reason.startsWith('the cluster CA changed')) ?? undefined;
    });
    expect(refused.reason).toMatch(/pinned abababababab…, reported cdcdcdcdcdcd…/);
    const after = JSON.parse((await cp.store.get(storeKeys.desired('demo', 'kube02')))!.body) as { files: Array<{ path: string; content: string }> };
    expect(after.files.find((f) => f.path.endsWith('/k3s-token'))!.content).toBe(token);
  });

  test("POST /v1/agents/{rg}/{vm}/canary-reports: signed by the VM's own key over the exact body, queued once; refusals name why", async () => {
    const { masterKey } = JSON.parse(readFileSync(join(dataDir, 'credentials.json'), 'utf8')) as { masterKey: string };
    const url = (vm: string) => `${cp.info.apiUrl}${routePath('postCanaryReport', { rg: 'demo', vm })}`;
    /** Signed as `signer` (default: the VM the path names). */
    const agentSigned = async (vm: string, value: unknown, signer = vm, contentType?: string): Promise<CallOptions> => {
      const body = typeof value === 'string' ? value : JSON.stringify(value);
      return { auth: 'none', body, headers: await agentRequestHeaders(url(vm), body, { credentials: agentCredentials(masterKey, 'demo', signer), region: cp.info.region }, contentType) };
    };
    const report = { generation: 7, outcome: 'failed', reason: 'haproxy refused the config' };
    expect((await call('postCanaryReport', { rg: 'demo', vm: 'web01' }, { ...asJson(report), auth: 'none' })).status).toBe(401);
    const tampered = await agentSigned('web01', report);
    expect((await call('postCanaryReport', { rg: 'demo', vm: 'web01' }, { ...tampered, body: JSON.stringify({ ...report, outcome: 'applied' }) })).status).toBe(401);
    expect((await call('postCanaryReport', { rg: 'demo', vm: 'web01' }, await agentSigned('web01', report, 'kube02'))).status).toBe(403);
    const invalid = await call('postCanaryReport', { rg: 'demo', vm: 'web01' }, await agentSigned('web01', { generation: 0, outcome: 'maybe' }));
    expect(invalid.status).toBe(400);
    expect((invalid.body as { errors: Array<{ field: string }> }).errors.map((e) => e.field).sort()).toEqual(['generation', 'outcome']);
    expect((await call('postCanaryReport', { rg: 'demo', vm: 'web01' }, await agentSigned('web01', 'plain text', 'web01', 'text/plain'))).status).toBe(415);
    expect((await call('postCanaryReport', { rg: 'demo', vm: 'web01' }, { ...oversized('postCanaryReport'), auth: 'none' })).status).toBe(413);
    expect((await call('postCanaryReport', { rg: 'Not_A_Name', vm: 'web01' }, await agentSigned('web01', report))).status).toBe(400);
    // Accepted twice (an agent's retry): one event, the same id; no rollout waits, so the status records nothing.
    const first = await call('postCanaryReport', { rg: 'demo', vm: 'web01' }, await agentSigned('web01', report));
    const again = await call('postCanaryReport', { rg: 'demo', vm: 'web01' }, await agentSigned('web01', report));
    expect(first).toMatchObject({ status: 202, body: { accepted: ['canary-web01-7-failed'] } });
    expect(again.body).toEqual(first.body);
    await waitFor('the queue to drain', async () => ((await call('getHealth', {})).body as { queued: number }).queued === 0 || undefined);
    expect((await demoStatus())?.rollout).toBeNull();
  });

  test('GET /v1/dead-letters and POST /v1/dead-letters/replay: listed, replayed, and refusals', async () => {
    expect((await call('listDeadLetters', {})).body).toEqual({ deadLetters: [] });
    expect((await call('listDeadLetters', {}, { auth: 'none' })).status).toBe(401);
    // A message no event schema accepts is dead-lettered by the reconciler, with its reason.
    await cp.queue.send([{ id: 'poison-1', group: 'demo', body: '{"id":"poison-1","type":"vm.upserted","resourceGroup":"demo"}' }]);
    const letters = await waitFor('the dead letter', async () => {
      const answer = await call('listDeadLetters', {});
      const listed = (answer.body as { deadLetters: Array<{ id: string }> }).deadLetters;
      return listed.length > 0 ? listed : undefined;
    });
    expect(letters).toEqual([expect.objectContaining({ id: 'poison-1', resourceGroup: 'demo', type: 'vm.upserted', eventId: 'poison-1' })]);

    expect((await call('replayDeadLetters', {}, { ...asJson({}), auth: 'wrong' })).status).toBe(401);
    expect((await call('replayDeadLetters', {}, asJson({ ids: [] }))).status).toBe(400);
    expect((await call('replayDeadLetters', {}, asJson({ ids: 'poison-1' }))).status).toBe(400);
    expect((await call('replayDeadLetters', {}, asJson({ surprise: true }))).status).toBe(400);
    expect((await call('replayDeadLetters', {}, asText)).status).toBe(415);
    expect((await call('replayDeadLetters', {}, oversized('replayDeadLetters'))).status).toBe(413);
    expect((await call('replayDeadLetters', {}, asJson({ ids: ['poison-1'] }))).body).toEqual({ replayed: 1 });
    expect((await call('replayDeadLetters', {}, asJson({}))).status).toBe(200);
  });

  test('the check can fail: an extra field in a real status view, an undocumented status or content type', () => {
    expect(statusView).toBeDefined();
    const tampered = structuredClone(statusView!) as StatusView & { extra?: number; documents: Array<StatusView['documents'][number] & { surprise?: number }> };
    tampered.documents[0]!.surprise = 1;
    tampered.extra = 1;
    const problems = contractViolations(contract, 'getResourceGroup', 200, 'application/json', JSON.stringify(tampered));
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^\/documents\/0 must NOT have additional properties .*"surprise"/),
        expect.stringMatching(/^\(the body\) must NOT have additional properties .*"extra"/),
      ]),
    );
    // The untampered view passes, so the failures above are the extra fields' alone.
    expect(contractViolations(contract, 'getResourceGroup', 200, 'application/json', JSON.stringify(statusView))).toEqual([]);
    // Problems are checked through `#/components/schemas/Problem`: the reference resolves, and it is strict too.
    const problem = { type: 'about:blank', title: 'Not Found', status: 404, detail: 'no status for resource group x yet' };
    expect(contractViolations(contract, 'getResourceGroup', 404, 'application/problem+json', JSON.stringify(problem))).toEqual([]);
    expect(contractViolations(contract, 'getResourceGroup', 404, 'application/problem+json', JSON.stringify({ ...problem, stack: 'at …' }))).toEqual([expect.stringMatching(/^\(the body\) must NOT have additional properties .*"stack"/)]);
    expect(contractViolations(contract, 'getResourceGroup', 404, 'application/json', JSON.stringify(problem))).toEqual([expect.stringContaining('content type "application/json" is not documented')]);
    expect(contractViolations(contract, 'getHealth', 404, 'application/problem+json', JSON.stringify(problem))).toEqual([expect.stringContaining('status 404 is not documented')]);
    expect(contractViolations(contract, 'getKubeconfig', 200, 'application/json', '{}')).toEqual([expect.stringContaining('content type "application/json" is not documented')]);
    expect(contractViolations(contract, 'getHealth', 200, 'application/json', '{"ok": "yes"}')).toEqual([expect.stringContaining('/ok must be boolean')]);
  });

  test('every route of the table was called, and answered every status it documents (but 500)', () => {
    expect(ROUTE_IDS.filter((id) => !exercised.has(id))).toEqual([]);
    // A 500 cannot be caused from outside without breaking the server; every other documented answer can.
    const untried = ROUTE_IDS.flatMap((id) =>
      Object.keys(responsesOf(id))
        .map(Number)
        .filter((status) => status !== 500 && !exercised.get(id)?.has(status))
        .map((status) => `${routeKey(id)} ${status}`),
    );
    expect(untried).toEqual([]);
  });
});
