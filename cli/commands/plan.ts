/**
 * `ringmaster plan FILE`: findings as a table, then one document per VM, written to
 * `--out DIR` or printed (secret file contents are never printed, only written).
 */
import { compareText } from '../../shared/compare.ts';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { computeDesiredState, type DesiredState } from '../../shared/desired-state.ts';
import { layoutUnder } from '../../shared/layout.ts';
import type { ResourceGroup } from '../../shared/schema/resource-group.ts';
import type { VmDocument } from '../../shared/schema/document.ts';
import { secretValue } from '../../shared/schema/primitives.ts';
import { deriveSecret } from '../../shared/secrets.ts';
import { acmeSettingsFrom, InputError, readResourceGroup } from '../input.ts';
import { table } from '../table.ts';

export interface PlanOptions {
  readonly out?: string;
  readonly json?: boolean;
  readonly tokenFile?: string;
  readonly root?: string;
  /** Where VMs order TLS certificates (else $RINGMASTER_ACME_DIRECTORY / $RINGMASTER_ACME_EMAIL, else Let's Encrypt production). */
  readonly acmeDirectory?: string;
  readonly acmeEmail?: string;
}

export function redactSecrets(document: VmDocument): VmDocument {
  return {
    ...document,
    files: document.files.map((file) => (file.secret ? { ...file, content: `<secret, ${file.content.length} bytes: written only with --out>` } : file)),
  };
}

async function readToken(tokenFile: string): Promise<string> {
  const token = (await readFile(tokenFile, 'utf8').catch(() => {
    throw new InputError(tokenFile, ['cannot read the token file']);
  })).trim();
  const valid = secretValue.safeParse(token);
  if (!valid.success) throw new InputError(tokenFile, [`token ${valid.error.issues[0]?.message ?? 'is invalid'}`]);
  return token;
}

/**
 * The cluster secrets a plan needs. The token is the description's, else --token-file's; every
 * other secret the description lacks (the datastore password) is derived from it, so the same
 * description and token file always plan the same documents, byte for byte. Only without any
 * token is one drawn at random (and the plan says so): a secret computed from the description
 * alone would be known to anyone who can read the description.
 */
async function withSecrets(rg: ResourceGroup, tokenFile: string | undefined): Promise<{ rg: ResourceGroup; generated: boolean }> {
  if (!rg.cluster) return { rg, generated: false };
  const given = rg.secrets.clusterToken ?? (tokenFile ? await readToken(tokenFile) : undefined);
  const clusterToken = given ?? randomBytes(32).toString('hex');
  const datastorePassword = rg.secrets.datastorePassword ?? deriveSecret(clusterToken, rg.name, 'plan', 'datastore-password');
  return { rg: { ...rg, secrets: { ...rg.secrets, clusterToken, datastorePassword } }, generated: given === undefined };
}

export function findingsTable(state: DesiredState): string {
  if (state.findings.length === 0) return 'No findings.';
  return table(
    ['SEVERITY', 'SUBJECT', 'CODE', 'MESSAGE'],
    state.findings.map((f) => [f.severity, `${f.subject.kind} ${f.subject.name}`, f.code, f.message]),
  );
}

export function documentsTable(state: DesiredState): string {
  const rows = [
    ...state.documents.map((d) => [d.vm, d.roles.join(',') || '-', String(d.files.length), d.hash.slice(0, 19), 'ready']),
    ...state.blocked.map((b) => [b.vm, '', '', '', `blocked: ${b.reasons.join(', ')}`]),
  ].sort((a, b) => compareText(a[0] ?? '', b[0] ?? ''));
  return table(['VM', 'ROLES', 'FILES', 'HASH', 'DOCUMENT'], rows);
}

export async function plan(file: string, options: PlanOptions): Promise<number> {
  const acme = acmeSettingsFrom(options);
  const { rg, generated } = await withSecrets(await readResourceGroup(file), options.tokenFile);
  const state = computeDesiredState(rg, { acme, ...(options.root ? { layout: layoutUnder(options.root) } : {}) });
  const hasErrors = state.findings.some((f) => f.severity === 'error');

  if (options.json && !options.out) {
    process.stdout.write(`${JSON.stringify({ ...state, documents: state.documents.map(redactSecrets) }, null, 2)}\n`);
    return hasErrors ? 1 : 0;
  }
  process.stdout.write(`Resource group ${state.resourceGroup}\n\n${findingsTable(state)}\n\n${documentsTable(state)}\n`);
  if (generated) process.stdout.write('\nNo cluster token was given (--token-file): a new random one was generated for this plan (give one to plan the same documents every time).\n');
  if (options.out) {
    await mkdir(options.out, { recursive: true });
    for (const document of state.documents) {
      const path = join(options.out, `${document.vm}.json`);
      await writeFile(path, `${JSON.stringify(document, null, 2)}\n`, { mode: 0o600 });
      await chmod(path, 0o600);
    }
    process.stdout.write(`\nWrote ${state.documents.length} documents to ${options.out}\n`);
  } else if (!options.json) {
    for (const document of state.documents) {
      process.stdout.write(`\n--- ${document.vm}.json\n${JSON.stringify(redactSecrets(document), null, 2)}\n`);
    }
  }
  return hasErrors ? 1 : 0;
}
