/**
 * A VM that lives in a folder, for tests and benchmarks with a real haproxy (and, if asked, a
 * real nginx): documents are rendered under the folder, and the product's sandbox service
 * manager (agent/service-manager/sandbox.ts) starts the daemons on their first reload and
 * reloads them after that; k3s (and nginx and PostgreSQL unless asked) are not run.
 */
import type { Layout } from '../../shared/layout.ts';
import { SandboxServices } from '../../agent/service-manager/sandbox.ts';

export interface FolderVm {
  readonly layout: Layout;
  /** haproxy's runtime (stats) socket, as the document names it. */
  readonly socket: string;
  /** Pass to the agent (`services`): it runs the daemons. */
  readonly services: SandboxServices;
  /** Stops the haproxy the VM started, if any. */
  stopHaproxy(): Promise<void>;
  /** Stops the nginx the VM started, if any. */
  stopNginx(): Promise<void>;
}

export function vmInFolder(root: string, options: { nginx?: boolean; postgresql?: boolean } = {}): FolderVm {
  const services = new SandboxServices({ root, notRun: [...(options.nginx ? [] : ['nginx' as const]), ...(options.postgresql ? [] : ['postgresql' as const])] });
  return {
    layout: services.layout,
    socket: services.layout.haproxySocket,
    services,
    stopHaproxy: () => services.stopService('haproxy'),
    stopNginx: () => services.stopService('nginx'),
  };
}
