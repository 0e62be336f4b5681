/** The local control plane (in this process) with the reference architecture's `demo` group provisioned and its six documents stored. */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { type LocalControlPlane, type LocalOptions, startLocalControlPlane } from '../../local/control-plane.ts';
import { waitFor } from './control-plane-process.ts';
import { ROOT } from './fixtures.ts';

export async function startDemoControlPlane(options: LocalOptions): Promise<LocalControlPlane> {
  const cp = await startLocalControlPlane(options);
  const events = parseYaml(readFileSync(`${ROOT}examples/events/reference-architecture.yaml`, 'utf8'));
  const response = await fetch(`${cp.info.apiUrl}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${cp.info.apiToken}` }, body: JSON.stringify(events) });
  if (response.status !== 202) throw new Error(`the reference architecture's events were refused: ${response.status} ${await response.text()}`);
  await waitFor('the documents of demo', async () => ((await cp.store.list('desired/demo/')).length === 6 ? true : undefined));
  return cp;
}
