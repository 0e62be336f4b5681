/**
 * Content hashes over RFC 8785 canonical JSON: the same content always hashes the same,
 * whatever the key order, so an unchanged document is recognised and never rewritten.
 */
import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export function canonicalJson(value: unknown): string {
  const text = canonicalize(value);
  if (text === undefined) throw new TypeError('value has no JSON representation');
  return text;
}

export function contentHash(value: unknown): string {
  return `sha256:${sha256Hex(canonicalJson(value))}`;
}

/** Fields that describe a stored copy rather than the content, left out of the document hash. */
const ENVELOPE_FIELDS = new Set(['hash', 'generation']);

export function documentHash(document: Readonly<Record<string, unknown>>): string {
  const body = Object.fromEntries(Object.entries(document).filter(([key]) => !ENVELOPE_FIELDS.has(key)));
  return contentHash(body);
}

export function hasValidHash(document: Readonly<Record<string, unknown>>): boolean {
  return typeof document.hash === 'string' && document.hash === documentHash(document);
}
