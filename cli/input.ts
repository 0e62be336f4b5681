/** Reads a resource group description (JSON or YAML) and explains exactly what is wrong with it. */
import { readFile } from 'node:fs/promises';
import { parseDocument } from 'yaml';
import { fieldErrors, formatFieldErrors } from '../shared/schema/errors.ts';
import { type ResourceGroup, resourceGroupInputSchema } from '../shared/schema/resource-group.ts';
import { type AcmeSettings, AcmeSettingsError, parseAcmeSettings } from '../shared/certificates/acme-settings.ts';

/** Bad input: the CLI prints the lines and exits with code 2. */
export class InputError extends Error {
  readonly lines: readonly string[];
  constructor(source: string, lines: readonly string[]) {
    super(`${source}: invalid input`);
    this.lines = lines.map((line) => `${source}: ${line}`);
  }
}

function parseText(source: string, text: string): unknown {
  if (source.endsWith('.json')) {
    try {
      return JSON.parse(text);
    } catch (error) {
      throw new InputError(source, [`not valid JSON: ${(error as Error).message}`]);
    }
  }
  const document = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (document.errors.length > 0) {
    throw new InputError(source, document.errors.map((e) => `not valid YAML: ${e.message.split('\n')[0]}`));
  }
  return document.toJS({ maxAliasCount: 100 });
}

export function parseResourceGroup(source: string, text: string): ResourceGroup {
  const result = resourceGroupInputSchema.safeParse(parseText(source, text));
  if (!result.success) throw new InputError(source, formatFieldErrors(fieldErrors(result.error)));
  return result.data;
}

export async function readResourceGroup(path: string): Promise<ResourceGroup> {
  let text: string;
  try {
    text = path === '-' ? await readStdin() : await readFile(path, 'utf8');
  } catch (error) {
    throw new InputError(path, [`cannot read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`]);
  }
  return parseResourceGroup(path === '-' ? 'stdin' : path, text);
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * The ACME settings of `plan` and `serve`: the flags, else RINGMASTER_ACME_DIRECTORY and
 * RINGMASTER_ACME_EMAIL, else Let's Encrypt production. An error names the flag (or variable).
 */
export function acmeSettingsFrom(flags: { acmeDirectory?: string | undefined; acmeEmail?: string | undefined }, env: NodeJS.ProcessEnv = process.env): AcmeSettings {
  const directory = flags.acmeDirectory ?? env.RINGMASTER_ACME_DIRECTORY;
  const email = flags.acmeEmail ?? env.RINGMASTER_ACME_EMAIL;
  const fields = {
    directory: flags.acmeDirectory !== undefined ? '--acme-directory' : 'RINGMASTER_ACME_DIRECTORY',
    email: flags.acmeEmail !== undefined ? '--acme-email' : 'RINGMASTER_ACME_EMAIL',
  };
  try {
    return parseAcmeSettings({ directory, email }, fields);
  } catch (error) {
    if (!(error instanceof AcmeSettingsError)) throw error;
    const [field, ...reason] = error.message.split(': ');
    throw new InputError(field!, [reason.join(': ')]);
  }
}
