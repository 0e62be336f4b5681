/** Files on the VM: written atomically (temp file, fsync, rename) under a root prefix, and restorable. */
import { randomUUID } from 'node:crypto';
import { chmod, chown, lstat, mkdir, open, readFile, rename, rm, rmdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/** Where a document path lives on this machine: under `root` (tests and dry runs), else as is. */
export function onDisk(root: string, path: string): string {
  return root === '/' ? path : join(root, path);
}

/**
 * Where a document path lives on this machine, once no part of it below `root` is a symbolic
 * link: through a link, a folder or file a role owns could lead anywhere (`/etc/haproxy` →
 * `/root/.ssh`). Checked before anything is created, so nothing is written through one.
 */
export async function onDiskWithoutLinks(root: string, path: string): Promise<string> {
  let current = root === '/' ? '' : root.replace(/\/$/, '');
  for (const segment of path.split('/').filter(Boolean)) {
    current = `${current}/${segment}`;
    const stats = await statIfExists(current);
    // Nothing further exists: it is created by us, below a folder that is what it says.
    if (!stats) break;
    if (stats.isSymbolicLink()) throw new Error(`${current} leads elsewhere through a symbolic link: nothing is written through it`);
  }
  return onDisk(root, path);
}

async function statIfExists(path: string) {
  return lstat(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
}

export async function readIfExists(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

export async function writeAtomically(path: string, content: string | Buffer, mode: number): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temp = join(dirname(path), `.${randomUUID()}.ringmaster-tmp`);
  try {
    const file = await open(temp, 'w', mode);
    try {
      await file.writeFile(content);
      await file.sync();
    } finally {
      await file.close();
    }
    await chmod(temp, mode);
    await rename(temp, path);
  } catch (error) {
    // A write cut short (ENOSPC, EIO) leaves no half file behind.
    await rm(temp, { force: true }).catch(() => undefined);
    throw error;
  }
}

/** The folders of `path` (itself included) that do not exist yet, outermost first. */
async function missingFolders(path: string): Promise<string[]> {
  const missing: string[] = [];
  for (let current = path; current !== dirname(current) && !(await statIfExists(current)); current = dirname(current)) missing.unshift(current);
  return missing;
}

/** What a file or folder was before an apply touched it: enough to put it back as it was. */
type Before =
  | { readonly kind: 'file'; readonly path: string; readonly content: Buffer | undefined; readonly mode: number; readonly uid: number; readonly gid: number }
  | { readonly kind: 'folder'; readonly path: string; readonly mode: number; readonly uid: number; readonly gid: number }
  | { readonly kind: 'created-folder'; readonly path: string };

/**
 * The changes of one apply, noted before each is made, so that a failure at any later step
 * puts every file and folder back as it was: an apply is all or nothing.
 */
export class FileJournal {
  readonly #before: Before[] = [];

  /** `path` existed before this apply as a file (or not at all). */
  existedBefore(path: string): boolean {
    return this.#before.some((entry) => entry.kind === 'file' && entry.path === path && entry.content !== undefined);
  }

  /** Creates the folder (and its missing parents) with `mode`, or gives an existing one `mode`. */
  async writeFolder(path: string, mode: number): Promise<void> {
    const stats = await statIfExists(path);
    // A folder already as it should be is left alone: nothing to change, nothing to put back.
    if (stats?.isDirectory() && (stats.mode & 0o7777) === mode) return;
    if (stats) this.#before.push({ kind: 'folder', path, mode: stats.mode & 0o7777, uid: stats.uid, gid: stats.gid });
    else for (const folder of await missingFolders(path)) this.#before.push({ kind: 'created-folder', path: folder });
    await mkdir(path, { recursive: true, mode });
    await chmod(path, mode);
  }

  async writeFile(path: string, content: string, mode: number): Promise<void> {
    const stats = await statIfExists(path);
    const previous = stats ? await readFile(path) : undefined;
    for (const folder of await missingFolders(dirname(path))) this.#before.push({ kind: 'created-folder', path: folder });
    this.#before.push({ kind: 'file', path, content: previous, mode: stats ? stats.mode & 0o7777 : 0o600, uid: stats?.uid ?? 0, gid: stats?.gid ?? 0 });
    await writeAtomically(path, content, mode);
  }

  /** Puts everything back, newest change first; returns what could not be put back. */
  async restore(): Promise<string[]> {
    const failures: string[] = [];
    for (const entry of [...this.#before].reverse()) {
      try {
        await restoreEntry(entry);
      } catch (error) {
        failures.push(`${entry.path}: ${(error as Error).message}`);
      }
    }
    return failures;
  }
}

const asRoot = () => process.getuid?.() === 0;

async function restoreEntry(entry: Before): Promise<void> {
  switch (entry.kind) {
    case 'file':
      if (entry.content === undefined) return rm(entry.path, { force: true });
      await writeAtomically(entry.path, entry.content, entry.mode);
      if (asRoot()) await chown(entry.path, entry.uid, entry.gid);
      return;
    case 'folder':
      await chmod(entry.path, entry.mode);
      if (asRoot()) await chown(entry.path, entry.uid, entry.gid);
      return;
    case 'created-folder':
      // Only if empty: whatever else came to live in it since is not the apply's to remove.
      return rmdir(entry.path).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT' && error.code !== 'ENOTEMPTY') throw error;
      });
  }
}
