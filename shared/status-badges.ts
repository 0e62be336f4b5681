/**
 * What a resource group's status view means at a glance: two badges, **sync** (does every VM
 * run the document the control plane stored for it?) and **health** (the worst finding, failed
 * or unreadable reports, signatures about to run out, certificates failing or about to expire),
 * the group taking the worst of its VMs.
 *
 * Pure and free of runtime imports (types only): the status page runs this very module in the
 * browser (bundled by esbuild), the CLI and the tests run it in Node, so the rules are written
 * once and the page holds no second copy of them.
 */
import type { CertificateView, DocumentView, StatusView } from './contract/status-view.ts';

/** How a badge looks: `good` green, `pending` blue, `unknown` grey, `warning` amber, `bad` red. */
export type BadgeTone = 'good' | 'pending' | 'unknown' | 'warning' | 'bad';

export interface Badge {
  readonly tone: BadgeTone;
  /** The word on the badge: "in sync", "syncing", "healthy", "failing", … */
  readonly label: string;
  /** One sentence saying why. */
  readonly detail: string;
}

/** One VM's sync, from best to worst. */
export type VmSync = 'in sync' | 'syncing' | 'no report' | 'unreadable report' | 'no document';

/** One VM's health, from best to worst. */
export type VmHealth = 'healthy' | 'no report' | 'expiring' | 'failed';

export interface VmGlance {
  readonly vm: string;
  readonly sync: VmSync;
  readonly health: VmHealth;
  /** Generations the agent runs behind the stored one (0 when in sync; undefined without a report or document). */
  readonly lag: number | undefined;
  /** When the agent last reached the store (or last reported): ISO time, or undefined without a report. */
  readonly lastContact: string | undefined;
  /** The last time the agent could not reach the store, and for how long (seconds), when it had such an outage. */
  readonly lastOutage: { readonly endedAt: string; readonly seconds: number } | undefined;
  /** The agent's push channel, when it has one: connected or down, since when (ISO time). */
  readonly push: { readonly connected: boolean; readonly since: string } | undefined;
  /** The report's error, when its last apply failed or the report cannot be read. */
  readonly error: string | undefined;
}

export interface StatusGlance {
  readonly sync: Badge;
  readonly health: Badge;
  readonly vms: readonly VmGlance[];
}

/** A stored document whose signature holds less than this long is shown as expiring (it is re-signed after a day, and holds a week). */
export const EXPIRING_WITHIN_MS = 2 * 24 * 3600 * 1000;

const SYNC_ORDER: readonly VmSync[] = ['in sync', 'syncing', 'no report', 'unreadable report', 'no document'];
const HEALTH_ORDER: readonly VmHealth[] = ['healthy', 'no report', 'expiring', 'failed'];

const worst = <T>(order: readonly T[], values: readonly T[], best: T): T => values.reduce((a, b) => (order.indexOf(b) > order.indexOf(a) ? b : a), best);

type Report = Exclude<DocumentView['agent'], null | { invalid: string }>;
const reportOf = (document: DocumentView): Report | undefined => (document.agent !== null && !('invalid' in document.agent) ? document.agent : undefined);

/** One VM at a glance. `now` decides what is about to expire. */
export function vmGlance(document: DocumentView, now: Date): VmGlance {
  const report = reportOf(document);
  const unreadable = document.agent !== null && 'invalid' in document.agent ? document.agent.invalid : undefined;
  const sync: VmSync =
    document.generation === undefined ? 'no document'
    : document.inSync ? 'in sync'
    : unreadable !== undefined ? 'unreadable report'
    : report === undefined ? 'no report'
    : 'syncing';
  const expiring = document.expiresAt !== undefined && Date.parse(document.expiresAt) - now.getTime() < EXPIRING_WITHIN_MS;
  const health: VmHealth =
    unreadable !== undefined || report?.outcome === 'failed' ? 'failed'
    : expiring ? 'expiring'
    : report === undefined ? 'no report'
    : 'healthy';
  return {
    vm: document.vm,
    sync,
    health,
    lag: report && document.generation !== undefined ? Math.max(0, document.generation - report.appliedGeneration) : undefined,
    lastContact: report ? (report.lastContact ?? report.at) : undefined,
    lastOutage: report?.lastOutage ? { endedAt: report.lastOutage.endedAt, seconds: report.lastOutage.seconds } : undefined,
    push: report?.push ? { connected: report.push.connected, since: report.push.since } : undefined,
    error: unreadable ?? (report?.outcome === 'failed' ? (report.error ?? 'the apply failed (no error given)') : undefined),
  };
}

const count = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;

/** A gateway rollout in flight, in words: who waits for whom. */
export function rolloutDetail(rollout: NonNullable<StatusView['rollout']>): string {
  const generation = rollout.generation === undefined ? '' : ` generation ${rollout.generation}`;
  if (rollout.phase === 'halted') return `rollout halted: ${rollout.canary} (canary) failed${generation}: ${rollout.reason ?? 'no reason given'}; ${rollout.held.join(', ')} keep${rollout.held.length === 1 ? 's its' : ' their'} frontends until the next change`;
  return `rollout: ${rollout.held.join(', ')} wait${rollout.held.length === 1 ? 's' : ''} for ${rollout.canary} (canary) to apply${generation}`;
}

function syncBadge(vms: readonly VmGlance[], rollout: StatusView['rollout']): Badge {
  if (vms.length === 0) return { tone: 'unknown', label: 'no VMs', detail: 'the resource group has no VM yet' };
  const inSync = vms.filter((v) => v.sync === 'in sync').length;
  const state = worst(SYNC_ORDER, vms.map((v) => v.sync), 'in sync');
  // Every VM runs what is stored, yet the held gateways do not run the group's frontends yet.
  if (state === 'in sync' && rollout?.phase === 'waiting') return { tone: 'pending', label: 'syncing', detail: rolloutDetail(rollout) };
  if (state === 'in sync') return { tone: 'good', label: 'in sync', detail: `every VM runs its latest document (${count(vms.length, 'VM')})` };
  const waiting = vms.filter((v) => v.sync !== 'in sync').map((v) => `${v.vm} (${v.sync})`);
  return { tone: state === 'no document' || state === 'unreadable report' ? 'warning' : 'pending', label: 'syncing', detail: `${inSync} of ${count(vms.length, 'VM')} in sync; waiting for ${waiting.join(', ')}` };
}

/** A canary that has not reported this long after its round began is probably not running: someone should look. */
export const ROLLOUT_STUCK_AFTER_MS = 10 * 60 * 1000;

/**
 * A push channel down this long is no blip (the agent reconnects within seconds): its VM polls
 * at its document's interval meanwhile, later and at a cost, so someone should look.
 */
export const PUSH_DOWN_WARNS_AFTER_MS = 10 * 60 * 1000;

/** A valid certificate this close to its end has missed its renewal (due with 30 days left). */
export const CERTIFICATE_EXPIRING_WITHIN_MS = 14 * 24 * 3600 * 1000;

/** Certificates that need someone: failing (why is in the table), or valid yet about to expire. */
function certificateWarnings(certificates: StatusView['certificates'], now: Date): string[] {
  const failing = certificates.filter((c) => c.state === 'failing');
  const expiring = certificates.filter((c) => c.state === 'valid' && c.notAfter !== undefined && Date.parse(c.notAfter) - now.getTime() < CERTIFICATE_EXPIRING_WITHIN_MS);
  return [
    ...(failing.length > 0 ? [`certificate failing: ${failing.map((c) => `${c.host} on ${c.vm}${c.nextTryAt ? ` (next try ${c.nextTryAt})` : ''}`).join(', ')}`] : []),
    ...(expiring.length > 0 ? [`certificate expiring: ${expiring.map((c) => `${c.host} on ${c.vm} (${c.notAfter})`).join(', ')}`] : []),
  ];
}

function healthBadge(status: StatusView, vms: readonly VmGlance[], now: Date): Badge {
  const errors = status.findings.filter((f) => f.severity === 'error');
  const warnings = status.findings.filter((f) => f.severity === 'warning');
  const failed = vms.filter((v) => v.health === 'failed');
  const halted = status.rollout?.phase === 'halted' ? [rolloutDetail(status.rollout)] : [];
  if (errors.length > 0 || failed.length > 0 || halted.length > 0) {
    const reasons = [...(failed.length > 0 ? [`${count(failed.length, 'VM')} failed to apply: ${failed.map((v) => v.vm).join(', ')}`] : []), ...halted, ...(errors.length > 0 ? [`${count(errors.length, 'error finding')}`] : [])];
    return { tone: 'bad', label: 'failing', detail: reasons.join('; ') };
  }
  const expiring = vms.filter((v) => v.health === 'expiring');
  const certificates = certificateWarnings(status.certificates, now);
  const { rollout } = status;
  const stuck = rollout?.phase === 'waiting' && now.getTime() - Date.parse(rollout.since) > ROLLOUT_STUCK_AFTER_MS ? [`rollout waiting since ${rollout.since}: ${rollout.canary} (canary) has not reported; is its agent running?`] : [];
  const unpushed = vms.filter((v) => v.push?.connected === false && now.getTime() - Date.parse(v.push.since) > PUSH_DOWN_WARNS_AFTER_MS);
  const pushDown = unpushed.length > 0 ? [`push channel down, polling instead: ${unpushed.map((v) => `${v.vm} (since ${v.push!.since})`).join(', ')}`] : [];
  if (warnings.length > 0 || expiring.length > 0 || certificates.length > 0 || stuck.length > 0 || pushDown.length > 0) {
    const reasons = [...(warnings.length > 0 ? [count(warnings.length, 'warning')] : []), ...(expiring.length > 0 ? [`signature about to expire: ${expiring.map((v) => v.vm).join(', ')}`] : []), ...certificates, ...stuck, ...pushDown];
    return { tone: 'warning', label: 'warning', detail: reasons.join('; ') };
  }
  const silent = vms.filter((v) => v.health === 'no report');
  if (silent.length > 0) return { tone: 'unknown', label: 'no report', detail: `no report yet from ${silent.map((v) => v.vm).join(', ')}` };
  return { tone: 'good', label: 'healthy', detail: vms.length === 0 ? 'no finding' : 'no finding, every VM applied its document' };
}

/** The group at a glance: its two badges and each VM's line. */
export function statusGlance(status: StatusView, now: Date): StatusGlance {
  const vms = status.documents.map((document) => vmGlance(document, now));
  return { sync: syncBadge(vms, status.rollout), health: healthBadge(status, vms, now), vms };
}

/** What a certificate's state means for its host, in words (the CLI's and the page's DETAIL). */
export function certificateDetail(certificate: CertificateView): string {
  switch (certificate.state) {
    case 'valid':
      return `valid until ${certificate.notAfter ?? '?'}, renewed from ${certificate.renewAt ?? '?'}`;
    case 'placeholder':
      return 'self-signed placeholder until the first certificate is issued';
    case 'failing':
      return `${certificate.error ?? 'failed'}${certificate.nextTryAt ? `; next try ${certificate.nextTryAt}` : ''}${certificate.notAfter ? `; the current one is valid until ${certificate.notAfter}` : ''}`;
  }
}

/** A short, one-line form of an error (first line, at most `max` characters, cut with `…`). */
export function shortText(text: string, max: number): string {
  const line = text.split('\n', 1)[0]!.trim();
  return line.length > max || text.trim() !== line ? `${line.slice(0, Math.max(0, max - 1)).trimEnd()}…` : line;
}

/** How long ago, in words a person reads at a glance: "12 s ago", "3 min ago", "2 h ago", "4 d ago". */
export function ago(iso: string, now: Date): string {
  const seconds = Math.max(0, Math.round((now.getTime() - Date.parse(iso)) / 1000));
  if (Number.isNaN(seconds)) return 'unknown';
  if (seconds < 90) return `${seconds} s ago`;
  if (seconds < 90 * 60) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 36 * 3600) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}
