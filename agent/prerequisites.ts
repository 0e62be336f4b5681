/** Looks on this machine for what a document's services need (shared/prerequisites.ts). */
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { type Prerequisite, type PrerequisiteCandidates, type PrerequisitePaths, prerequisitesOf } from '../shared/prerequisites.ts';
import type { ServiceName } from '../shared/services.ts';

export function missingPrerequisites(services: readonly ServiceName[], paths: PrerequisitePaths): Promise<Prerequisite[]> {
  return missingOf(prerequisitesOf(services, paths));
}

/** The prerequisites found at none of their candidate paths. */
export async function missingOf(needed: readonly PrerequisiteCandidates[]): Promise<Prerequisite[]> {
  const missing: Prerequisite[] = [];
  for (const { prerequisite, candidates } of needed) {
    // A program must be executable; a unit only has to be there.
    const mode = prerequisite.kind === 'program' ? constants.X_OK : constants.F_OK;
    let found = false;
    for (const candidate of candidates) {
      if (await access(candidate, mode).then(() => true, () => false)) {
        found = true;
        break;
      }
    }
    if (!found) missing.push(prerequisite);
  }
  return missing;
}
