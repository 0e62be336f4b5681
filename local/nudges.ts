/**
 * The local push channel (see shared/contract/nudges.ts): every document the reconciler stores
 * is announced to the agent of that VM, over a server-sent-events stream the agent opens with
 * a request signed with its own key (SigV4, as it signs its reads of the store). A VM hears only
 * its own nudges; a stream is kept open with a comment line now and then so idle proxies and
 * the agent can tell a live connection from a dead one.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { verifySigV4 } from '../adapters/sigv4-verifier.ts';
import { NUDGE_PATH_PATTERN, type Nudge } from '../shared/contract/nudges.ts';
import type { NudgePublisher } from '../shared/ports.ts';

type Listener = (nudge: Nudge) => void;

/** Who is listening, by VM; publishing to a VM nobody listens for costs nothing. */
export class NudgeHub implements NudgePublisher {
  readonly #listeners = new Map<string, Set<Listener>>();
  #published = 0;

  get published(): number {
    return this.#published;
  }

  listeners(resourceGroup: string, vm: string): number {
    return this.#listeners.get(`${resourceGroup}/${vm}`)?.size ?? 0;
  }

  subscribe(resourceGroup: string, vm: string, listener: Listener): () => void {
    const key = `${resourceGroup}/${vm}`;
    const set = this.#listeners.get(key) ?? new Set<Listener>();
    set.add(listener);
    this.#listeners.set(key, set);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.#listeners.delete(key);
    };
  }

  publish(nudge: Nudge): void {
    this.#published++;
    for (const listener of this.#listeners.get(`${nudge.resourceGroup}/${nudge.vm}`) ?? []) listener(nudge);
  }
}

export interface NudgeStreamOptions {
  readonly hub: NudgeHub;
  /** The secret of a VM's key, when `accessKeyId` is that VM's (and only then). */
  readonly secretOf: (accessKeyId: string, resourceGroup: string, vm: string) => string | undefined;
  readonly heartbeatMs?: number;
}

/**
 * Answers a request for a nudge stream, or returns false when the request is not one. 401 for
 * an unsigned or badly signed request, 403 for another VM's key: nothing is said of whether the
 * VM exists.
 */
export async function serveNudgeStream(request: IncomingMessage, response: ServerResponse, url: URL, options: NudgeStreamOptions): Promise<boolean> {
  const match = NUDGE_PATH_PATTERN.exec(url.pathname);
  if (!match) return false;
  const [, resourceGroup, vm] = match as unknown as [string, string, string];
  const refuse = (status: number, detail: string) => {
    response.writeHead(status, { 'content-type': 'application/problem+json', connection: 'close' });
    response.end(JSON.stringify({ type: 'about:blank', title: status === 401 ? 'Unauthorized' : status === 403 ? 'Forbidden' : 'Method Not Allowed', status, detail }));
    return true;
  };
  if (request.method !== 'GET') return refuse(405, 'a nudge stream is read with GET');
  let forAnother = false;
  const verdict = await verifySigV4(
    { method: 'GET', path: url.pathname, query: Object.fromEntries(url.searchParams), headers: request.headers },
    (accessKeyId) => {
      const secret = options.secretOf(accessKeyId, resourceGroup, vm);
      if (secret === undefined && accessKeyId.startsWith('vm.')) forAnother = true;
      return secret;
    },
  );
  if (forAnother) return refuse(403, 'a VM hears only its own nudges');
  if (!verdict.ok) return refuse(401, verdict.message);
  response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
  response.write(': nudges for this VM follow\n\n');
  const unsubscribe = options.hub.subscribe(resourceGroup, vm, (nudge) => response.write(`event: nudge\ndata: ${JSON.stringify(nudge)}\n\n`));
  const heartbeat = setInterval(() => response.write(': still here\n\n'), options.heartbeatMs ?? 15_000);
  const close = () => {
    clearInterval(heartbeat);
    unsubscribe();
  };
  request.socket.once('close', close);
  response.once('close', close);
  return true;
}
