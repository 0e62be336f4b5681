/**
 * The canary gateway's side of a staged rollout (shared/state/rollout.ts): once it applied a
 * document marked `canary` (or failed to), it tells the control plane, signed with the VM's own
 * key (SigV4, as it signs its reads of the store; in AWS an IAM-authorized API route). Until
 * the call is accepted the other gateways wait, so it is sent again, backing off from 1 s to
 * 30 s, until it is; a newer report replaces one not yet sent. A 400 or 403 is not retried:
 * the same bytes would get the same answer (logged, and the status shows the rollout waiting).
 */
import type { CanaryReport } from '../shared/events/rollout-events.ts';
import { type AgentSigningOptions, signedHeaders } from './request-signing.ts';

/** What AWS checks the route's IAM signature for; the local control plane checks the key and the body. */
export const AGENT_API_SIGNING_SERVICE = 'execute-api';

/** The headers of a POST of `body` (JSON text) to `url`, signed by the agent's key with the body's hash. */
export function agentRequestHeaders(url: string, body: string, options: AgentSigningOptions, contentType = 'application/json'): Promise<Record<string, string>> {
  return signedHeaders({ method: 'POST', url, service: AGENT_API_SIGNING_SERVICE, headers: { 'content-type': contentType }, body }, options);
}

/** A JSON POST signed by the agent's key. */
export async function signedAgentPost(url: string, value: unknown, options: AgentSigningOptions, signal?: AbortSignal): Promise<Response> {
  const body = JSON.stringify(value);
  return fetch(url, { method: 'POST', headers: await agentRequestHeaders(url, body, options), body, ...(signal ? { signal } : {}) });
}

export interface CanaryReporterOptions extends AgentSigningOptions {
  readonly log: (message: string, fields?: Record<string, unknown>, level?: 'info' | 'warn') => void;
  /** First wait after a failed send (default 1 s), doubled up to 30 s. */
  readonly retryMs?: number;
}

export class CanaryReporter {
  readonly #options: CanaryReporterOptions;
  #pending: { url: string; report: CanaryReport } | undefined;
  #sending: Promise<void> | undefined;
  readonly #stop = new AbortController();
  /** The last report the control plane accepted: sent once, never again. */
  #accepted: string | undefined;

  constructor(options: CanaryReporterOptions) {
    this.#options = options;
  }

  /** Sends `report` (now, and again until accepted); a report already accepted is not sent again. */
  report(url: string, report: CanaryReport): Promise<void> {
    const key = `${url} ${report.generation} ${report.outcome}`;
    if (key === this.#accepted) return this.#sending ?? Promise.resolve();
    this.#pending = { url, report };
    this.#sending ??= this.#drain().finally(() => (this.#sending = undefined));
    return this.#sending;
  }

  stop(): void {
    this.#stop.abort();
  }

  async #drain(): Promise<void> {
    let wait = this.#options.retryMs ?? 1000;
    while (this.#pending && !this.#stop.signal.aborted) {
      const { url, report } = this.#pending;
      let retry: string | undefined;
      try {
        const response = await signedAgentPost(url, report, this.#options, this.#stop.signal);
        const answer = await response.text();
        if (response.status === 202) {
          this.#options.log('canary report accepted', { generation: report.generation, outcome: report.outcome });
          this.#accepted = `${url} ${report.generation} ${report.outcome}`;
        } else if (response.status === 400 || response.status === 403) {
          this.#options.log('canary report refused; not sent again', { generation: report.generation, status: response.status, answer: answer.slice(0, 300) }, 'warn');
        } else retry = `answered ${response.status}: ${answer.slice(0, 200)}`;
      } catch (error) {
        if (this.#stop.signal.aborted) return;
        retry = (error as Error).message;
      }
      if (retry === undefined) {
        // Done with this one, unless a newer report came meanwhile.
        if (this.#pending?.report === report) this.#pending = undefined;
        continue;
      }
      this.#options.log('canary report not delivered; sending it again', { generation: report.generation, error: retry, retryInMs: wait }, 'warn');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, wait);
        this.#stop.signal.addEventListener('abort', () => resolve(clearTimeout(timer)), { once: true });
      });
      wait = Math.min(30_000, wait * 2);
    }
  }
}
