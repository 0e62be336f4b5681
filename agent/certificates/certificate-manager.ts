/**
 * The agent's certificate loop, after each apply and on a daily timer: for every TLS host of the
 * running document, order a certificate over ACME when it has none but the placeholder or is
 * due for renewal, install it atomically, check nginx takes it, and reload nginx. What it knows
 * lives on disk (the account key, one record per host, the certificates themselves), so a
 * restart neither forgets a failure's backoff nor orders a certificate the VM already has.
 * One host failing never holds up another: its placeholder (or its last good certificate)
 * keeps serving, and its status says why and when it is tried again.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, rm, rmdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { CertificateReport } from '../../shared/contract/agent-report.ts';
import {
  cannotOrder,
  certificateStatus,
  type HostRecord,
  hostRecordSchema,
  mayTryNow,
  nextCheckAt,
  orderReason,
  recordFailure,
  recordIssued,
  recordOrderStarted,
  recordSuccess,
  recordWaitingForLimit,
  weeklyLimitUntil,
} from '../../shared/certificates/renewal.ts';
import type { AcmeSpec, CertificateSpec } from '../../shared/schema/document.ts';
import type { CommandResult } from '../apply.ts';
import { onDisk, onDiskWithoutLinks, readIfExists, writeAtomically } from '../files.ts';
import type { AcmeHttpOptions } from './acme-order.ts';
import { leafCertificate, readInstalled } from './installed.ts';
import { installKeyAndCertificate, type KeyAndCertificate } from './placeholder.ts';

export interface CertificateOptions extends AcmeHttpOptions {
  /** The clock the renewal rules read (tests move it; the ACME server keeps its own). */
  readonly now?: () => Date;
  readonly random?: () => number;
}

/** What the loop needs of nginx: its own check of the files on disk, and a reload (the agent's commands, never a document's). */
export interface NginxControl {
  validate(): Promise<CommandResult>;
  reload(): Promise<CommandResult>;
}

export interface CertificateManagerOptions extends CertificateOptions {
  readonly root: string;
  /** The agent's own folder for certificate state: the account keys and one record per host. */
  readonly stateDir: string;
  readonly nginx: NginxControl;
  readonly log: (message: string, fields?: Record<string, unknown>, level?: 'info' | 'warn') => void;
  /** Runs `work` while no apply runs (installs and nginx reloads never meet an apply half-way). */
  readonly exclusive: <T>(work: () => Promise<T>) => Promise<T>;
}

/** The part of a document the loop works from. */
export interface CertificateWork {
  readonly certificates?: readonly CertificateSpec[] | undefined;
  readonly acme?: AcmeSpec | undefined;
}

export class CertificateManager {
  readonly #options: CertificateManagerOptions;
  /** The running document's hosts; undefined until a document was applied (nothing is cleaned before). */
  #work: CertificateWork | undefined;
  #rounds: Promise<unknown> = Promise.resolve();
  #nextCheck: Date | undefined;
  /** A certificate was installed but nginx did not reload: tried again next round. */
  #reloadPending = false;
  #acme: typeof import('./acme-order.ts') | undefined;

  constructor(options: CertificateManagerOptions) {
    this.#options = options;
  }

  #now(): Date {
    return this.#options.now?.() ?? new Date();
  }

  /** The running document changed (or was loaded after a restart). Returns whether its hosts or settings differ. */
  update(work: CertificateWork): boolean {
    const before = JSON.stringify([this.#work?.certificates ?? [], this.#work?.acme]);
    this.#work = { certificates: work.certificates ?? [], acme: work.acme };
    const changed = before !== JSON.stringify([this.#work.certificates, this.#work.acme]);
    // A new host is ordered now, not at tomorrow's check.
    if (changed) this.#nextCheck = undefined;
    return changed;
  }

  /** When the loop should look again (now, when a change is waiting). */
  get nextCheckAt(): Date | undefined {
    if (!this.#work) return undefined;
    return this.#nextCheck ?? this.#now();
  }

  /** One pass over every host; rounds never overlap. Returns each host's status. After `signal` aborts, no order starts. */
  round(signal?: AbortSignal): Promise<CertificateReport[]> {
    const next = this.#rounds.catch(() => undefined).then(() => this.#round(signal));
    this.#rounds = next;
    return next;
  }

  /** Each host's status from what is on disk, without ordering anything. */
  async statuses(): Promise<CertificateReport[]> {
    const now = this.#now();
    return Promise.all((this.#work?.certificates ?? []).map(async (spec) => certificateStatus(spec.host, await readInstalled(this.#options.root, spec), await this.#readRecord(spec.host), now)));
  }

  async #round(signal: AbortSignal | undefined): Promise<CertificateReport[]> {
    const work = this.#work;
    if (!work) return [];
    const specs = work.certificates ?? [];
    await this.#forgetRemoved(new Set(specs.map((spec) => spec.host)));
    const statuses: CertificateReport[] = [];
    const records: HostRecord[] = [];
    for (const spec of specs) {
      const record = await this.#serve(spec, signal?.aborted ? undefined : work.acme, signal);
      records.push(record);
      statuses.push(certificateStatus(spec.host, await readInstalled(this.#options.root, spec), record, this.#now()));
    }
    if (this.#reloadPending) await this.#options.exclusive(() => this.#reloadNginx());
    // A document with other hosts arrived during the round: its hosts are looked at now, not tomorrow.
    if (this.#work === work) this.#nextCheck = nextCheckAt(records, this.#now(), this.#options.random ?? Math.random);
    return statuses;
  }

  /** Orders, installs and records one host's certificate if it is due; returns its record. */
  async #serve(spec: CertificateSpec, acme: AcmeSpec | undefined, signal: AbortSignal | undefined): Promise<HostRecord> {
    const { root } = this.#options;
    let record: HostRecord = { ...((await this.#readRecord(spec.host)) ?? { host: spec.host, failures: 0, orders: 0 }), certificateFile: spec.certificateFile, keyFile: spec.keyFile };
    const now = this.#now();
    const installed = await readInstalled(root, spec);
    const reason = acme ? orderReason(installed, record, acme.directoryUrl, now) : undefined;
    if (!acme || !reason || cannotOrder(spec.host)) {
      // A renewal that was failing and is no longer due (the certificate came some other way) is fine again.
      if (!reason && record.failures > 0 && installed.kind === 'issued') record = recordSuccess(record, record.issuedBy ?? acme?.directoryUrl ?? '');
      await this.#writeRecord(record);
      return record;
    }
    if (!mayTryNow(record, now)) return record;
    const limit = weeklyLimitUntil(record, now);
    if (limit) {
      record = recordWaitingForLimit(record, limit);
      await this.#writeRecord(record);
      return record;
    }
    // Counted before it is placed: an order cut short by a crash still counts against the limits.
    record = recordOrderStarted(record, now);
    await this.#writeRecord(record);
    this.#options.log('ordering a certificate', { host: spec.host, reason, directory: acme.directoryUrl, order: record.orders });
    try {
      const acmeOrder = await this.#acmeOrder();
      const pair = await acmeOrder.orderCertificate({ host: spec.host, directoryUrl: acme.directoryUrl, email: acme.email, accountKey: await this.#accountKey(acme.directoryUrl), webroot: acme.webroot, root, signal });
      const leaf = leafCertificate(pair.certificate);
      // Counted as soon as it exists: the CA counts it whether or not nginx takes it.
      record = recordIssued(record, this.#now());
      if (!leaf?.names.includes(spec.host)) throw new Error(`the issued certificate names ${leaf?.names.join(', ') || 'nothing'}, not ${spec.host}`);
      await this.#options.exclusive(() => this.#install(spec, pair));
      record = recordSuccess(record, acme.directoryUrl);
      this.#options.log('certificate installed', { host: spec.host, notAfter: leaf.notAfter.toISOString() });
    } catch (error) {
      // Cut short by the agent stopping: not the host's failure, it is ordered again at the next start.
      if (signal?.aborted) return record;
      record = recordFailure(record, `ordering the certificate for ${spec.host} from ${acme.directoryUrl} failed: ${(error as Error).message}`, this.#now());
      this.#options.log('certificate order failed; the current certificate keeps serving', { host: spec.host, error: record.lastError, nextTryAt: record.nextTryAt }, 'warn');
    }
    await this.#writeRecord(record);
    return record;
  }

  /** Installs key and certificate, checks nginx accepts them (else puts the old ones back), then reloads nginx. */
  async #install(spec: CertificateSpec, pair: KeyAndCertificate): Promise<void> {
    const { root } = this.#options;
    const [oldKey, oldCertificate] = await Promise.all([readIfExists(onDisk(root, spec.keyFile)), readIfExists(onDisk(root, spec.certificateFile))]);
    await installKeyAndCertificate(root, spec, pair);
    const check = await this.#options.nginx.validate();
    if (check.code !== 0) {
      if (oldKey && oldCertificate) await installKeyAndCertificate(root, spec, { key: oldKey.toString(), certificate: oldCertificate.toString() });
      throw new Error(`nginx refused the new certificate: ${check.output.trim().split('\n').slice(-3).join(' ')}`);
    }
    this.#reloadPending = true;
    await this.#reloadNginx();
  }

  /** Reloads nginx; the caller holds the lock (`exclusive`). */
  async #reloadNginx(): Promise<void> {
    const result = await this.#options.nginx.reload();
    if (result.code === 0) {
      this.#reloadPending = false;
      return;
    }
    this.#options.log('nginx did not reload after a certificate was installed; tried again next round', { output: result.output.trim().slice(-500) }, 'warn');
  }

  /** acme-client, loaded on the first order (VMs without TLS hosts never load it) and set up once. */
  async #acmeOrder(): Promise<typeof import('./acme-order.ts')> {
    if (!this.#acme) {
      const loaded = await import('./acme-order.ts');
      loaded.configureAcmeHttp(this.#options);
      this.#acme = loaded;
    }
    return this.#acme;
  }

  /** Hosts no longer in the document: nginx stopped serving them at the apply; their key and certificate go. */
  async #forgetRemoved(hosts: ReadonlySet<string>): Promise<void> {
    for (const name of await readdir(this.#hostsDir()).catch(() => [] as string[])) {
      if (!name.endsWith('.json')) continue;
      const record = await this.#readRecord(name.slice(0, -'.json'.length));
      if (!record || hosts.has(record.host)) continue;
      const { root } = this.#options;
      for (const path of [record.keyFile, record.certificateFile]) await rm(await onDiskWithoutLinks(root, path), { force: true });
      // The host's folder too, when nothing else lives in it.
      await rmdir(onDisk(root, dirname(record.certificateFile))).catch(() => undefined);
      await rm(join(this.#hostsDir(), name), { force: true });
      this.#options.log('certificate removed: its host left the document', { host: record.host, orders: record.orders });
    }
  }

  #hostsDir(): string {
    return join(this.#options.stateDir, 'hosts');
  }

  async #readRecord(host: string): Promise<HostRecord | undefined> {
    const saved = await readIfExists(join(this.#hostsDir(), `${host}.json`));
    if (!saved) return undefined;
    try {
      const parsed = hostRecordSchema.safeParse(JSON.parse(saved.toString('utf8')));
      if (parsed.success && parsed.data.host === host) return parsed.data;
    } catch {
      // Not JSON: handled below.
    }
    // A record broken or cut short: its counts are lost; the certificate on disk still says what is valid.
    this.#options.log('ignoring a broken certificate record', { host }, 'warn');
    return undefined;
  }

  async #writeRecord(record: HostRecord): Promise<void> {
    await mkdir(this.#hostsDir(), { recursive: true, mode: 0o700 });
    await writeAtomically(join(this.#hostsDir(), `${record.host}.json`), `${JSON.stringify(record)}\n`, 0o600);
  }

  /** The account key for a directory: made once, kept (0600), so every order uses the same account. */
  async #accountKey(directoryUrl: string): Promise<string> {
    const path = join(this.#options.stateDir, 'accounts', `${createHash('sha256').update(directoryUrl).digest('hex').slice(0, 16)}.pem`);
    const saved = await readIfExists(path);
    if (saved) return saved.toString('utf8');
    const key = await (await this.#acmeOrder()).newAccountKey();
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    await writeAtomically(path, key, 0o600);
    return key;
  }
}
