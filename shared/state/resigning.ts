/**
 * Which unchanged documents a run signs again. A copy is due a day after it was signed (it
 * holds a week), or once the signing epoch changed (a root was added or retired: documents
 * must carry the new announcements). Signing every due copy of a large group at once costs
 * more than half of computing the group (bench/signing.ts), and all of a group's copies fall
 * due together (they were signed together): so a run signs at most RESIGN_SHARE of the group's
 * due copies, the oldest first, and the hourly refresh spreads them over the day. A copy with
 * under two days left is signed whatever the share: nothing expires because of the spreading.
 */
import { DOCUMENT_RESIGN_AFTER_MS, DOCUMENT_VALIDITY_MS } from '../contract/document-envelope.ts';

/** A group's due copies are spread over this many runs (the refresh runs hourly). */
export const RESIGN_SHARE = 16;
/** Small groups are not spread at all. */
const RESIGN_AT_LEAST = 8;
const URGENT_MS = 2 * 24 * 3600 * 1000;

export interface SignedCopy {
  readonly vm: string;
  readonly expiresAt?: string | undefined;
  /** The signing epoch it was signed in (see `signingEpoch`); absent before epochs were recorded. */
  readonly epoch?: string | undefined;
}

/** The VMs whose unchanged copies this run signs again. */
export function copiesToResign(copies: readonly SignedCopy[], groupSize: number, now: number, epoch: string | undefined): Set<string> {
  const expiry = (copy: SignedCopy) => (copy.expiresAt === undefined ? 0 : Date.parse(copy.expiresAt));
  const ageDue = (copy: SignedCopy) => expiry(copy) <= now + DOCUMENT_VALIDITY_MS - DOCUMENT_RESIGN_AFTER_MS;
  const epochDue = (copy: SignedCopy) => epoch !== undefined && copy.epoch !== epoch;
  const due = copies.filter((copy) => ageDue(copy) || epochDue(copy)).sort((a, b) => expiry(a) - expiry(b) || a.vm.localeCompare(b.vm));
  const share = Math.max(RESIGN_AT_LEAST, Math.ceil(groupSize / RESIGN_SHARE));
  return new Set(due.filter((copy, index) => index < share || expiry(copy) <= now + URGENT_MS).map((copy) => copy.vm));
}
