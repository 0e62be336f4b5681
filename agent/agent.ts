/**
 * The pull agent on each VM: poll its own document (conditional GET), verify it, apply it,
 * report what runs. Small and boring on purpose: the last good state keeps running through
 * any failure (store unreachable, a broken document, a rejected config), and it recovers by
 * itself. It logs generations, outcomes and errors, never file contents.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import type { KubernetesTasks } from '../shared/schema/document.ts';
import { notOwnedBy, parseStoredDocument, type StoredDocument, verifyStoredDocument } from '../shared/contract/document-envelope.ts';
import type { TrustedKey } from '../shared/contract/document-signing.ts';
import type { KubernetesReport } from '../shared/contract/agent-report.ts';
import { type ApplyResult, applyDocument, type CommandRunner } from './apply.ts';
import { fetchDocument, type Identity, putReport } from './document-source.ts';
import { readIfExists, writeAtomically } from './files.ts';
import { Redactor } from './redaction.ts';
import { DEFAULT_LAYOUT, type Layout } from '../shared/layout.ts';
import { beyondRoles } from '../shared/services.ts';

export interface AgentOptions {
  readonly client: S3Client;
  readonly identity: Identity;
  /** The control plane's document keys: a document signed by no key of these is never applied. */
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
  /** The k3s server's Kubernetes tasks (agent/kubernetes/server-tasks.ts); other VMs have none. */
  readonly kubernetes?: KubernetesTaskRunner;
}

/** What the agent needs of the Kubernetes tasks: run them for a document, and again on a timer. */
export interface KubernetesTaskRunner {
  update(tasks: KubernetesTasks | undefined): Promise<KubernetesReport | undefined>;
  round(): Promise<KubernetesReport>;
  readonly intervalSeconds: number;
  stop(): Promise<void>;
}

export type LogLevel = 'info' | 'warn';

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

/** How long a poll waits for the Kubernetes round of a new document before reporting without it. */
const KUBERNETES_WAIT_MS = 20_000;

/** Jittered wait: at least ±10 %, so a thousand VMs never poll in the same second. */
export function jittered(seconds: number, random = Math.random): number {
  return seconds * (0.9 + 0.2 * random());
}

export class Agent {
  readonly #options: AgentOptions;
  #applied: StoredDocument | undefined;
  #etag: string | undefined;
  #loaded = false;
  /** After a failed apply, the same document is tried again from this time on (backing off). */
  #retryAt = 0;
  #failedApplies = 0;
  #kubernetesStarted = false;
  #reporting: Promise<void> = Promise.resolve();
  #kubernetesReport: KubernetesReport | undefined;
  /** When the store last answered, and the last time it did not for a while. */
  #lastContact: string | undefined;
  #lastOutage: { startedAt: string; endedAt: string; seconds: number } | undefined;
  /** The store has not answered since then (polls of the run loop only). */
  #outage: { startedAt: Date; failures: number } | undefined;
  /** Secrets of the documents seen: never in a log line or a report. */
  readonly #redact = new Redactor();
  #lastReport: { outcome: 'applied' | 'unchanged' | 'failed'; attempted: number | undefined; error?: string; extraServers?: Record<string, number> } | undefined;

  constructor(options: AgentOptions) {
    this.#options = options;
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
    // Reports are written one at a time, in the order they were made: the newest is the one that stays.
    const report = {
      resourceGroup: identity.resourceGroup,
      vm: identity.vm,
      appliedGeneration: this.#applied?.generation ?? 0,
      appliedHash: this.#applied?.hash ?? '',
      ...(attempted !== undefined ? { attemptedGeneration: attempted } : {}),
      outcome,
      ...(error ? { error } : {}),
      at: (this.#options.now?.() ?? new Date()).toISOString(),
      ...(extraServers && Object.keys(extraServers).length > 0 ? { extraServers } : {}),
      ...(this.#kubernetesReport ? { kubernetes: this.#kubernetesReport } : {}),
      ...(this.#lastContact ? { lastContact: this.#lastContact } : {}),
      ...(this.#lastOutage ? { lastOutage: this.#lastOutage } : {}),
    };
    const write = this.#reporting.catch(() => undefined).then(() => putReport(this.#options.client, identity, this.#redact.value(report)));
    this.#reporting = write;
    await write;
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
    const now = (this.#options.now?.() ?? new Date()).getTime();
    if (this.#retryAt && now >= this.#retryAt) {
      this.#etag = undefined;
      this.#retryAt = 0;
    }
    const fetched = await fetchDocument(this.#options.client, this.#options.identity, this.#etag);
    const outageEnded = this.#contacted();
    if (fetched.kind === 'not-modified' || fetched.kind === 'missing') {
      // The status shows the outage: reported once, now (a new document reports anyway).
      if (outageEnded) await this.#reportAgain();
      return { kind: fetched.kind };
    }
    // Whatever happens now, this version is dealt with: a refused one is not retried until it changes.
    this.#etag = fetched.etag;
    const checked = verifyStoredDocument(fetched.body, {
      owner: this.#options.identity,
      trustedKeys: this.#options.trustedKeys,
      now: this.#options.now?.() ?? new Date(),
      ...(this.#applied ? { appliedGeneration: this.#applied.generation } : {}),
    });
    if ('reason' in checked) {
      const reason = `document refused: ${checked.reason}; the last good state keeps running`;
      this.#log('document refused', { reason: checked.reason });
      await this.#report('failed', undefined, reason);
      return { kind: 'failed', error: reason };
    }
    const { document } = checked;
    this.#redact.learn(document);
    // Even a validly signed document may not make the agent do what its roles never need.
    const layout = this.#options.layout ?? DEFAULT_LAYOUT;
    const beyond = beyondRoles(document, layout);
    if (beyond) {
      const reason = `document refused: ${beyond}; the last good state keeps running`;
      this.#log('document refused', { reason: beyond });
      await this.#report('failed', document.generation, reason);
      return { kind: 'failed', generation: document.generation, error: reason };
    }
    const result = await applyDocument(document, this.#applied, { root: this.#options.root, run: this.#options.run ?? runCommand, layout });
    if (result.outcome === 'failed') {
      // It may pass later (a service that was down): tried again, less and less often.
      this.#failedApplies++;
      this.#retryAt = now + Math.min(300, 5 * 2 ** (this.#failedApplies - 1)) * 1000;
      this.#log('apply failed; the last good state keeps running', { generation: document.generation, error: result.error });
      await this.#report('failed', document.generation, result.error);
      return { kind: 'failed', generation: document.generation, error: result.error!, result };
    }
    this.#applied = document;
    this.#failedApplies = 0;
    await mkdir(this.#options.stateDir, { recursive: true, mode: 0o700 });
    await writeAtomically(this.#statePath(), JSON.stringify(document), 0o600);
    if (this.#options.kubernetes && (document.kubernetes || this.#kubernetesStarted)) await this.#runKubernetes(document);
    this.#log(result.outcome === 'applied' ? 'applied' : 'unchanged', { generation: document.generation, reloaded: result.reloaded, runtimeCommands: result.runtimeCommands });
    await this.#report(result.outcome, document.generation, undefined, result.extraServers);
    return { kind: result.outcome, generation: document.generation, result };
  }

  /** Polls until `signal` aborts: the document's interval with jitter, backing off on errors. */
  async run(signal: AbortSignal): Promise<void> {
    const kubernetes = this.#options.kubernetes ? this.#runKubernetesRounds(this.#options.kubernetes, signal) : undefined;
    await this.#runPolls(signal);
    await kubernetes;
    await this.#options.kubernetes?.stop();
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

  async #runPolls(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      let wait = this.intervalSeconds;
      try {
        await this.poll();
      } catch (error) {
        const outage = (this.#outage ??= { startedAt: this.#now(), failures: 0 });
        outage.failures++;
        wait = Math.min(retryCapSeconds(this.#applied?.roles), this.intervalSeconds * 2 ** Math.min(outage.failures, 6));
        this.#log('poll failed; keeping the last good state', { error: (error as Error).message, attempt: outage.failures, nextRetryAt: new Date(this.#now().getTime() + wait * 1000).toISOString() }, 'warn');
      }
      await sleep(jittered(wait), signal);
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

/** Waits `seconds`, or less if `signal` aborts. The listener goes with the wait: an agent sleeps millions of times. */
function sleep(seconds: number, signal: AbortSignal): Promise<void> {
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
