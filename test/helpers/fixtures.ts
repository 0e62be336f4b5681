/** Test fixtures: the shipped examples, parsed exactly as `ringmaster plan` parses them. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseResourceGroup } from '../../cli/input.ts';
import type { ResourceGroup } from '../../shared/schema/resource-group.ts';
import type { VmDocument } from '../../shared/schema/document.ts';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const TOKEN = 'test-cluster-token-0123456789abcdef';
export const WEBHOOK_KEY = 'test-webhook-key-fedcba9876543210';
export const DATASTORE_PASSWORD = 'test-datastore-password-55aa66bb';

export function example(name: string): ResourceGroup {
  const path = `${ROOT}examples/${name}.yaml`;
  const rg = parseResourceGroup(path, readFileSync(path, 'utf8'));
  return { ...rg, secrets: { clusterToken: TOKEN, webhookKey: WEBHOOK_KEY, datastorePassword: DATASTORE_PASSWORD } };
}

export function documentOf(documents: readonly VmDocument[], vm: string): VmDocument {
  const document = documents.find((d) => d.vm === vm);
  if (!document) throw new Error(`no document for ${vm}; have ${documents.map((d) => d.vm).join(', ')}`);
  return document;
}

export function fileOf(document: VmDocument, suffix: string): string {
  const file = document.files.find((f) => f.path.endsWith(suffix));
  if (!file) throw new Error(`${document.vm} has no file ending in ${suffix}; has ${document.files.map((f) => f.path).join(', ')}`);
  return file.content;
}
