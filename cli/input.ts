/** Reads a resource group description (JSON or YAML) and explains exactly what is wrong with it. */
import { readFile } from 'node:fs/promises';
import { parseDocument } from 'yaml';
import { fieldErrors, formatFieldErrors } from '../shared/schema/errors.ts';
import { type ResourceGroup, resourceGroupInputSchema } from '../shared/schema/resource-group.ts';

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
