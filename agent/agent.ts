/**
 * The pull agent on each VM: poll its own document (conditional GET), verify it, apply it,
 * report what runs. Small and boring on purpose: the last good state keeps running through
 * any failure (store unreachable, a broken document, a rejected config), and it recovers by
 * itself. It logs generations, outcomes and errors, never file contents.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { S3ServiceException, type S3Client } from '@aws-sdk/client-s3';
import type { KubernetesTasks } from '../shared/schema/document.ts';
import { notOwnedBy, parseStoredDocument, type StoredDocument, verifyStoredDocument } from '../shared/contract/document-envelope.ts';
import type { TrustedKey } from '../shared/contract/document-signing.ts';
import { delegationFingerprint } from '../shared/contract/delegation.ts';
import { type RootTrust, rootTrustFile, rootTrustFileSchema, startingTrust } from '../shared/contract/root-announcement.ts';
import { type BackendServer, type CertificateReport, type KubernetesReport, type RecentOutcome, withOutcome } from '../shared/contract/agent-report.ts';
import { type ApplyResult, applyDocument, type CommandRunner, servicesOf } from './apply.ts';
import { CertificateManager, type CertificateOptions, type NginxControl } from './certificates/certificate-manager.ts';
import { type Fetched, fetchDocument, type Identity, putReport } from './document-source.ts';
import { onDisk, readIfExists, writeAtomically } from './files.ts';
import { backendStates } from './haproxy-runtime.ts';
import { missingPrerequisites } from './prerequisites.ts';
import { Redactor } from './redaction.ts';
import { DEFAULT_LAYOUT, type Layout } from '../shared/layout.ts';
import { missingPrerequisitesReason, type PrerequisitePaths } from '../shared/prerequisites.ts';
import { beyondRoles } from '../shared/services.ts';
import type { ServiceManager } from './service-manager/service-manager.ts';
import { PollAlarm } from './poll-alarm.ts';
import { type Nudge, safetyPollSeconds } from '../shared/contract/nudges.ts';
import { MAX_ROLLOUT_REASON } from '../shared/events/rollout-events.ts';
import { CanaryReporter } from './canary-reporter.ts';
import { backendsBackUp } from './canary-health.ts';

export interface AgentOptions {
  readonly client: S3Client;
  readonly identity: Identity;
  /**
   * The control plane's root keys, from the configuration: a document whose signing key no
   * trusted root delegated is never applied. Root announcements in documents change the set;
   * the agent keeps it in `trust.json` of its state dir (a retired root stays retired).
   */
  readonly trustedKeys: readonly TrustedKey[];
  /** Prefix for every path the agent writes ("/" on a VM). */
  readonly root: string;
  /** Where this VM's daemons keep their files, as documents name them (default: a production VM's). */
  readonly layout?: Layout;
  /** Where the agent keeps the last applied document. */
  readonly stateDir: string;
  readonly run?: CommandRunner;
  readonly log?: (message: string, fields?: Record<string, unknown>, level?: LogLevel) => void;
  readonly now?: () => Date;
  /**
   * Where to look for the programs and systemd units the document's services need, checked
   * before anything is written (the CLI passes a VM's folders). Unset: not checked, as when
   * the daemons' commands are stood in for (tests, benchmarks).
   */
  readonly prerequisites?: PrerequisitePaths;
  /** The k3s server's Kubernetes tasks (agent/kubernetes/server-tasks.ts); other VMs have none. */
  readonly kubernetes?: KubernetesTaskRunner;
  /** Who checks and (re)loads the services (default: systemd, the layout's commands run by `run`). */
  readonly services?: ServiceManager;
  /** How TLS certificates are ordered (the ACME directory itself comes with the document). */
  readonly certificates?: CertificateOptions;
  /** false: no certificate is ordered, the hosts keep their placeholders (a sandboxed VM no CA can reach). */
  readonly orderCertificates?: boolean;
  /**
   * The push channel (agent/nudge-listener.ts), when there is one: a nudge makes the agent poll
   * at once, and while it is connected polling slows to the safety intervals.
   */
  /** A rollout's canary: how long its backends may take to come back after a reload, and how its report is retried. */
  readonly canary?: { readonly settleMs?: number; readonly timeoutMs?: number; readonly retryMs?: number };
  readonly push?: {
    readonly listen: (handlers: { onNudge: (nudge: Nudge) => void; onConnected: (connected: boolean) => void }, signal: AbortSignal) => Promise<void>;
    readonly safetyPollSeconds?: { readonly gateway: number; readonly other: number };
  };
}

/** What the agent needs of the Kubernetes tasks: run them for a document, and again on a timer. */
export interface KubernetesTaskRunner {
  update(tasks: KubernetesTasks | undefined): Promise<KubernetesReport | undefined>;
  round(): Promise<KubernetesReport>;
  readonly intervalSeconds: number;
  stop(): Promise<void>;
}

export type LogLevel = 'debug' | 'info' | 'warn';

/**
 * The longest wait between polls while the store cannot be reached. A webgateway does not back
 * off at all: it keeps its 1 s poll, so it serves the current endpoints within two seconds of
 * the store being back however long it was away, at the cost it has anyway (10,000 gateways:
 * ~10,000 requests a second, as when the store is up). Other roles back off to a minute: their
 * changes are rarer and less urgent.
 */
export function retryCapSeconds(roles: readonly string[] | undefined): number {
  return roles?.includes('webgateway') ? 1 : 60;
}

export interface PollOutcome {
  readonly kind: 'not-modified' | 'missing' | 'applied' | 'unchanged' | 'failed';
  readonly generation?: number;
  readonly error?: string;
  readonly result?: ApplyResult;
}

export const runCommand: CommandRunner = async (argv, stdinFile) => {
  // Read here, by the agent (root), before the command runs as whoever it runs as.
  const input = stdinFile === undefined ? undefined : await readFile(stdinFile);
  return new Promise((resolve) => {
    const child = execFile(argv[0]!, argv.slice(1), { timeout: 120_000, maxBuffer: 4 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof (error as { code?: unknown }).code === 'number' ? ((error as { code: number }).code) : 1) : 0;
      resolve({ code, output: `${stdout}${stderr}${error && code === 1 && !stderr ? error.message : ''}` });
    });
    // A command that exits without reading all of it (or never starts) closes the pipe: that is its exit status's to say.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(input);
  });
};

/** How often a webgateway's agent asks haproxy for its servers' states between documents. */
const BACKEND_REFRESH_MS = 5000;

/** How long a poll waits for the Kubernetes round of a new document before reporting without it. */
const KUBERNETES_WAIT_MS = 20_000;

/** Jittered wait: at least ±10 %, so a thousand VMs never poll in the same second. */
export function jittered(seconds: number, random = Math.random): number {
  return seconds * (0.9 + 0.2 * random());
}

export class Agent {
  readonly #options: AgentOptions;
  #applied: StoredDocument | undefined;
  #loaded = false;
  /** The roots trusted now: the configured ones, then as announcements say. */
  #trust: RootTrust;
  /** The last delegation whose root signature verified: the day's documents all carry it. */
  #verifiedDelegation: string | undefined;
  /** The ETag of the document that runs: a poll asks the store only whether it changed. */
  #etag: string | undefined;
  /**
   * The document that failed (refused, or its apply failed): tried again from `retryAt` on,
   * backing off with each attempt, until it applies or the store has another one.
   */
  #failing: { etag: string; attempts: number; retryAt: number } | undefined;
  #kubernetesStarted = false;
  #reporting: Promise<void> = Promise.resolve();
  /** The last outcome per generation tried since the agent started (the audit trail shows them). */
  #recent: RecentOutcome[] = [];
  #kubernetesReport: KubernetesReport | undefined;
  /** When the store last answered, and the last time it did not for a while. */
  #lastContact: string | undefined;
  #lastOutage: { startedAt: string; endedAt: string; seconds: number } | undefined;
  /** The store has not answered since then (polls of the run loop only). */
  #outage: { startedAt: Date; failures: number } | undefined;
  /** Secrets of the documents seen: never in a log line or a report. */
  readonly #redact = new Redactor();
  /** A webgateway's haproxy servers as last reported, and when haproxy was last asked. */
  #backends: BackendServer[] | undefined;
  /**
   * Something a report shows changed since the last one (haproxy's servers, the push channel):
   * the poll loop reports again, right after the store answered. Any report clears it.
   */
  #reportDue = false;
  /** Orders and renews the TLS hosts' certificates, after applies and on a daily timer. */
  readonly #certificates: CertificateManager;
  #certificateReport: CertificateReport[] | undefined;
  /** Tells the control plane what this VM, a rollout's canary, did with its document. */
  #canaryReporter: CanaryReporter | undefined;
  /** Wakes the certificate loop (a document with other hosts was applied). */
  #wakeCertificates: (() => void) | undefined;
  /** Applies and certificate installs take turns: nginx is never reloaded half-way through an apply. */
  #turn: Promise<unknown> = Promise.resolve();
  #lastReport: { outcome: 'applied' | 'unchanged' | 'failed'; attempted: number | undefined; error?: string; extraServers?: Record<string, number> } | undefined;
  /** The push channel, when the agent has one: while connected, polling slows to the safety interval. */
  #push: { connected: boolean; since: string } | undefined;
  /** The wait between polls, which a nudge ends. */
  readonly #alarm = new PollAlarm();

  constructor(options: AgentOptions) {
    this.#options = options;
    this.#trust = startingTrust(options.trustedKeys, undefined);
    this.#certificates = new CertificateManager({
      ...options.certificates,
      root: options.root,
      stateDir: join(options.stateDir, 'certificates'),
      nginx: nginxControl(options),
      log: (message, fields, level) => this.#log(message, fields, level),
      exclusive: (work) => this.#exclusive(work),
    });
  }

  /** The root keys this agent trusts now (ids), and those it retired. */
  get trust(): { roots: string[]; retired: string[] } {
    return { roots: this.#trust.roots.map((root) => root.keyId), retired: [...this.#trust.retired] };
  }

  #trustPath(): string {
    return join(this.#options.stateDir, 'trust.json');
  }

  /** Runs `work` once every apply or install before it is done, and before any after it starts. */
  #exclusive<T>(work: () => Promise<T>): Promise<T> {
    const next = this.#turn.catch(() => undefined).then(work);
    this.#turn = next;
    return next;
  }

  /** The running document's TLS hosts, to the certificate loop; it runs at once when they changed. */
  async #certificatesFor(document: StoredDocument): Promise<void> {
    if (this.#certificates.update(document)) this.#wakeCertificates?.();
    // The report says at once what is installed (placeholders, on a fresh VM), before any order.
    this.#certificateReport = document.certificates ? await this.#certificates.statuses() : undefined;
  }

  /** One certificate round (orders what is due), then a report with each host's status. Once `signal` aborts, no order starts and nothing is reported. */
  async certificateRound(signal?: AbortSignal): Promise<CertificateReport[]> {
    await this.#load();
    const statuses = await this.#certificates.round(signal);
    if (signal?.aborted) return statuses;
    this.#certificateReport = statuses.length > 0 ? statuses : undefined;
    await this.#reportAgain().catch((error: unknown) => this.#log('the certificate report could not be written', { error: (error as Error).message }, 'warn'));
    return statuses;
  }

  get applied(): StoredDocument | undefined {
    return this.#applied;
  }

  /** The poll interval the running document asks for (a webgateway's is short). */
  get intervalSeconds(): number {
    return this.#applied?.pollIntervalSeconds ?? 5;
  }

  #statePath(): string {
    return join(this.#options.stateDir, 'applied.json');
  }

  async #load(): Promise<void> {
    if (this.#loaded) return;
    const kept = await readIfExists(this.#trustPath());
    if (kept) {
      try {
        this.#trust = startingTrust(this.#options.trustedKeys, rootTrustFileSchema.parse(JSON.parse(kept.toString('utf8'))));
      } catch (error) {
        // Never silently back to a wider trust than kept: a broken file stops the agent (its reason in the log).
        throw new Error(`${this.#trustPath()} is not a valid trust file (${(error as Error).message}); the agent will not guess which roots to trust`);
      }
    }
    this.#loaded = true;
    const saved = await readIfExists(this.#statePath());
    if (!saved) return;
    // The agent's own copy of what runs: checked for form and hashes (and owner), not for expiry.
    const checked = parseStoredDocument(saved.toString('utf8'));
    if ('reason' in checked) return this.#log('ignoring the saved state', { reason: checked.reason });
    const { document } = checked;
    const foreign = notOwnedBy(document, this.#options.identity);
    if (foreign) return this.#log('ignoring the saved state', { reason: foreign });
    this.#applied = document;
    this.#redact.learn(document);
    // What lives only in the kernel (systemd: the host firewall) or died with the last agent (a
    // sandbox's daemons) is loaded again for the document that runs.
    const failures = await this.#services().resume(document.services.map((service) => service.name));
    for (const failure of failures) this.#log(failure, {}, 'warn');
    await this.#certificatesFor(document);
    // Restarted before the control plane had the canary's report: it waits for it, so again (an accepted one is a no-op).
    if (document.canary) this.#reportCanary(document.canary.reportUrl, { generation: document.generation, outcome: 'applied' });
  }

  /** Sent in the background (retried until accepted): the poll loop and the backends never wait for it. */
  #reportCanary(url: string, report: { generation: number; outcome: 'applied' | 'failed'; reason?: string }): void {
    const { client } = this.#options;
    this.#canaryReporter ??= new CanaryReporter({
      credentials: client.config.credentials,
      region: client.config.region,
      log: (message, fields, level) => this.#log(message, fields, level),
      ...(this.#options.canary?.retryMs ? { retryMs: this.#options.canary.retryMs } : {}),
    });
    const reason = report.reason ? { reason: this.#redact.text(report.reason).slice(0, MAX_ROLLOUT_REASON) } : {};
    void this.#canaryReporter.report(url, { generation: report.generation, outcome: report.outcome, ...reason });
  }

  /** The canary applied its document: applied once its backends are back up (after a reload), else failed with why. */
  async #confirmCanary(document: StoredDocument, result: ApplyResult, before: BackendServer[] | undefined): Promise<void> {
    const canary = document.canary!;
    // A frontend the document removed has no server to come back.
    const kept = new Set(document.haproxy?.backends.map((backend) => backend.frontend));
    const watched = before?.filter((server) => kept.has(server.frontend));
    const down = result.reloaded && watched ? await backendsBackUp(watched, { read: () => this.#readBackends(), ...this.#options.canary }) : undefined;
    if (down) this.#log('canary: backends did not come back after the reload', { generation: document.generation, reason: down }, 'warn');
    this.#reportCanary(canary.reportUrl, { generation: document.generation, outcome: down ? 'failed' : 'applied', ...(down ? { reason: down } : {}) });
  }

  /** Who checks and (re)loads the services: the given manager, else systemd with the layout's commands. */
  #services(): ServiceManager {
    return servicesOf({ root: this.#options.root, run: this.#options.run ?? runCommand, layout: this.#options.layout ?? DEFAULT_LAYOUT, ...(this.#options.services ? { services: this.#options.services } : {}) });
  }

  #log(message: string, fields: Record<string, unknown> = {}, level: LogLevel = 'info'): void {
    this.#options.log?.(message, { resourceGroup: this.#options.identity.resourceGroup, vm: this.#options.identity.vm, ...this.#redact.value(fields) }, level);
  }

  #now(): Date {
    return this.#options.now?.() ?? new Date();
  }

  async #report(outcome: 'applied' | 'unchanged' | 'failed', attempted: number | undefined, error?: string, extraServers?: Record<string, number>): Promise<void> {
    const { identity } = this.#options;
    this.#lastReport = { outcome, attempted, ...(error ? { error } : {}), ...(extraServers ? { extraServers } : {}) };
    const at = (this.#options.now?.() ?? new Date()).toISOString();
    // Reports are made and written one at a time, in the order they were asked for: the newest
    // is the one that stays, and each has every field as of its turn.
    const write = this.#reporting.catch(() => undefined).then(async () => {
      this.#backends = await this.#readBackends();
      // This report has everything as of now.
      this.#reportDue = false;
      // A routine "unchanged" of the generation already remembered says nothing new about it.
      if (attempted !== undefined && attempted > 0 && !(outcome === 'unchanged' && this.#recent[0]?.generation === attempted)) {
        this.#recent = withOutcome(this.#recent, { generation: attempted, outcome, at, ...(error ? { error: error.slice(0, 500) } : {}) });
      }
      const report = {
        resourceGroup: identity.resourceGroup,
        vm: identity.vm,
        appliedGeneration: this.#applied?.generation ?? 0,
        appliedHash: this.#applied?.hash ?? '',
        ...(attempted !== undefined ? { attemptedGeneration: attempted } : {}),
        outcome,
        ...(error ? { error } : {}),
        at,
        ...(extraServers && Object.keys(extraServers).length > 0 ? { extraServers } : {}),
        ...(this.#kubernetesReport ? { kubernetes: this.#kubernetesReport } : {}),
        ...(this.#certificateReport ? { certificates: this.#certificateReport } : {}),
        ...(this.#lastContact ? { lastContact: this.#lastContact } : {}),
        ...(this.#lastOutage ? { lastOutage: this.#lastOutage } : {}),
        ...(this.#push ? { push: this.#push } : {}),
        ...(this.#recent.length > 0 ? { recent: this.#recent } : {}),
        ...(this.#backends ? { backends: this.#backends } : {}),
        ...this.#notices(),
      };
      await putReport(this.#options.client, identity, this.#redact.value(report));
    });
    this.#reporting = write;
    await write;
  }

  /** The running document's haproxy servers as haproxy has them now (undefined: no haproxy, or it does not answer). */
  async #readBackends(): Promise<BackendServer[] | undefined> {
    const runtime = this.#applied?.haproxy;
    if (!runtime) return undefined;
    return backendStates(runtime, onDisk(this.#options.root, runtime.socket)).catch(() => undefined);
  }


  /** What the service manager says of the running document's services ("k3s: not run in sandbox"). */
  #notices(): { notices?: string[] } {
    const notices = [
      ...(this.#options.services?.notices(this.#applied?.services.map((service) => service.name) ?? []) ?? []),
      ...(this.#options.orderCertificates === false && (this.#applied?.certificates?.length ?? 0) > 0 ? ['certificates: placeholders only, none ordered (no CA can reach this VM)'] : []),
    ];
    return notices.length > 0 ? { notices } : {};
  }

  /** Runs the Kubernetes tasks of `document`; their failures are reported, never fail the apply. */
  async #runKubernetes(document: StoredDocument | undefined): Promise<void> {
    const runner = this.#options.kubernetes;
    if (!runner) return;
    this.#kubernetesStarted = true;
    const round = runner.update(document?.kubernetes).then(
      (report) => {
        this.#kubernetesReport = report;
      },
      (error: unknown) => this.#log('kubernetes tasks failed', { error: (error as Error).message }),
    );
    // Usually done within a second or two and then in this report; a hung API server must not
    // hold up the next document: past the limit the round goes on, and a later report has it.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([round, new Promise((resolve) => (timer = setTimeout(resolve, KUBERNETES_WAIT_MS)))]);
    clearTimeout(timer);
  }

  /** A round of the Kubernetes tasks between documents (drains advance, access is re-checked), then a report. */
  async kubernetesRound(): Promise<KubernetesReport | undefined> {
    const runner = this.#options.kubernetes;
    if (!runner || !this.#applied?.kubernetes) return undefined;
    this.#kubernetesReport = await runner.round();
    await this.#reportAgain();
    return this.#kubernetesReport;
  }

  /** One poll: fetch, and if there is something new, verify, apply and report it. */
  async poll(): Promise<PollOutcome> {
    await this.#load();
    // After a restart, the running document's tasks resume before anything new is fetched.
    if (!this.#kubernetesStarted && this.#applied?.kubernetes) await this.#runKubernetes(this.#applied);
    const now = this.#now().getTime();
    // While a failed document waits for its next try, the store is asked only whether it changed.
    const failing = this.#failing && now < this.#failing.retryAt ? this.#failing : undefined;
    let fetched: Fetched;
    try {
      fetched = await fetchDocument(this.#options.client, this.#options.identity, failing?.etag ?? this.#etag);
    } catch (error) {
      // A store that answered with an error can take a report (one that cannot be reached
      // cannot: its outage is reported once it is back). The caller backs off either way.
      if (storeAnswered(error)) await this.#report('failed', undefined, `fetching the document failed: ${(error as Error).message}`).catch(() => undefined);
      throw error;
    }
    const outageEnded = this.#contacted();
    if (fetched.kind === 'not-modified' || fetched.kind === 'missing') {
      // Asked with the running document's ETag: the store holds what runs again, nothing is failing.
      if (fetched.kind === 'not-modified' && !failing) this.#failing = undefined;
      // The status shows the outage: reported once, now (a new document reports anyway).
      if (outageEnded) await this.#reportAgain();
      return { kind: fetched.kind };
    }
    const attempt = await this.#attempt(fetched.body);
    if (attempt.kind === 'failed') {
      // Tried again, less and less often: it may pass later (a service that was down, a full disk).
      const attempts = this.#failing?.etag === fetched.etag ? this.#failing.attempts + 1 : 1;
      const retryAt = now + Math.min(300, 5 * 2 ** (attempts - 1)) * 1000;
      this.#failing = { etag: fetched.etag, attempts, retryAt };
      const error = `${attempt.error}; the last good state keeps running (next try at ${new Date(retryAt).toISOString()})`;
      this.#log(attempt.refused ? 'document refused' : 'apply failed; the last good state keeps running', { generation: attempt.generation, error: attempt.error, attempt: attempts, nextRetryAt: new Date(retryAt).toISOString() }, 'warn');
      await this.#report('failed', attempt.generation, error);
      if (attempt.canary && attempt.generation !== undefined) this.#reportCanary(attempt.canary.reportUrl, { generation: attempt.generation, outcome: 'failed', reason: attempt.error });
      return { kind: 'failed', ...(attempt.generation !== undefined ? { generation: attempt.generation } : {}), error, ...(attempt.result ? { result: attempt.result } : {}) };
    }
    // Only now does this version count as dealt with: it runs.
    this.#etag = fetched.etag;
    this.#failing = undefined;
    const { document, result } = attempt;
    if (this.#options.kubernetes && (document.kubernetes || this.#kubernetesStarted)) await this.#runKubernetes(document);
    this.#log(result.outcome === 'applied' ? 'applied' : 'unchanged', { generation: document.generation, reloaded: result.reloaded, runtimeCommands: result.runtimeCommands });
    await this.#report(result.outcome, document.generation, undefined, result.extraServers);
    if (document.canary) void this.#confirmCanary(document, result, attempt.backendsBefore);
    return { kind: result.outcome, generation: document.generation, result };
  }

  /** Verifies and applies a fetched body; every failure comes back as a reason, none escapes. */
  async #attempt(
    body: string,
  ): Promise<
    | { kind: 'done'; document: StoredDocument; result: ApplyResult; backendsBefore?: BackendServer[] }
    | { kind: 'failed'; refused: boolean; generation?: number; error: string; result?: ApplyResult; canary?: StoredDocument['canary'] }
  > {
    const checked = verifyStoredDocument(body, {
      owner: this.#options.identity,
      trust: this.#trust,
      now: this.#now(),
      ...(this.#verifiedDelegation ? { verifiedDelegation: this.#verifiedDelegation } : {}),
      ...(this.#applied ? { appliedGeneration: this.#applied.generation } : {}),
    });
    if ('reason' in checked) return { kind: 'failed', refused: true, error: `document refused: ${checked.reason}` };
    const { document } = checked;
    this.#verifiedDelegation = delegationFingerprint(document.signature.delegation);
    if (checked.trustChanged) {
      try {
        await this.#keepTrust(checked.trust);
      } catch (error) {
        return { kind: 'failed', refused: false, generation: document.generation, error: `the new root trust could not be kept: ${(error as Error).message}` };
      }
    }
    this.#redact.learn(document);
    // Even a validly signed document may not make the agent do what its roles never need.
    const layout = this.#options.layout ?? DEFAULT_LAYOUT;
    const beyond = beyondRoles(document, layout);
    // A sandboxed VM sent a real VM's paths: say what is missing (the control plane renders for the sandbox only when told).
    const hint = this.#options.services?.kind === 'sandbox' ? ' (a sandboxed VM takes documents rendered for its folder: ringmaster serve --sandbox-root)' : '';
    if (beyond) return { kind: 'failed', refused: true, generation: document.generation, error: `document refused: ${beyond}${hint}` };
    if (this.#options.prerequisites) {
      const missing = missingPrerequisitesReason(await missingPrerequisites(document.services.map((service) => service.name), this.#options.prerequisites));
      // Not refused: it applies once someone installs what is missing.
      if (missing) return { kind: 'failed', refused: false, generation: document.generation, error: `apply failed before it started: ${missing}` };
    }
    // A canary's backends as they were, to tell after a reload whether the change took any down.
    const backendsBefore = document.canary ? await this.#readBackends() : undefined;
    let result: ApplyResult;
    try {
      const previous = this.#applied;
      result = await this.#exclusive(() => applyDocument(document, previous, { root: this.#options.root, run: this.#options.run ?? runCommand, layout, ...(this.#options.services ? { services: this.#options.services } : {}) }));
    } catch (error) {
      // applyDocument puts everything back and says why; this is for what it did not foresee.
      return { kind: 'failed', refused: false, generation: document.generation, error: `apply failed: ${(error as Error).message}`, ...(document.canary ? { canary: document.canary } : {}) };
    }
    if (result.outcome === 'failed') return { kind: 'failed', refused: false, generation: document.generation, error: `apply ${result.error}`, result, ...(document.canary ? { canary: document.canary } : {}) };
    this.#applied = document;
    await this.#certificatesFor(document);
    try {
      await mkdir(this.#options.stateDir, { recursive: true, mode: 0o700 });
      await writeAtomically(this.#statePath(), JSON.stringify(document), 0o600);
    } catch (error) {
      // What runs is this document all the same; after a restart it is applied once more (no change on disk).
      this.#log('the applied document could not be saved', { generation: document.generation, error: (error as Error).message }, 'warn');
    }
    return { kind: 'done', document, result, ...(backendsBefore ? { backendsBefore } : {}) };
  }

  /** Follows a root announcement: kept on disk first, so a restart never trusts a retired root again. */
  async #keepTrust(trust: RootTrust): Promise<void> {
    await mkdir(this.#options.stateDir, { recursive: true, mode: 0o700 });
    await writeAtomically(this.#trustPath(), JSON.stringify(rootTrustFile(trust)), 0o600);
    const before = new Set(this.#trust.roots.map((root) => root.keyId));
    const after = trust.roots.map((root) => root.keyId);
    this.#trust = trust;
    this.#log('root keys changed by a signed announcement', { trusted: after, added: after.filter((id) => !before.has(id)), retired: [...before].filter((id) => !after.includes(id)) });
  }

  /** Polls until `signal` aborts: the document's interval with jitter, backing off on errors; at once when nudged. */
  async run(signal: AbortSignal): Promise<void> {
    const kubernetes = this.#options.kubernetes ? this.#runKubernetesRounds(this.#options.kubernetes, signal) : undefined;
    const push = this.#options.push?.listen(
      {
        onNudge: (nudge) => this.nudge(nudge.generation),
        onConnected: (connected) => {
          const was = this.#push?.connected ?? false;
          // The listener itself warns when the channel cannot be had (once, then now and then).
          if (connected !== this.#push?.connected) {
            this.#log(connected ? 'push channel connected' : 'push channel down; polling at the document\'s interval', {}, 'debug');
            // Said in the next poll's report: the status shows which VMs nudges reach.
            this.#push = { connected, since: this.#now().toISOString() };
            this.#reportDue = true;
          }
          // Connected again: what changed meanwhile is fetched now (ending any backoff), not a safety
          // interval later. Just cut off: polled now, and at the document's interval from then on.
          if (connected || was) this.nudge(undefined);
        },
      },
      signal,
    );
    const backends = this.#runBackendRefresh(signal);
    const certificates = this.#options.orderCertificates === false ? undefined : this.#runCertificateRounds(signal);
    await this.#runPolls(signal);
    await Promise.all([kubernetes, push, backends, certificates]);
    this.#canaryReporter?.stop();
    await this.#options.kubernetes?.stop();
  }

  /** Polls at once (ending any wait or backoff) unless `generation` is the one running already. */
  nudge(generation: number | undefined): void {
    this.#log('nudged', { generation, applied: this.#applied?.generation, waiting: this.#alarm.waiting }, 'debug');
    if (generation !== undefined && generation === this.#applied?.generation && !this.#failing) return;
    this.#alarm.ring();
  }

  /** The wait between polls: the document's interval, or the safety interval while nudges can reach the agent. */
  #pollWait(): number {
    if (!this.#push?.connected) return this.intervalSeconds;
    return Math.max(this.intervalSeconds, safetyPollSeconds(this.#applied?.roles, this.#options.push?.safetyPollSeconds));
  }

  /** A webgateway's haproxy servers, asked for every few seconds, on a timer of their own (polls may be far apart while nudges arrive). */
  async #runBackendRefresh(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await sleep(BACKEND_REFRESH_MS / 1000, signal);
      if (signal.aborted || !this.#applied?.haproxy) continue;
      // Health checks change what haproxy serves between documents (a pod down, a backup up).
      // The report is the poll loop's, written right after the store answered (never a write
      // left hanging on a store that went away, to land later over a newer report).
      const now = await this.#readBackends();
      if (now !== undefined && JSON.stringify(now) !== JSON.stringify(this.#backends)) {
        this.#reportDue = true;
        // While the store is away the poll loop keeps its own pace; the next poll that reaches it reports.
        if (!this.#outage) this.nudge(undefined);
      }
    }
  }

  async #runKubernetesRounds(runner: KubernetesTaskRunner, signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await sleep(jittered(runner.intervalSeconds), signal);
      if (signal.aborted) return;
      try {
        await this.kubernetesRound();
      } catch (error) {
        this.#log('kubernetes round failed', { error: (error as Error).message });
      }
    }
  }

  /**
   * Certificate rounds, never in the way of a poll: when the loop says (the daily check, a
   * failing host's next try) or at once when an applied document changed the hosts.
   */
  async #runCertificateRounds(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const due = this.#certificates.nextCheckAt;
      // Looked at again within the hour at most: the clock may jump (a suspended VM).
      const waitMs = due === undefined ? 3_600_000 : Math.min(3_600_000, Math.max(0, due.getTime() - this.#now().getTime()));
      if (waitMs > 0) {
        const woken = new AbortController();
        this.#wakeCertificates = () => woken.abort();
        await sleep(waitMs / 1000, AbortSignal.any([signal, woken.signal]));
        this.#wakeCertificates = undefined;
        continue;
      }
      // A round may wait on an ACME server for a while (a directory that does not answer): the
      // agent stops without waiting for it, and a round left behind fails quietly.
      const round = this.certificateRound(signal);
      round.catch(() => undefined);
      let stopped: () => void = () => undefined;
      try {
        await Promise.race([round, new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener('abort', (stopped = () => resolve()), { once: true })))]);
      } catch (error) {
        // Not the ACME server (a host's failure is in its status): the disk. A minute, then again.
        this.#log('certificate round failed', { error: (error as Error).message }, 'warn');
        await sleep(60, signal);
      } finally {
        // The listener goes with the round: an agent runs thousands of rounds.
        signal.removeEventListener('abort', stopped);
      }
    }
  }

  async #runPolls(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      this.#alarm.pollStarting();
      let wait: number;
      try {
        const outcome = await this.poll();
        this.#log('polled', { outcome: outcome.kind, etag: this.#etag }, 'debug');
        // Before its first report (no document yet) there is nothing to say it in.
        if (this.#reportDue && this.#lastReport) await this.#reportAgain();
        // The interval of the document that runs now: after the first apply, a webgateway's 1 s, not the 5 s of no document.
        wait = this.#pollWait();
      } catch (error) {
        const outage = (this.#outage ??= { startedAt: this.#now(), failures: 0 });
        outage.failures++;
        wait = Math.min(retryCapSeconds(this.#applied?.roles), this.intervalSeconds * 2 ** Math.min(outage.failures, 6));
        this.#log('poll failed; keeping the last good state', { error: (error as Error).message, attempt: outage.failures, nextRetryAt: new Date(this.#now().getTime() + wait * 1000).toISOString() }, 'warn');
      }
      await this.#alarm.wait(jittered(wait), signal);
    }
  }

  /** The store answered: the contact is noted, and an outage that ends here is said once (and reported). */
  #contacted(): boolean {
    this.#lastContact = this.#now().toISOString();
    const outage = this.#outage;
    if (!outage) return false;
    this.#outage = undefined;
    const seconds = Math.round((Date.parse(this.#lastContact) - outage.startedAt.getTime()) / 100) / 10;
    this.#lastOutage = { startedAt: outage.startedAt.toISOString(), endedAt: this.#lastContact, seconds };
    this.#log('store reachable again', { outageSeconds: seconds, failedAttempts: outage.failures });
    return true;
  }

  /** The last report again, with the newest contact and outage. */
  async #reportAgain(): Promise<void> {
    const last = this.#lastReport ?? { outcome: 'unchanged' as const, attempted: this.#applied?.generation };
    await this.#report(last.outcome, last.attempted, last.error, last.extraServers);
  }
}

/** nginx's check and reload as the agent's service manager runs them (systemd: `nginx -t`, the layout's reload; a sandbox: its own nginx). */
function nginxControl(options: AgentOptions): NginxControl {
  const services = () => servicesOf({ root: options.root, run: options.run ?? runCommand, layout: options.layout ?? DEFAULT_LAYOUT, ...(options.services ? { services: options.services } : {}) });
  return {
    validate: () => services().validate('nginx') ?? Promise.resolve({ code: 0, output: '' }),
    reload: () => services().reload('nginx'),
  };
}

/** The store received the request and answered with an error (as opposed to not being reached). */
function storeAnswered(error: unknown): boolean {
  return error instanceof S3ServiceException && typeof error.$metadata.httpStatusCode === 'number';
}

/** Waits `seconds`, or less if `signal` aborts. The listener goes with the wait: an agent sleeps millions of times. */
function sleep(seconds: number, signal: AbortSignal): Promise<void> {
  // An aborted signal never fires 'abort' again: a wait begun after the stop would run its course.
  if (signal.aborted) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, seconds * 1000);
    signal.addEventListener('abort', done, { once: true });
  });
}
