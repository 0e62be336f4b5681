/**
 * The Kubernetes side of the k3s server's agent, driven by the `kubernetes` section of its
 * document: forward the watched services' endpoints, grant and revoke cluster access, answer
 * kubeconfig requests, drain and uncordon nodes for maintenance. Each round is idempotent
 * and runs after every applied document and on a timer (faster while a drain is under way);
 * a failing part is reported and tried again next round, never stops the others.
 */
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { KubeConfig } from '@kubernetes/client-node';
import type { KubernetesTasks } from '../../shared/schema/document.ts';
import { type KubernetesReport, kubernetesReportSchema } from '../../shared/contract/agent-report.ts';
import { routeUrl } from '../../shared/contract/routes.ts';
import { describeApiError } from './api-errors.ts';
import { K3S_SERVER_CA } from './k3s-files.ts';
import { ClusterAccess, clusterCaData, issueKubeconfig } from './cluster-access.ts';
import { EndpointForwarder, type WebhookBatch } from './endpoint-forwarder.ts';
import { HomeKubeconfigs, type HomeKubeconfigsOptions } from './home-kubeconfigs.ts';
import { installLoginFiles } from './login-files.ts';
import { missingOf } from '../prerequisites.ts';
import { candidatesOf, LOGIN_TOOLS, type PrerequisitePaths } from '../../shared/prerequisites.ts';
import { NodeDrainer } from './node-drain.ts';
import { delivered, postSigned, signRequest } from './signed-post.ts';

export { K3S_SERVER_CA };

export interface ServerTasksOptions {
  /** The cluster admin's kubeconfig (k3s writes `/etc/rancher/k3s/k3s.yaml`). */
  readonly kubeconfigPath: string;
  /** Resolves a path of the document to where it is on disk (the agent's `--root`). */
  readonly onDisk: (path: string) => string;
  readonly resourceGroup: string;
  readonly log?: (message: string, fields?: Record<string, unknown>) => void;
  readonly now?: () => Date;
  /** Seconds between rounds while idle, while a drain runs, and while a kubeconfig waits to be delivered. */
  readonly idleIntervalSeconds?: number;
  readonly deliveryRetrySeconds?: number;
  readonly drainIntervalSeconds?: number;
  /** Batching of endpoint changes (tests and benchmarks tune it). */
  readonly batchDelayMs?: number;
  readonly onWebhookSent?: (batch: WebhookBatch, sentAt: number) => void;
  /**
   * Keeps a kubeconfig in the home of each user with access, and the login files that go with
   * it (see home-kubeconfigs.ts, login-files.ts). The agent always does; unset in tests of the
   * other tasks, which run without Unix users.
   */
  readonly homes?: Omit<HomeKubeconfigsOptions, 'now' | 'log'> & {
    /** Where users' programs are looked for, to report a missing kubectl or helm (unset: not checked). */
    readonly toolPaths?: PrerequisitePaths;
  };
}

interface Connected {
  readonly kubeConfig: KubeConfig;
  readonly access: ClusterAccess;
  readonly drainer: NodeDrainer;
  readonly forwarder: EndpointForwarder;
}

export class ServerTasks {
  readonly #options: ServerTasksOptions;
  #tasks: KubernetesTasks | undefined;
  #connected: Connected | undefined;
  #answered = new Set<string>();
  /** Kubeconfigs issued but not yet delivered, by user: sent again as they are, not issued again. */
  #undelivered = new Map<string, { kubeconfig: string; expiresAt: string; requestIds: string[] }>();
  #round: Promise<KubernetesReport> | undefined;
  #nextRound: Promise<KubernetesReport> | undefined;
  #webhook = { calls: 0, failures: 0, lastSentAt: undefined as string | undefined, lastRefusal: undefined as string | undefined };
  #lastReport: KubernetesReport | undefined;
  readonly #homes: HomeKubeconfigs | undefined;

  constructor(options: ServerTasksOptions) {
    this.#options = options;
    if (options.homes) this.#homes = new HomeKubeconfigs({ ...options.homes, ...(options.now ? { now: options.now } : {}), ...(options.log ? { log: options.log } : {}) });
  }

  get lastReport(): KubernetesReport | undefined {
    return this.#lastReport;
  }

  /**
   * The pause before the next round: a second while an issued kubeconfig waits for the control
   * plane (so it arrives within two seconds of the control plane being back, at the cost of one
   * request a second while it is away), short while a node is being drained, a minute otherwise.
   */
  get intervalSeconds(): number {
    if (this.#undelivered.size > 0) return this.#options.deliveryRetrySeconds ?? 1;
    const draining = this.#lastReport?.drain.some((d) => d.phase === 'evicting' || d.phase === 'postponed') ?? false;
    return draining ? (this.#options.drainIntervalSeconds ?? 10) : (this.#options.idleIntervalSeconds ?? 60);
  }

  #log(message: string, fields: Record<string, unknown> = {}): void {
    this.#options.log?.(message, fields);
  }

  /** Takes the tasks of a newly applied document and runs a round with them. */
  async update(tasks: KubernetesTasks | undefined): Promise<KubernetesReport | undefined> {
    this.#tasks = tasks;
    if (!tasks) {
      await this.stop();
      return undefined;
    }
    return this.round();
  }

  /** One round; concurrent callers share the one running. */
  /**
   * One round. A caller arriving while one runs gets the next one, which starts when the
   * running one ends and sees the newest tasks (a user who just lost access is revoked then,
   * not a timer period later). Callers arriving meanwhile share that next round.
   */
  round(): Promise<KubernetesReport> {
    if (!this.#round) {
      this.#round = this.#runRound().finally(() => (this.#round = undefined));
      return this.#round;
    }
    this.#nextRound ??= this.#round.then(
      () => this.#startNext(),
      () => this.#startNext(),
    );
    return this.#nextRound;
  }

  #startNext(): Promise<KubernetesReport> {
    this.#nextRound = undefined;
    return this.round();
  }

  /** Stops watching; changes already seen are sent first (for up to `flushTimeoutMs`). */
  async stop(flushTimeoutMs = 5000): Promise<void> {
    const forwarder = this.#connected?.forwarder;
    this.#connected = undefined;
    if (!forwarder) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([forwarder.idle(), new Promise((resolve) => (timer = setTimeout(resolve, flushTimeoutMs)))]);
    clearTimeout(timer);
    await forwarder.stop();
  }

  async #connect(): Promise<Connected> {
    if (this.#connected) return this.#connected;
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(this.#options.kubeconfigPath);
    const forwarder = new EndpointForwarder({
      kubeConfig,
      deliver: (batch) => this.#deliverEndpoints(batch),
      ...(this.#options.batchDelayMs !== undefined ? { batchDelayMs: this.#options.batchDelayMs } : {}),
      ...(this.#options.log ? { log: this.#options.log } : {}),
    });
    const connected = { kubeConfig, access: new ClusterAccess(kubeConfig), drainer: new NodeDrainer(kubeConfig, this.#options.now), forwarder };
    this.#connected = connected;
    return connected;
  }

  /** Where and with which key this cluster calls the control plane, when its document says. */
  async #controlPlane(): Promise<{ apiUrl: string; key: string } | undefined> {
    const controlPlane = this.#tasks?.controlPlane;
    if (!controlPlane) return undefined;
    const key = (await readFile(this.#options.onDisk(controlPlane.keyFile), 'utf8')).trim();
    return key ? { apiUrl: controlPlane.apiUrl, key } : undefined;
  }

  async #deliverEndpoints(batch: WebhookBatch): Promise<boolean> {
    const target = await this.#controlPlane();
    if (!target) return false;
    let response;
    try {
      response = await postSigned(signRequest(routeUrl(target.apiUrl, 'postClusterEndpoints', { rg: this.#options.resourceGroup }), target.key, batch.body));
    } catch (error) {
      this.#webhook.failures++;
      throw error;
    }
    if (!delivered(response.status)) {
      this.#webhook.failures++;
      this.#log('endpoint webhook refused', { status: response.status, answer: response.text.slice(0, 300) });
      // A body the control plane finds invalid will not pass by sending it again: it is dropped,
      // and the next round's report says so (the forwarder's own checks make this unexpected).
      if (response.status === 400 || response.status === 413) {
        this.#webhook.lastRefusal = `HTTP ${response.status}: ${response.text.slice(0, 300)}`;
        return true;
      }
      return false;
    }
    this.#webhook.calls++;
    this.#webhook.lastSentAt = new Date().toISOString();
    this.#options.onWebhookSent?.(batch, Date.now());
    return true;
  }

  async #runRound(): Promise<KubernetesReport> {
    const tasks = this.#tasks!;
    const errors: string[] = [];
    const report: { -readonly [K in keyof KubernetesReport]: KubernetesReport[K] } = {
      at: (this.#options.now?.() ?? new Date()).toISOString(),
      accessUsers: [...tasks.accessUsers],
      revoked: [],
      kubeconfigsDelivered: [],
      drain: [],
      endpointWebhook: { calls: 0, failures: 0 }, // filled in by #finish
      errors,
    };
    let connected: Connected;
    try {
      connected = await this.#connect();
    } catch (error) {
      // The first line only: a YAML error goes on to quote the file, which holds the admin's key.
      errors.push(`the cluster admin kubeconfig ${this.#options.kubeconfigPath} cannot be read: ${(error as Error).message.split('\n')[0]!.slice(0, 300)}`);
      return this.#finish(report);
    }
    connected.forwarder.setWatched(tasks.controlPlane ? tasks.watchedServices : []);
    try {
      await connected.forwarder.start();
    } catch (error) {
      errors.push(`endpoint watch: ${describeApiError(error)}`);
    }
    try {
      const access = await connected.access.reconcile(tasks.accessUsers);
      report.revoked = [...access.revoked];
      if (access.revoked.length > 0) this.#log('cluster access revoked', { users: access.revoked });
    } catch (error) {
      errors.push(`access: ${describeApiError(error)}`);
    }
    report.kubeconfigsDelivered = await this.#answerRequests(connected, tasks, errors);
    await this.#reportClusterCa(tasks, errors);
    if (this.#homes) await this.#keepHomeKubeconfigs(this.#homes, connected, tasks, report);
    try {
      report.drain = await connected.drainer.reconcile(tasks.drainNodes, tasks.drainTimeoutSeconds);
    } catch (error) {
      errors.push(`drain: ${describeApiError(error)}`);
    }
    return this.#finish(report);
  }

  #finish(draft: KubernetesReport): KubernetesReport {
    const { lastRefusal, ...webhook } = this.#webhook;
    const errors = [...draft.errors, ...(lastRefusal ? [`the control plane refused endpoint changes: ${lastRefusal}`] : [])];
    this.#webhook.lastRefusal = undefined;
    // Cut to the report's own limits: a report that does not validate would hide the drain status.
    const report = kubernetesReportSchema.parse({ ...draft, endpointWebhook: webhook, errors });
    this.#lastReport = report;
    if (report.errors.length > 0) this.#log('kubernetes tasks failed in part; trying again next round', { errors: report.errors });
    return report;
  }

  /**
   * Tells the control plane the hash of the CA k3s made, until the document shows it pinned:
   * then agents join with the secure token form. No CA file yet (k3s has not started) is normal.
   */
  async #reportClusterCa(tasks: KubernetesTasks, errors: string[]): Promise<void> {
    const ca = await readFile(this.#options.onDisk(K3S_SERVER_CA)).catch(() => undefined);
    if (!ca) return;
    const caHash = createHash('sha256').update(ca).digest('hex');
    if (tasks.clusterCaHash === caHash) return;
    if (tasks.clusterCaHash !== undefined) {
      // Said once by the control plane already (it refuses a second hash): said here every round.
      errors.push(`k3s' CA (${caHash.slice(0, 12)}…) is not the one the control plane pinned (${tasks.clusterCaHash.slice(0, 12)}…): agents keep joining only the pinned one`);
      return;
    }
    try {
      const target = await this.#controlPlane();
      if (!target) return;
      const response = await postSigned(signRequest(routeUrl(target.apiUrl, 'postClusterCa', { rg: this.#options.resourceGroup }), target.key, JSON.stringify({ caHash })));
      if (!delivered(response.status)) throw new Error(`the control plane answered ${response.status}: ${response.text.slice(0, 300)}`);
      this.#log('cluster CA reported', { caHash });
    } catch (error) {
      errors.push(`cluster CA: ${describeApiError(error)}`);
    }
  }

  /** Login files first (they name who has access), then each user's own kubeconfig. */
  async #keepHomeKubeconfigs(homes: HomeKubeconfigs, connected: Connected, tasks: KubernetesTasks, report: { homeKubeconfigs?: KubernetesReport['homeKubeconfigs']; errors: string[] }): Promise<void> {
    try {
      await installLoginFiles(this.#options.onDisk, tasks.accessUsers);
    } catch (error) {
      report.errors.push(`login files: ${(error as Error).message.slice(0, 300)}`);
    }
    const toolPaths = this.#options.homes?.toolPaths;
    const missingTools = toolPaths ? await missingOf(candidatesOf(LOGIN_TOOLS, toolPaths)) : [];
    if (missingTools.length > 0) report.errors.push(`users with sudo-srv lack ${missingTools.map((tool) => tool.name).join(' and ')} on this server (see "What a VM needs" in the README)`);
    // Users whose access failed to be granted this round still get a file: issuing grants again.
    const kept = await homes.reconcile(tasks.accessUsers, (user) => this.issue(user, connected));
    report.homeKubeconfigs = kept.kubeconfigs;
    report.errors.push(...kept.errors);
  }

  /** Issues one kubeconfig per user with open requests and delivers it; undelivered ones are tried next round. */
  async #answerRequests(connected: Connected, tasks: KubernetesTasks, errors: string[]): Promise<KubernetesReport['kubeconfigsDelivered']> {
    // Only requests still listed are remembered: the control plane drops the ones it saw answered.
    const listed = new Set(tasks.kubeconfigRequests.map((request) => request.requestId));
    for (const id of this.#answered) if (!listed.has(id)) this.#answered.delete(id);
    const open = tasks.kubeconfigRequests.filter((request) => !this.#answered.has(request.requestId) && tasks.accessUsers.includes(request.user));
    const users = [...new Set(open.map((request) => request.user))].sort();
    const deliveredList: Array<KubernetesReport['kubeconfigsDelivered'][number]> = [];
    for (const user of this.#undelivered.keys()) if (!users.includes(user)) this.#undelivered.delete(user);
    // Half its lifetime left at least, or it is issued anew: the portal hands out what it gets.
    const fresh = (expiresAt: string) => Date.parse(expiresAt) - Date.now() > (tasks.kubeconfigTtlHours * 3600_000) / 2;
    for (const user of users) {
      const requestIds = open.filter((request) => request.user === user).map((request) => request.requestId);
      try {
        const target = await this.#controlPlane();
        if (!target) throw new Error('the document names no control plane to deliver to');
        const pending = this.#undelivered.get(user);
        const issued = pending && fresh(pending.expiresAt) ? pending : await this.issue(user, connected);
        this.#undelivered.set(user, { kubeconfig: issued.kubeconfig, expiresAt: issued.expiresAt, requestIds });
        const body = JSON.stringify({ user, kubeconfig: issued.kubeconfig, expiresAt: issued.expiresAt, requestIds });
        const response = await postSigned(signRequest(routeUrl(target.apiUrl, 'postClusterKubeconfig', { rg: this.#options.resourceGroup }), target.key, body));
        if (!delivered(response.status)) {
          // A refusal will not pass by sending the same bytes again: the next round issues anew.
          if (response.status >= 400 && response.status < 500 && response.status !== 408 && response.status !== 429) this.#undelivered.delete(user);
          throw new Error(`the control plane answered ${response.status}: ${response.text.slice(0, 300)}`);
        }
        this.#undelivered.delete(user);
        for (const id of requestIds) this.#answered.add(id);
        deliveredList.push({ user, expiresAt: issued.expiresAt, requestIds });
        this.#log('kubeconfig issued and delivered', { user, expiresAt: issued.expiresAt, answers: requestIds.length });
      } catch (error) {
        errors.push(`kubeconfig for ${user}: ${describeApiError(error)}`);
      }
    }
    return deliveredList;
  }

  /** A kubeconfig for `user` with this document's TTL and public URL. */
  async issue(user: string, connected?: Connected): Promise<{ kubeconfig: string; expiresAt: string }> {
    if (!this.#tasks) throw new Error('this VM runs no k3s server');
    const { kubeConfig, access } = connected ?? (await this.#connect());
    return kubeconfigForUser(this.#tasks, kubeConfig, access, this.#options.resourceGroup, user);
  }
}

/**
 * A kubeconfig for a user with `sudo-srv`, as the server's document describes the cluster
 * (TTL, public URL): what the agent delivers and what `ringmaster kubeconfig` prints.
 */
export function kubeconfigForUser(tasks: KubernetesTasks, kubeConfig: KubeConfig, access: ClusterAccess, resourceGroup: string, user: string): Promise<{ kubeconfig: string; expiresAt: string }> {
  if (!tasks.accessUsers.includes(user)) throw new Error(`user ${user} does not have the sudo-srv permission in resource group ${resourceGroup}`);
  return issueKubeconfig(access, {
    user,
    ttlHours: tasks.kubeconfigTtlHours,
    serverUrl: tasks.apiServerUrl,
    caData: clusterCaData(kubeConfig, (path) => readFileSync(path)),
    clusterName: resourceGroup,
  });
}
