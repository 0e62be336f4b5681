/**
 * "Its backends are up": what a canary gateway checks after a reload before it reports a
 * rollout's generation applied. A frontend that had a server up before the reload must have one
 * up again once health checks had time to run (haproxy may show a server up right after a
 * reload, before its first check: hence the settle time); frontends that had none up before
 * (no pods yet) say nothing about the change.
 */
import type { BackendServer } from '../shared/contract/agent-report.ts';

/** `default-server inter 2s fall 2` (shared/render/haproxy.ts): a server whose checks fail is down within 4 s. */
export const CANARY_SETTLE_MS = 4_000;
export const CANARY_TIMEOUT_MS = 30_000;

/** The frontends with a server up in `before` and none in `after`, sorted. */
export function frontendsDownSince(before: readonly BackendServer[], after: readonly BackendServer[]): string[] {
  const up = (servers: readonly BackendServer[]) => new Set(servers.filter((server) => server.state === 'up').map((server) => server.frontend));
  const now = up(after);
  return [...up(before)].filter((frontend) => !now.has(frontend)).sort();
}

export interface CanaryHealthOptions {
  readonly read: () => Promise<BackendServer[] | undefined>;
  readonly settleMs?: number;
  readonly timeoutMs?: number;
  readonly sleep?: (ms: number) => Promise<void>;
}

/** Undefined once every frontend that had a server up has one again (after the settle time); else why not, at the timeout. */
export async function backendsBackUp(before: readonly BackendServer[], options: CanaryHealthOptions): Promise<string | undefined> {
  const settle = options.settleMs ?? CANARY_SETTLE_MS;
  const timeout = Math.max(settle, options.timeoutMs ?? CANARY_TIMEOUT_MS);
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const started = Date.now();
  let down: string[] = [];
  for (;;) {
    const elapsed = Date.now() - started;
    const after = await options.read();
    down = after === undefined ? ['(haproxy does not answer on its runtime socket)'] : frontendsDownSince(before, after);
    if (elapsed >= settle && down.length === 0) return undefined;
    if (elapsed >= timeout) break;
    await sleep(500);
  }
  return `after the reload no server was up for ${Math.round(timeout / 1000)} s in ${down.join(', ')} (servers were up before)`;
}
