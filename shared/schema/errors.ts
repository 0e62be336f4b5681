/** Turns schema issues into lines that name the field and the reason, for every interface. */
import type { z } from 'zod';

export interface FieldError {
  /** `vms[2].cpu`, `frontends.myapp.podPort`; empty for the document as a whole. */
  readonly field: string;
  readonly reason: string;
}

export function fieldPath(path: ReadonlyArray<PropertyKey>): string {
  return path
    .map((key, index) => {
      if (typeof key === 'number') return `[${key}]`;
      const text = String(key);
      const plain = /^[A-Za-z_$][\w$-]*$/.test(text);
      if (!plain) return `[${JSON.stringify(text)}]`;
      return index === 0 ? text : `.${text}`;
    })
    .join('');
}

function reasonOf(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  if (issue.code === 'invalid_type' && /received undefined$/.test(issue.message)) return 'is required';
  return issue.message.replace(/^Invalid input: /, '');
}

export function fieldErrors(error: z.ZodError): FieldError[] {
  return error.issues.map((issue) => ({ field: fieldPath(issue.path), reason: reasonOf(issue) }));
}

export function formatFieldErrors(errors: readonly FieldError[]): string[] {
  return errors.map((e) => (e.field ? `${e.field}: ${e.reason}` : e.reason));
}
