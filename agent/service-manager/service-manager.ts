/**
 * The agent's service-manager port: how a service's new files are checked and made live. Two
 * kinds: `systemd` (a real VM: the daemons are systemd's, the agent runs the layout's reload
 * commands) and `sandbox` (a VM in a folder: the agent runs the daemons itself, see
 * sandbox.ts). apply.ts knows only this port.
 */
import type { CommandRunner } from '../apply.ts';
import type { Layout } from '../../shared/layout.ts';
import { type ServiceName, serviceCommands } from '../../shared/services.ts';

export const SERVICE_MANAGER_KINDS = ['systemd', 'sandbox'] as const;
export type ServiceManagerKind = (typeof SERVICE_MANAGER_KINDS)[number];

/** What one step did: the command (or what stands for it) for the report, its exit status and output. */
export interface ServiceStep {
  readonly command: string;
  readonly code: number;
  readonly output: string;
}

export interface ServiceManager {
  readonly kind: ServiceManagerKind;
  /** Checks the service's new files before anything goes live; undefined when the service has no check. */
  validate(service: ServiceName): Promise<ServiceStep> | undefined;
  /** Makes the service run its files (a reload, or a start when it does not run yet). */
  reload(service: ServiceName): Promise<ServiceStep>;
  /** What the report says about these services beyond outcomes (a sandbox: what it does not run). */
  notices(services: readonly ServiceName[]): string[];
  /**
   * At the agent's start, for the document applied before: loads again what does not outlive
   * the agent or a reboot (systemd: the host firewall, in the kernel only; a sandbox: its
   * daemons, which ended with the last agent). Returns what failed (reported, never stops the agent).
   */
  resume(services: readonly ServiceName[]): Promise<string[]>;
  /** Stops what this manager started (nothing for systemd). */
  stop(): Promise<void>;
}

/** Output of a failed command, short, for the report (never file contents). */
export const excerpt = (text: string) => text.trim().split('\n').slice(-10).join('\n').slice(0, 2000);

/** systemd's: the layout's validation and reload commands (shared/services.ts), run by `run`. */
export function systemdServices(layout: Layout, run: CommandRunner): ServiceManager {
  const commands = serviceCommands(layout);
  const step = async (argv: readonly string[], stdinFile?: string): Promise<ServiceStep> => ({ command: argv.join(' '), ...(await run(argv, stdinFile)) });
  return {
    kind: 'systemd',
    validate: (service) => {
      const { validate } = commands[service];
      return validate ? step(validate) : undefined;
    },
    reload: (service) => step(commands[service].reload, commands[service].reloadInput),
    notices: () => [],
    resume: async (services) => {
      const failures: string[] = [];
      for (const service of services) {
        const command = commands[service];
        if (!command.reloadOnStart) continue;
        const result = await run(command.reload, command.reloadInput);
        if (result.code !== 0) failures.push(`reloading ${service} at start failed: ${excerpt(result.output)}`);
      }
      return failures;
    },
    stop: async () => undefined,
  };
}
