/**
 * The agent's end of the push channel (shared/contract/nudges.ts): a long-lived request to the
 * control plane, signed with the VM's own key, that streams "generation N is ready" for this VM
 * alone. It reconnects by itself (a second, then up to five seconds apart) and says whether it
 * is connected, so the agent polls slowly only while nudges can reach it.
 */
import { createParser } from 'eventsource-parser';
import { NUDGE_SIGNING_SERVICE, type Nudge, nudgePath, nudgeSchema } from '../shared/contract/nudges.ts';
import { type AgentSigningOptions, signedHeaders } from './request-signing.ts';

export interface NudgeListenerOptions extends AgentSigningOptions {
  /** The control plane's API URL (locally, `ringmaster serve`'s). */
  readonly url: string;
  readonly resourceGroup: string;
  readonly vm: string;
  readonly onNudge: (nudge: Nudge) => void;
  readonly onConnected?: (connected: boolean) => void;
  readonly log?: (message: string, fields?: Record<string, unknown>, level?: 'info' | 'warn') => void;
  /** No byte (not even the heartbeat) for this long: the connection is taken for dead. */
  readonly silenceMs?: number;
}

const RECONNECT_FIRST_MS = 1000;
const RECONNECT_MAX_MS = 5000;

/** Listens until `signal` aborts. */
export async function listenForNudges(options: NudgeListenerOptions, signal: AbortSignal): Promise<void> {
  const target = new URL(nudgePath(options.resourceGroup, options.vm), options.url);
  let failures = 0;
  while (!signal.aborted) {
    try {
      await streamOnce(target, options, signal, () => {
        if (failures > 0) options.log?.('push channel connected again', { failedAttempts: failures });
        failures = 0;
        options.onConnected?.(true);
      });
    } catch (error) {
      if (signal.aborted) break;
      failures++;
      if (failures === 1 || failures % 60 === 0) options.log?.('push channel unavailable; polling carries on', { error: (error as Error).message, attempt: failures }, 'warn');
    }
    options.onConnected?.(false);
    const wait = Math.min(RECONNECT_MAX_MS, RECONNECT_FIRST_MS * 2 ** Math.max(0, failures - 1));
    if (signal.aborted) break;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, wait);
      signal.addEventListener('abort', () => resolve(clearTimeout(timer)), { once: true });
    });
  }
}

async function streamOnce(target: URL, options: NudgeListenerOptions, signal: AbortSignal, connected: () => void): Promise<void> {
  const headers = await signedHeaders({ method: 'GET', url: target.href, service: NUDGE_SIGNING_SERVICE, headers: { accept: 'text/event-stream' } }, options);
  const stop = new AbortController();
  const abort = () => stop.abort();
  signal.addEventListener('abort', abort, { once: true });
  // Stopped while signing: an aborted signal fires no more, and the stream would stay open for ever.
  if (signal.aborted) stop.abort();
  let silence: NodeJS.Timeout | undefined;
  const alive = () => {
    clearTimeout(silence);
    silence = setTimeout(() => stop.abort(new Error('the push channel went silent')), options.silenceMs ?? 45_000);
  };
  try {
    alive();
    const response = await fetch(target, { headers, signal: stop.signal });
    if (response.status !== 200 || !response.body) throw new Error(`the control plane answered ${response.status}: ${(await response.text()).slice(0, 200)}`);
    connected();
    const parser = createParser({
      onEvent: (event) => {
        if (event.event !== 'nudge') return;
        let value: unknown;
        try {
          value = JSON.parse(event.data);
        } catch {
          return;
        }
        const nudge = nudgeSchema.safeParse(value);
        // Only this VM's: anything else is ignored (it never should come).
        if (nudge.success && nudge.data.resourceGroup === options.resourceGroup && nudge.data.vm === options.vm) options.onNudge(nudge.data);
      },
      onComment: alive,
    });
    const decoder = new TextDecoder();
    const reader = response.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      alive();
      parser.feed(decoder.decode(value, { stream: true }));
    }
    throw new Error('the control plane closed the push channel');
  } finally {
    clearTimeout(silence);
    signal.removeEventListener('abort', abort);
  }
}
