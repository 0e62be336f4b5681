import { compareText } from '../compare.ts';
/**
 * A finding is one thing an operator or customer should know about a resource group,
 * said in a sentence. Errors name the VMs whose documents they withhold: those VMs keep
 * running their last good state until the error is fixed. Warnings and notes block nothing.
 */

export type Severity = 'error' | 'warning' | 'info';

export interface Subject {
  readonly kind: 'resource-group' | 'cluster' | 'vm' | 'frontend' | 'user';
  readonly name: string;
}

export interface Finding {
  readonly code: string;
  readonly severity: Severity;
  readonly subject: Subject;
  readonly message: string;
  /** VMs whose documents are withheld because of this finding (errors only). */
  readonly blocks: readonly string[];
}

export const vmSubject = (name: string): Subject => ({ kind: 'vm', name });
export const frontendSubject = (name: string): Subject => ({ kind: 'frontend', name });
export const clusterSubject = (name: string): Subject => ({ kind: 'cluster', name });

export function error(code: string, subject: Subject, message: string, blocks: readonly string[]): Finding {
  return { code, severity: 'error', subject, message, blocks: [...new Set(blocks)].sort() };
}

export function warning(code: string, subject: Subject, message: string): Finding {
  return { code, severity: 'warning', subject, message, blocks: [] };
}

export function info(code: string, subject: Subject, message: string): Finding {
  return { code, severity: 'info', subject, message, blocks: [] };
}

const SEVERITY_ORDER: Record<Severity, number> = { error: 0, warning: 1, info: 2 };

/** Stable order: errors first, then by subject and code, so output never depends on check order. */
export function sortFindings(findings: readonly Finding[]): Finding[] {
  return [...findings].sort(
    (a, b) =>
      SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity] ||
      compareText(a.subject.kind, b.subject.kind) ||
      compareText(a.subject.name, b.subject.name) ||
      compareText(a.code, b.code) ||
      compareText(a.message, b.message),
  );
}

export function blockedVms(findings: readonly Finding[]): Set<string> {
  return new Set(findings.flatMap((finding) => finding.blocks));
}
