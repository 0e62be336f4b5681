/**
 * Applying a document: write what changed, check it with the service's own validation before
 * anything goes live, then make it live (a reload, or for endpoint-only changes of haproxy the
 * runtime API, no reload). All or nothing: a failure at any step (a folder, a write, a
 * validation, a reload) puts every file and folder back and makes every service that already
 * took the new files take the restored ones, so the last good state keeps running.
 */
import { rm } from 'node:fs/promises';
import type { VersionedDocument } from '../shared/contract/document-envelope.ts';
import { layoutUnder, type Layout } from '../shared/layout.ts';
import type { ServiceSpec } from '../shared/schema/document.ts';
import { excerpt, type ServiceManager, systemdServices } from './service-manager/service-manager.ts';
import { placePlaceholders } from './certificates/placeholder.ts';
import { FileJournal, onDisk, onDiskWithoutLinks, writeAtomically } from './files.ts';
import { applyRuntime, retiredServerCommands, runtimeCommand, serversState, slotCommands } from './haproxy-runtime.ts';

export interface CommandResult {
  readonly code: number;
  readonly output: string;
}

/** Runs `argv`; with `stdinFile`, the runner (root) reads that file and gives it the command on its standard input. */
export type CommandRunner = (argv: readonly string[], stdinFile?: string) => Promise<CommandResult>;

export interface ApplyOptions {
  /** Prefix of every path on disk ("/" on a VM). */
  readonly root: string;
  readonly run: CommandRunner;
  /** Where this VM's daemons keep their files, as documents name them; the services' commands come from it. */
  readonly layout: Layout;
  /** Who checks and (re)loads the services (default: systemd, with the layout's commands run by `run`). */
  readonly services?: ServiceManager;
}

/** Who checks and (re)loads the services: the given manager, else systemd with the agent's own commands, naming the files where they are on this disk (a document sends none). */
export function servicesOf(options: ApplyOptions): ServiceManager {
  return options.services ?? systemdServices(options.root === '/' ? options.layout : layoutUnder(options.root, options.layout.reload, options.layout), options.run);
}

/** The steps of an apply, in order: a failure names the one it happened at. */
export type ApplyStep = 'folders' | 'write' | 'validate' | 'reload';

export interface ApplyResult {
  readonly outcome: 'applied' | 'unchanged' | 'failed';
  readonly error?: string;
  /** Where a failed apply failed (everything was put back). */
  readonly failedStep?: ApplyStep;
  /** Services reloaded (or restarted) to take the change. */
  readonly reloaded: readonly string[];
  /** Runtime-API commands sent to haproxy instead of a reload. */
  readonly runtimeCommands: number;
  /** Pod servers haproxy serves beyond its configured slots, per frontend. */
  readonly extraServers: Record<string, number>;
}

/** A failure at one step of an apply, with what it was doing. */
class StepFailure extends Error {
  readonly step: ApplyStep;
  constructor(step: ApplyStep, message: string) {
    super(message);
    this.step = step;
  }
}

/** Runs `work` as part of `step`: whatever it throws becomes a failure of that step, naming `what`. */
async function atStep<T>(step: ApplyStep, what: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof StepFailure) throw error;
    throw new StepFailure(step, `${what}: ${(error as Error).message}`);
  }
}


function changedPaths(next: VersionedDocument, previous: VersionedDocument | undefined): Set<string> {
  const before = new Map((previous?.files ?? []).map((file) => [file.path, `${file.sha256} ${file.mode}`]));
  return new Set(next.files.filter((file) => before.get(file.path) !== `${file.sha256} ${file.mode}`).map((file) => file.path));
}

/** haproxy's change is endpoints only: same structure, so the runtime API does it. */
function haproxyRuntimeOnly(next: VersionedDocument, previous: VersionedDocument | undefined, service: ServiceSpec): boolean {
  return service.name === 'haproxy' && previous?.haproxy !== undefined && next.haproxy !== undefined && previous.haproxy.structureHash === next.haproxy.structureHash;
}

async function syncHaproxy(next: VersionedDocument, root: string): Promise<{ commands: number; extra: Record<string, number> }> {
  const runtime = next.haproxy!;
  const socket = onDisk(root, runtime.socket);
  const state = await serversState(socket);
  let commands = 0;
  const extra: Record<string, number> = {};
  for (const backend of runtime.backends) {
    const current = new Map(state.filter((s) => s.backend === backend.name).map((s) => [s.server, s]));
    const list = [...slotCommands(backend.name, backend.slots, current, backend.serverOptions), ...retiredServerCommands(backend.name, backend.slots, current)];
    await applyRuntime(socket, list);
    commands += list.length;
    const added = backend.slots.filter((slot) => !current.has(slot.server) && slot.address).length;
    if (added > 0) extra[backend.frontend] = added;
  }
  // Saved so that the next reload starts from the runtime state (load-server-state-from-file).
  await writeAtomically(onDisk(root, runtime.serverStateFile), `${await runtimeCommand(socket, 'show servers state')}\n`, 0o600);
  return { commands, extra };
}


export async function applyDocument(next: VersionedDocument, previous: VersionedDocument | undefined, options: ApplyOptions): Promise<ApplyResult> {
  const changed = changedPaths(next, previous);
  const removed = (previous?.files ?? []).filter((file) => !next.files.some((f) => f.path === file.path)).map((file) => file.path);
  if (changed.size === 0 && removed.length === 0) return { outcome: 'unchanged', reloaded: [], runtimeCommands: 0, extraServers: {} };

  const journal = new FileJournal();
  // Owners other than root are set with chown (names resolve through the VM's own user database).
  const own = async (path: string, owner: string, group: string) => {
    if ((owner === 'root' && group === 'root') || process.getuid?.() !== 0) return;
    const result = await options.run(['chown', `${owner}:${group}`, path]);
    if (result.code !== 0) throw new Error(`cannot give it to ${owner}:${group}: ${excerpt(result.output)}`);
  };
  const touched = next.services.filter((service) => service.files.some((path) => changed.has(path)));
  const services = servicesOf(options);
  /** Services running the new files already (reloaded, or haproxy's servers set at run time). */
  const live: ServiceSpec[] = [];
  const reloaded: string[] = [];
  let runtimeCommands = 0;
  let extraServers: Record<string, number> = {};
  try {
    for (const directory of next.directories) {
      await atStep('folders', `creating ${directory.path}`, async () => {
        const path = await onDiskWithoutLinks(options.root, directory.path);
        await journal.writeFolder(path, Number.parseInt(directory.mode, 8));
        await own(path, directory.owner, directory.group);
      });
    }
    for (const file of next.files) {
      if (!changed.has(file.path)) continue;
      await atStep('write', `writing ${file.path}`, async () => {
        const path = await onDiskWithoutLinks(options.root, file.path);
        await journal.writeFile(path, file.content, Number.parseInt(file.mode, 8));
        await own(path, file.owner, file.group);
      });
    }
    // Before nginx validates: a TLS host without files gets a self-signed placeholder (ACME
    // replaces it later, after the apply). Not journaled: a placeholder is the agent's own
    // certificate state, as good for the next try as for this one, never a document's file.
    await atStep('write', 'placing placeholder certificates', () => placePlaceholders(options.root, next.certificates ?? [], new Date()));
    for (const service of touched) {
      const validation = services.validate(service.name);
      if (!validation) continue;
      const check = await atStep('validate', `${service.name}: validation`, () => validation);
      if (check.code !== 0) throw new StepFailure('validate', `${service.name}: validation failed (${check.command}): ${excerpt(check.output)}`);
    }
    for (const service of touched) {
      // Counted as live before it is tried: a reload that fails half-way (a restart that stopped
      // k3s and could not start it) is undone by another one on the restored files.
      live.push(service);
      if (haproxyRuntimeOnly(next, previous, service)) {
        const synced = await atStep('reload', 'haproxy: runtime API', () => syncHaproxy(next, options.root));
        runtimeCommands += synced.commands;
        extraServers = synced.extra;
        continue;
      }
      const result = await atStep('reload', `${service.name}: reload`, () => services.reload(service.name));
      if (result.code !== 0) throw new StepFailure('reload', `${service.name}: reload failed (${result.command}): ${excerpt(result.output)}`);
      reloaded.push(service.name);
    }
  } catch (error) {
    const failed = error instanceof StepFailure ? error : new StepFailure('write', (error as Error).message);
    const notRestored = await journal.restore();
    const notReloaded = await takeRestoredFiles(live, journal, { next, previous, options, services });
    const undone = [
      ...(notRestored.length > 0 ? [`could not put back ${notRestored.join('; ')}`] : []),
      ...notReloaded,
    ];
    return {
      outcome: 'failed',
      failedStep: failed.step,
      error: `failed at ${failed.step}: ${failed.message}${undone.length > 0 ? `; putting the last good state back failed too: ${undone.join('; ')}` : ''}`,
      reloaded,
      runtimeCommands,
      extraServers,
    };
  }
  for (const path of removed) await rm(onDisk(options.root, path), { force: true });
  return { outcome: 'applied', reloaded, runtimeCommands, extraServers };
}

/**
 * Makes the services that took (or tried to take) the new files take the restored ones: a
 * reload again, or haproxy's servers set back through the runtime API. A service that had no
 * files before this apply has nothing to go back to and is left alone. Returns what failed.
 */
async function takeRestoredFiles(
  live: readonly ServiceSpec[],
  journal: FileJournal,
  context: { next: VersionedDocument; previous: VersionedDocument | undefined; options: ApplyOptions; services: ServiceManager },
): Promise<string[]> {
  const { next, previous, options, services } = context;
  const failures: string[] = [];
  for (const service of live) {
    try {
      if (haproxyRuntimeOnly(next, previous, service)) {
        await syncHaproxy(previous!, options.root);
        continue;
      }
      const changed = changedPaths(next, previous);
      if (!service.files.some((path) => !changed.has(path) || journal.existedBefore(onDisk(options.root, path)))) continue;
      const result = await services.reload(service.name);
      if (result.code !== 0) failures.push(`${service.name}: reload on the restored files failed: ${excerpt(result.output)}`);
    } catch (error) {
      failures.push(`${service.name}: taking the restored files failed: ${(error as Error).message}`);
    }
  }
  return failures;
}

/**
 * After the agent starts, loads again what lives only in the kernel (the host firewall) from the
 * document applied last: a reboot empties it, and the document, being unchanged, is not applied
 * again. Returns what failed (reported, never stops the agent).
 */
export async function reloadOnStart(applied: VersionedDocument, options: ApplyOptions): Promise<string[]> {
  return servicesOf(options).resume(applied.services.map((service) => service.name));
}
