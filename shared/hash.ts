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

/**
 * A document's hash: canonical JSON of the document in which every file's content stands as
 * the SHA-256 of that content. Equivalent to hashing the contents in place, but a large file
 * (a webgateway's haproxy.cfg) is hashed once as raw text instead of being escaped into JSON
 * first, which is most of the cost for big resource groups (see bench/).
 */
export function documentHash(document: Readonly<Record<string, unknown>>): string {
  const body: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(document)) {
    if (ENVELOPE_FIELDS.has(key)) continue;
    body[key] =
      key === 'files' && Array.isArray(value)
        ? value.map((file: Record<string, unknown>) => (typeof file.content === 'string' ? { ...file, content: `sha256:${sha256Hex(file.content)}` } : file))
        : value;
  }
  return contentHash(body);
}

export function hasValidHash(document: Readonly<Record<string, unknown>>): boolean {
  return typeof document.hash === 'string' && document.hash === documentHash(document);
}
