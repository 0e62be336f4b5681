/** `ringmaster event send`, `status`, `dlq list`, `dlq replay`: thin clients of the HTTP API. */
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { ApiClient, ApiError, type ConnectionOptions } from '../api-client.ts';
import { InputError } from '../input.ts';
import { table } from '../table.ts';
import { problemSchema } from '../../shared/contract/problem.ts';
import type { DocumentView, StatusView } from '../../shared/contract/status-view.ts';
import { certificateDetail, rolloutDetail, shortText, statusGlance } from '../../shared/status-badges.ts';

export interface OutputOptions extends ConnectionOptions {
  readonly json?: boolean;
}

const print = (text: string) => process.stdout.write(`${text}\n`);
/** Text that came from a VM (agent reports) is shown without control characters: no terminal escapes. */
const printable = (text: string) => text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');

/** An events file (JSON or YAML; `-` is standard input), parsed but not yet checked: the API checks it. */
export async function readEventsFile(file: string): Promise<unknown> {
  const text = file === '-' ? await new Response(process.stdin as unknown as ReadableStream).text() : await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
    throw new InputError(file, [`cannot read: ${error.code ?? error.message}`]);
  });
  try {
    return file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    throw new InputError(file, [`not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${(error as Error).message.split('\n')[0]}`]);
  }
}

export async function sendEvents(file: string, options: OutputOptions): Promise<number> {
  const events = await readEventsFile(file);
  try {
    const result = await new ApiClient(options).call('postEvents', {}, events);
    print(options.json ? JSON.stringify(result) : `accepted ${result.accepted.length} event(s): ${result.accepted.join(', ')}`);
    return 0;
  } catch (error) {
    if (error instanceof ApiError && error.status === 400) {
      const problem = problemSchema.safeParse(error.body);
      const errors = problem.success ? (problem.data.errors ?? []) : [];
      process.stderr.write(`${error.message}\n${errors.map((e) => `${file}: ${e.field || 'body'}${e.id ? ` (event ${e.id})` : ''}: ${e.reason}`).join('\n')}\n`);
      return 2;
    }
    throw error;
  }
}

/** What the agent runs, in one cell: the error cut to `errorWidth` characters with `…` (all of it with --wide or --json). */
function agentColumn(agent: DocumentView['agent'], errorWidth: number): string {
  if (!agent) return 'no report';
  if ('invalid' in agent) return printable(agent.invalid);
  const error = agent.error ? printable(agent.error.replace(/\s*\n\s*/g, ' ⏎ ')) : '';
  return `${agent.appliedGeneration} ${agent.outcome}${error ? `: ${Number.isFinite(errorWidth) ? shortText(error, errorWidth) : error}` : ''}`;
}

/** What the store really holds for the VM, flagged when it is not what the state wants. */
function storedColumn(d: DocumentView): string {
  if (d.stored === null) return d.storedAsWanted ? '-' : 'MISSING';
  const copy = `${d.stored.generation} ${d.stored.hash.replace(/^sha256:/, '').slice(0, 12)}`;
  return d.storedAsWanted ? copy : `${copy} DIFFERS`;
}

export interface StatusOptions extends OutputOptions {
  /** Whole errors, however wide the table gets. */
  readonly wide?: boolean;
}

/** A terminal's width, or 120 when printing to a pipe or file. */
const terminalColumns = () => process.stdout.columns || 120;

export async function showStatus(rg: string, options: StatusOptions): Promise<number> {
  const status = await new ApiClient(options).call('getResourceGroup', { rg });
  if (options.json) {
    print(JSON.stringify(status, null, 2));
    return 0;
  }
  print(statusText(status, { wide: options.wide ?? false, columns: terminalColumns() }));
  return 0;
}

/** A group's status as `ringmaster status` prints it (and `ringmaster demo` redraws it): badges, VM table, findings, refused events. */
export function statusText(status: StatusView, options: { readonly wide: boolean; readonly columns: number; readonly now?: Date }): string {
  const lines: string[] = [];
  const glance = statusGlance(status, options.now ?? new Date());
  lines.push(`Resource group ${status.resourceGroup} (updated ${status.updatedAt})`);
  const line = (text: string) => (options.wide ? text : shortText(text, options.columns));
  lines.push(line(`  sync:   ${glance.sync.label} (${printable(glance.sync.detail)})`));
  lines.push(`${line(`  health: ${glance.health.label} (${printable(glance.health.detail)})`)}\n`);
  const rows = (errorWidth: number) =>
    status.documents.map((d) => [
      d.vm,
      d.roles.join(',') || '-',
      d.generation === undefined ? '-' : String(d.generation),
      storedColumn(d),
      agentColumn(d.agent, errorWidth),
      d.inSync ? 'yes' : 'no',
      d.blockedBy.join(', '),
    ]);
  const header = ['VM', 'ROLES', 'GENERATION', 'STORED', 'AGENT', 'IN SYNC', 'BLOCKED BY'];
  // Errors get what the terminal has left once every other cell fits (at least 20 characters).
  const widest = (text: string) => Math.max(...text.split('\n').map((row) => row.length));
  const withoutErrors = widest(table(header, rows(0)));
  lines.push(table(header, rows(options.wide ? Number.POSITIVE_INFINITY : Math.max(20, options.columns - withoutErrors - 2))));
  if (status.strayDocuments.length > 0) lines.push(`\nStored but wanted by no VM: ${status.strayDocuments.join(', ')}`);
  // A VM nudges cannot reach learns of changes only by polling: slower, and paid per poll.
  const pushDown = glance.vms.filter((v) => v.push?.connected === false);
  if (pushDown.length > 0) lines.push('', line(`Push channel down (polling at the document's interval): ${pushDown.map((v) => `${v.vm} since ${v.push!.since}`).join(', ')}`));
  if (status.rollout) {
    const { rollout } = status;
    lines.push(`\nGateway rollout (${rollout.phase}, since ${rollout.startedAt}):`);
    lines.push(line(`  ${printable(rolloutDetail(rollout))}`));
  }
  if (status.certificates.length > 0) {
    lines.push('\nCertificates:');
    lines.push(table(['VM', 'HOST', 'STATE', 'DETAIL'], status.certificates.map((c) => [c.vm, c.host, c.state, line(printable(certificateDetail(c)))])));
  }
  if (status.findings.length > 0) {
    lines.push('');
    lines.push(table(['SEVERITY', 'SUBJECT', 'CODE', 'MESSAGE'], status.findings.map((f) => [f.severity, `${f.subject.kind} ${f.subject.name}`, f.code, f.message])));
  }
  if (status.rejections.length > 0) {
    lines.push('\nRefused events:');
    lines.push(table(['EVENT', 'TYPE', 'REASON'], status.rejections.map((r) => [r.eventId, r.type, r.reason])));
  }
  return lines.join('\n');
}

const HISTORY_EVENTS_SHOWN = 3;

/** The audit trail of a group (or of one VM of it), newest first. */
export async function showHistory(rg: string, vm: string | undefined, options: OutputOptions): Promise<number> {
  const history = await new ApiClient(options).call('getResourceGroupHistory', { rg });
  const vms = vm === undefined ? history.vms : history.vms.filter((entry) => entry.vm === vm);
  if (vm !== undefined && vms.length === 0) throw new InputError('vm', [`${vm} has no history in ${rg} (known: ${history.vms.map((v) => v.vm).join(', ') || 'none'})`]);
  if (options.json) {
    print(JSON.stringify({ ...history, vms }, null, 2));
    return 0;
  }
  // The first few events in the table (a provisioning batch names dozens); --json has them all.
  const events = (entry: (typeof vms)[number]['entries'][number]) => {
    const shown = entry.events.slice(0, HISTORY_EVENTS_SHOWN).map((e) => `${printable(e.id)} (${printable(e.type)})`);
    const hidden = entry.moreEvents + entry.events.length - shown.length;
    return `${shown.join(', ') || (entry.repair ? 'repair after an unfinished run' : '-')}${hidden > 0 ? ` +${hidden} more` : ''}`;
  };
  print(
    table(
      ['VM', 'GENERATION', 'HASH', 'STORED AT', 'EVENTS', 'AGENT'],
      vms.flatMap(({ vm: name, entries }) =>
        entries.map((entry) => [
          name,
          entry.generation === null ? 'deleted' : String(entry.generation),
          entry.hash === null ? '-' : entry.hash.replace(/^sha256:/, '').slice(0, 12),
          entry.at,
          events(entry),
          entry.agent ? `${entry.agent.outcome} at ${entry.agent.at}${entry.agent.error ? `: ${shortText(printable(entry.agent.error), 60)}` : ''}` : '-',
        ]),
      ),
    ),
  );
  return 0;
}

export async function listDeadLetters(options: OutputOptions): Promise<number> {
  const result = await new ApiClient(options).call('listDeadLetters', {});
  if (options.json) print(JSON.stringify(result, null, 2));
  else if (result.deadLetters.length === 0) print('No dead letters.');
  else print(table(['ID', 'RESOURCE GROUP', 'TYPE', 'REASON'], result.deadLetters.map((d) => [d.id, d.resourceGroup, d.type ?? '?', d.reason])));
  return 0;
}

export async function replayDeadLetters(ids: readonly string[], options: OutputOptions): Promise<number> {
  const result = await new ApiClient(options).call('replayDeadLetters', {}, ids.length > 0 ? { ids } : {});
  print(options.json ? JSON.stringify(result) : `replayed ${result.replayed} dead letter(s)`);
  return 0;
}
