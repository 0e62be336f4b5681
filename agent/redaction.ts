/**
 * Keeps secrets out of what the agent says. A failing daemon may quote the line it choked on,
 * and that line may hold a token or a password; such output reaches the log and the report
 * (which the status shows to operators). So every word of a document's `secret` files that
 * is long enough to be a credential is replaced wherever it appears.
 */
import type { StoredDocument } from '../shared/contract/document-envelope.ts';

/** Shorter words are config keywords (`PASSWORD`, `token`), not credentials: ours are 16+ characters. */
const MIN_SECRET_WORD = 12;
const REDACTED = '<redacted>';

/** The credential-like words of a document's secret files (split where URLs, YAML and SQL put separators). */
export function secretWords(document: Pick<StoredDocument, 'files'>): string[] {
  return document.files.filter((file) => file.secret).flatMap((file) => file.content.split(/[\s'"`=:@/;,?&]+/).filter((word) => word.length >= MIN_SECRET_WORD));
}

export class Redactor {
  readonly #words = new Set<string>();

  /** Remembers the secrets of a document (the running one, and any the agent tried). */
  learn(document: Pick<StoredDocument, 'files'>): void {
    for (const word of secretWords(document)) this.#words.add(word);
  }

  text(value: string): string {
    let text = value;
    for (const word of this.#words) if (text.includes(word)) text = text.replaceAll(word, REDACTED);
    return text;
  }

  /** Every string inside a value (log fields, a report), redacted. */
  value<T>(value: T): T {
    if (typeof value === 'string') return this.text(value) as T;
    if (Array.isArray(value)) return value.map((item: unknown) => this.value(item)) as T;
    if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, this.value(item)])) as T;
    return value;
  }
}
