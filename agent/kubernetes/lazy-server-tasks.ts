/**
 * The server tasks, loaded only when a document has a `kubernetes` section: every other VM's
 * agent (webgateways poll every second, for ever) never loads @kubernetes/client-node.
 */
import type { KubernetesTaskRunner } from '../agent.ts';
import type { KubernetesTasks } from '../../shared/schema/document.ts';
import type { KubernetesReport } from '../../shared/contract/agent-report.ts';
import type { ServerTasks, ServerTasksOptions } from './server-tasks.ts';

export class LazyServerTasks implements KubernetesTaskRunner {
  readonly #options: ServerTasksOptions;
  #tasks: ServerTasks | undefined;

  constructor(options: ServerTasksOptions) {
    this.#options = options;
  }

  async #load(): Promise<ServerTasks> {
    this.#tasks ??= new (await import('./server-tasks.ts')).ServerTasks(this.#options);
    return this.#tasks;
  }

  async update(tasks: KubernetesTasks | undefined): Promise<KubernetesReport | undefined> {
    if (!tasks && !this.#tasks) return undefined;
    return (await this.#load()).update(tasks);
  }

  async round(): Promise<KubernetesReport> {
    return (await this.#load()).round();
  }

  get intervalSeconds(): number {
    return this.#tasks?.intervalSeconds ?? 60;
  }

  async stop(): Promise<void> {
    await this.#tasks?.stop();
  }
}
