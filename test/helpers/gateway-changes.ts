/**
 * The reference architecture on a local control plane, for tests of when an agent fetches:
 * send portal events, change the webgateway's document, and read which generation web01's agent
 * last fetched and tried (its report says, applied or not).
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { LocalControlPlane } from '../../local/control-plane.ts';
import type { AgentReport } from '../../shared/contract/agent-report.ts';
import { storeKeys } from '../../shared/contract/store-layout.ts';
import { ROOT } from './fixtures.ts';

type PortalEvent = { id: string; type: string; occurredAt: string; payload: Record<string, unknown> };

export const REFERENCE_EVENTS = parseYaml(readFileSync(`${ROOT}examples/events/reference-architecture.yaml`, 'utf8')) as PortalEvent[];

export function gatewayChanges(controlPlane: () => LocalControlPlane, idPrefix: string) {
  let seq = 0;
  const send = async (event: unknown): Promise<void> => {
    const { apiUrl, apiToken } = controlPlane().info;
    const response = await fetch(`${apiUrl}/v1/events`, { method: 'POST', headers: { authorization: `Bearer ${apiToken}`, 'content-type': 'application/json' }, body: JSON.stringify(event) });
    if (response.status !== 202) throw new Error(`events refused: ${response.status} ${await response.text()}`);
  };
  const report = async (): Promise<AgentReport | undefined> => {
    const stored = await controlPlane().store.get(storeKeys.report('demo', 'web01'));
    return stored ? (JSON.parse(stored.body) as AgentReport) : undefined;
  };
  return {
    send,
    /** A change to web01's document: the frontend's pod count (its haproxy config). */
    changeGateway: async (): Promise<void> => {
      const frontend = REFERENCE_EVENTS.find((e) => e.type === 'frontend.upserted')!;
      seq++;
      const payload = structuredClone(frontend.payload) as { frontend: { maxExpectedPods?: number } };
      payload.frontend.maxExpectedPods = 10 + seq;
      await send({ ...frontend, id: `${idPrefix}-${seq}`, occurredAt: new Date(Date.parse(frontend.occurredAt) + seq * 60_000).toISOString(), payload });
    },
    /** The newest generation web01's agent fetched and tried (its report says), applied or not. */
    attempted: async (): Promise<number> => (await report())?.attemptedGeneration ?? 0,
    /** web01's agent's last report, as stored. */
    report,
  };
}
