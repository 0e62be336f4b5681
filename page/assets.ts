/**
 * The status page's files, built from this folder: the script bundled by esbuild (with the
 * pure badge rules it imports from shared/), the style sheet as it is. The local control plane
 * builds them once at start; `writePageAssets` puts the same files beside a bundled Lambda.
 * esbuild is loaded only here: nothing else that runs needs it.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PageAssets } from '../functions/status/page.ts';
import { PAGE_FILES } from './files.ts';

const here = (name: string) => fileURLToPath(new URL(name, import.meta.url));

export async function buildPageAssets(): Promise<PageAssets> {
  const { build } = await import('esbuild');
  const result = await build({
    entryPoints: [here('./app.ts')],
    bundle: true,
    format: 'esm',
    target: 'es2022',
    platform: 'browser',
    minify: true,
    write: false,
    legalComments: 'none',
    logLevel: 'silent',
  });
  const script = result.outputFiles[0]?.text;
  if (script === undefined) throw new Error('esbuild made no status page script');
  return { script, style: readFileSync(here('./style.css'), 'utf8') };
}

/** Builds the files into a folder (beside a Lambda bundle: see cdk/ringmaster-stack.ts). */
export async function writePageAssets(directory: string): Promise<void> {
  const assets = await buildPageAssets();
  mkdirSync(directory, { recursive: true });
  for (const [name, file] of Object.entries(PAGE_FILES) as Array<[keyof PageAssets, string]>) writeFileSync(join(directory, file), assets[name]);
}
