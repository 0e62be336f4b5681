/**
 * When a TLS host's certificate is ordered, renewed or tried again: pure rules over what is
 * installed and what was tried, so the agent's certificate loop only does I/O. The limits
 * follow Let's Encrypt's (https://letsencrypt.org/docs/rate-limits/): a host with a valid
 * certificate is never ordered again before it is due, and failures back off so a host never
 * comes near five failed validations an hour.
 */
import { z } from 'zod';
import type { CertificateReport } from '../contract/agent-report.ts';
import { isPlaceholderIssuer } from './placeholder.ts';

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

/** Renewal starts this long before expiry (certbot's and NixOS' 30 days)... */
export const RENEW_BEFORE_MS = 30 * DAY;
/** ...or with a third of the lifetime left, when that is sooner (short-lived certificates would otherwise always be due). */
export const RENEW_LIFETIME_FRACTION = 1 / 3;
/** Certificates are looked at once a day (NixOS' `renewInterval`), plus a random delay so VMs never ask at the same time. */
export const CHECK_INTERVAL_MS = DAY;
export const CHECK_JITTER_MS = 60 * MINUTE;
/** A failed order is tried again after 10 minutes, then 20, 40, … at most a day apart: at most three failures in any hour. */
export const RETRY_FIRST_MS = 10 * MINUTE;
export const RETRY_MAX_MS = DAY;
/** Let's Encrypt issues at most five certificates for the same names a week: the agent never asks for a sixth. */
export const ISSUED_PER_WEEK = 5;
const WEEK = 7 * DAY;

/** What the files on disk hold for a host. */
export type InstalledCertificate =
  | { readonly kind: 'missing' }
  | { readonly kind: 'placeholder'; readonly notAfter: Date }
  | { readonly kind: 'issued'; readonly notBefore: Date; readonly notAfter: Date; readonly names: readonly string[] };

/** What the agent remembers of a host between rounds and restarts (on disk, beside its applied document). */
export const hostRecordSchema = z.strictObject({
  host: z.string(),
  certificateFile: z.string(),
  keyFile: z.string(),
  /** Failed orders in a row since the last success. */
  failures: z.number().int().min(0),
  lastError: z.string().optional(),
  /** No order before this (set after a failure). */
  nextTryAt: z.iso.datetime({ offset: true }).optional(),
  /** Orders placed for this host by this VM (successful or not), ever. */
  orders: z.number().int().min(0),
  lastOrderAt: z.iso.datetime({ offset: true }).optional(),
  /** The ACME directory the installed certificate came from: another directory means a new order. */
  issuedBy: z.string().optional(),
  /** When certificates were issued for this host in the last week (Let's Encrypt's duplicate-certificate limit counts them). */
  issued: z.array(z.iso.datetime({ offset: true })).optional(),
});

export type HostRecord = Readonly<z.output<typeof hostRecordSchema>>;

/** When an issued certificate is due for renewal. */
export function renewalAt(certificate: { readonly notBefore: Date; readonly notAfter: Date }): Date {
  const lifetime = certificate.notAfter.getTime() - certificate.notBefore.getTime();
  return new Date(certificate.notAfter.getTime() - Math.min(RENEW_BEFORE_MS, lifetime * RENEW_LIFETIME_FRACTION));
}

/** Why this host cannot be ordered over HTTP-01 at all, or undefined. */
export function cannotOrder(host: string): string | undefined {
  if (host.startsWith('*.')) return `${host} is a wildcard: only a DNS-01 challenge can get it, and the agent answers HTTP-01 only`;
  return undefined;
}

/**
 * Why the host needs an order now, or undefined when its certificate is good: none installed,
 * a placeholder, one not for this host, from another ACME directory, or due for renewal.
 */
export function orderReason(installed: InstalledCertificate, record: HostRecord | undefined, directoryUrl: string, now: Date): string | undefined {
  switch (installed.kind) {
    case 'missing':
      return 'no certificate';
    case 'placeholder':
      return 'a placeholder is installed';
    case 'issued': {
      if (!installed.names.includes(record?.host ?? '')) return `the installed certificate is for ${installed.names.join(', ') || 'no name'}`;
      // Unknown origin (the record was lost): a valid certificate is kept, never ordered twice.
      if (record?.issuedBy !== undefined && record.issuedBy !== directoryUrl) return `the installed certificate is from ${record.issuedBy}`;
      const due = renewalAt(installed);
      return now >= due ? `due for renewal since ${due.toISOString()} (expires ${installed.notAfter.toISOString()})` : undefined;
    }
  }
}

/** A failing host is not tried before its next try. */
export function mayTryNow(record: HostRecord, now: Date): boolean {
  return record.nextTryAt === undefined || now.getTime() >= Date.parse(record.nextTryAt);
}

/** The wait after the `failures`-th failure in a row (1-based): 10 min doubling, at most a day. */
export function retryDelayMs(failures: number): number {
  return Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** Math.max(0, failures - 1));
}

export function recordOrderStarted(record: HostRecord, now: Date): HostRecord {
  return { ...record, orders: record.orders + 1, lastOrderAt: now.toISOString() };
}

/** A certificate was issued now (whether or not nginx then takes it). */
export function recordIssued(record: HostRecord, now: Date): HostRecord {
  return { ...record, issued: [...issuedThisWeek(record, now), now.toISOString()] };
}

function issuedThisWeek(record: HostRecord, now: Date): string[] {
  return (record.issued ?? []).filter((at) => now.getTime() - Date.parse(at) < WEEK);
}

/** Until when the host may not be ordered for again (the week's issuance is used up), or undefined. */
export function weeklyLimitUntil(record: HostRecord, now: Date): Date | undefined {
  const recent = issuedThisWeek(record, now).sort();
  if (recent.length < ISSUED_PER_WEEK) return undefined;
  // The oldest that still counts leaves the week then.
  return new Date(Date.parse(recent[recent.length - ISSUED_PER_WEEK]!) + WEEK);
}

/** The host waits for Let's Encrypt's weekly limit: failing, with the reason and when it may be ordered again. */
export function recordWaitingForLimit(record: HostRecord, until: Date): HostRecord {
  return { ...record, failures: Math.max(1, record.failures), lastError: `${ISSUED_PER_WEEK} certificates were issued for ${record.host} this week (Let's Encrypt's limit for the same names); no order before ${until.toISOString()}`, nextTryAt: until.toISOString() };
}

export function recordFailure(record: HostRecord, error: string, now: Date): HostRecord {
  const failures = record.failures + 1;
  return { ...record, failures, lastError: error, nextTryAt: new Date(now.getTime() + retryDelayMs(failures)).toISOString() };
}

export function recordSuccess(record: HostRecord, directoryUrl: string): HostRecord {
  const { lastError: _error, nextTryAt: _next, ...rest } = record;
  return { ...rest, failures: 0, issuedBy: directoryUrl };
}

/** What the report and the status say of a host: placeholder | valid (until) | failing (why, next try). */
export type CertificateStatus = CertificateReport;

export function certificateStatus(host: string, installed: InstalledCertificate, record: HostRecord | undefined, now: Date): CertificateStatus {
  const orders = record?.orders ?? 0;
  // Only an issued certificate's end matters to users: a placeholder is trusted by no one anyway.
  const notAfter = installed.kind === 'issued' ? { notAfter: installed.notAfter.toISOString() } : {};
  const never = cannotOrder(host);
  if (never) return { host, state: 'failing', ...notAfter, error: never, orders };
  if (record && record.failures > 0) {
    // A renewal that fails while the certificate still holds is failing too: it needs attention before it expires.
    return { host, state: 'failing', ...notAfter, ...(record.lastError ? { error: record.lastError } : {}), ...(record.nextTryAt ? { nextTryAt: record.nextTryAt } : {}), orders };
  }
  if (installed.kind !== 'issued') return { host, state: 'placeholder', ...notAfter, orders };
  const expired = now >= installed.notAfter;
  if (expired) return { host, state: 'failing', ...notAfter, error: `the certificate expired at ${installed.notAfter.toISOString()}`, orders };
  return { host, state: 'valid', ...notAfter, renewAt: renewalAt(installed).toISOString(), orders };
}

/** Tells a placeholder from an issued certificate by its issuer (RFC 4514 text). */
export function installedKind(issuer: string): 'placeholder' | 'issued' {
  return isPlaceholderIssuer(issuer) ? 'placeholder' : 'issued';
}

/**
 * When the certificate loop looks again: the next daily check (a day and a random delay of up
 * to an hour from now), or a failing host's next try if that is sooner.
 */
export function nextCheckAt(records: readonly HostRecord[], now: Date, random: () => number): Date {
  const daily = now.getTime() + CHECK_INTERVAL_MS + Math.floor(random() * CHECK_JITTER_MS);
  const retries = records.filter((record) => record.failures > 0 && record.nextTryAt !== undefined).map((record) => Date.parse(record.nextTryAt!));
  return new Date(Math.min(daily, ...retries));
}
