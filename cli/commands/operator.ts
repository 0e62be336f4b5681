/** `ringmaster event send`, `status`, `dlq list`, `dlq replay`: thin clients of the HTTP API. */
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { ApiClient, ApiError, type ConnectionOptions } from '../api-client.ts';
import { InputError } from '../input.ts';
import { table } from '../table.ts';

export interface OutputOptions extends ConnectionOptions {
  readonly json?: boolean;
}

const print = (text: string) => process.stdout.write(`${text}\n`);
/** Text that came from a VM (agent reports) is shown without control characters: no terminal escapes. */
const printable = (text: string) => text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');

async function readEvents(file: string): Promise<unknown> {
  const text = file === '-' ? await new Response(process.stdin as unknown as ReadableStream).text() : await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
    throw new InputError(file, [`cannot read: ${error.code ?? error.message}`]);
  });
  try {
    return file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    throw new InputError(file, [`not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${(error as Error).message.split('\n')[0]}`]);
  }
}

interface ProblemBody {
  errors?: Array<{ index?: number; id?: string; field: string; reason: string }>;
}

export async function sendEvents(file: string, options: OutputOptions): Promise<number> {
  const events = await readEvents(file);
  try {
    const result = (await new ApiClient(options).request('POST', '/v1/events', events)) as { accepted: string[] };
    print(options.json ? JSON.stringify(result) : `accepted ${result.accepted.length} event(s): ${result.accepted.join(', ')}`);
    return 0;
  } catch (error) {
    if (error instanceof ApiError && error.status === 400) {
      const errors = (error.body as ProblemBody).errors ?? [];
      process.stderr.write(`${error.message}\n${errors.map((e) => `${file}: ${e.field || 'body'}${e.id ? ` (event ${e.id})` : ''}: ${e.reason}`).join('\n')}\n`);
      return 2;
    }
    throw error;
  }
}

interface StatusBody {
  resourceGroup: string;
  updatedAt: string;
  findings: Array<{ severity: string; code: string; subject: { kind: string; name: string }; message: string }>;
  documents: Array<{ vm: string; roles: string[]; generation?: number; hash?: string; blockedBy: string[]; inSync: boolean; agent: { appliedGeneration?: number; outcome?: string; error?: string; invalid?: string } | null }>;
  rejections: Array<{ eventId: string; type: string; reason: string }>;
}

export async function showStatus(rg: string, options: OutputOptions): Promise<number> {
  const status = (await new ApiClient(options).request('GET', `/v1/resource-groups/${encodeURIComponent(rg)}`)) as StatusBody;
  if (options.json) {
    print(JSON.stringify(status, null, 2));
    return 0;
  }
  print(`Resource group ${status.resourceGroup} (updated ${status.updatedAt})\n`);
  print(
    table(
      ['VM', 'ROLES', 'GENERATION', 'AGENT', 'IN SYNC', 'BLOCKED BY'],
      status.documents.map((d) => [
        d.vm,
        d.roles.join(',') || '-',
        d.generation === undefined ? '-' : String(d.generation),
        d.agent ? printable(d.agent.invalid ?? `${d.agent.appliedGeneration} ${d.agent.outcome}${d.agent.error ? `: ${d.agent.error}` : ''}`) : 'no report',
        d.inSync ? 'yes' : 'no',
        d.blockedBy.join(', '),
      ]),
    ),
  );
  if (status.findings.length > 0) {
    print('');
    print(table(['SEVERITY', 'SUBJECT', 'CODE', 'MESSAGE'], status.findings.map((f) => [f.severity, `${f.subject.kind} ${f.subject.name}`, f.code, f.message])));
  }
  if (status.rejections.length > 0) {
    print('\nRefused events:');
    print(table(['EVENT', 'TYPE', 'REASON'], status.rejections.map((r) => [r.eventId, r.type, r.reason])));
  }
  return 0;
}

export async function listDeadLetters(options: OutputOptions): Promise<number> {
  const result = (await new ApiClient(options).request('GET', '/v1/dead-letters')) as { deadLetters: Array<{ id: string; resourceGroup: string; type?: string; reason: string }> };
  if (options.json) print(JSON.stringify(result, null, 2));
  else if (result.deadLetters.length === 0) print('No dead letters.');
  else print(table(['ID', 'RESOURCE GROUP', 'TYPE', 'REASON'], result.deadLetters.map((d) => [d.id, d.resourceGroup, d.type ?? '?', d.reason])));
  return 0;
}

export async function replayDeadLetters(ids: readonly string[], options: OutputOptions): Promise<number> {
  const result = (await new ApiClient(options).request('POST', '/v1/dead-letters/replay', ids.length > 0 ? { ids } : {})) as { replayed: number };
  print(options.json ? JSON.stringify(result) : `replayed ${result.replayed} dead letter(s)`);
  return 0;
}
