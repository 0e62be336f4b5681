/** Files on the VM: written atomically (temp file, fsync, rename) under a root prefix, and restorable. */
import { randomUUID } from 'node:crypto';
import { chmod, lstat, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
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
    const stats = await lstat(current).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw error;
    });
    // Nothing further exists: it is created by us, below a folder that is what it says.
    if (!stats) break;
    if (stats.isSymbolicLink()) throw new Error(`${current} leads elsewhere through a symbolic link: nothing is written through it`);
  }
  return onDisk(root, path);
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
  const file = await open(temp, 'w', mode);
  try {
    await file.writeFile(content);
    await file.sync();
  } finally {
    await file.close();
  }
  await chmod(temp, mode);
  await rename(temp, path);
}

/** What a path held before a change: its content, or nothing. */
export interface Snapshot {
  readonly path: string;
  readonly content: Buffer | undefined;
  readonly mode: number;
}

export async function restore(snapshots: readonly Snapshot[]): Promise<void> {
  for (const snapshot of snapshots) {
    if (snapshot.content === undefined) await rm(snapshot.path, { force: true });
    else await writeAtomically(snapshot.path, snapshot.content, snapshot.mode);
  }
}

export async function writeDirectory(path: string, mode: number): Promise<void> {
  await mkdir(path, { recursive: true, mode });
  await chmod(path, mode);
}
