/**
 * Writes a document's folders and files to disk so real haproxy and nginx can check them.
 * Only for documents rendered with `layoutUnder(tmp)`: every path already lies in `tmp`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { VmDocument } from '../../shared/schema/document.ts';

export function materialize(document: VmDocument, root: string): void {
  for (const item of [...document.directories, ...document.files]) {
    if (!item.path.startsWith(root)) throw new Error(`${item.path} lies outside the test root ${root}`);
  }
  for (const directory of document.directories) mkdirSync(directory.path, { recursive: true });
  for (const file of document.files) {
    mkdirSync(dirname(file.path), { recursive: true });
    writeFileSync(file.path, file.content, { mode: Number.parseInt(file.mode, 8) });
  }
}
