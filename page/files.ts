/**
 * Where the status page's built files sit in a folder (beside a bundled Lambda), and how they
 * are read back. Apart from page/assets.ts so that a Lambda bundle reading them never pulls in
 * esbuild.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PageAssets } from '../functions/status/page.ts';

export const PAGE_FILES = { script: 'app.js', style: 'style.css' } as const satisfies Record<keyof PageAssets, string>;

/** Reads assets written by `writePageAssets` (page/assets.ts). */
export function readPageAssets(directory: string): PageAssets {
  return { script: readFileSync(join(directory, PAGE_FILES.script), 'utf8'), style: readFileSync(join(directory, PAGE_FILES.style), 'utf8') };
}
