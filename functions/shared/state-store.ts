/** Reading and writing a resource group's state, status and documents through the store port. */
import { rgStateSchema, type RgState, settledState } from '../../shared/state/rg-state.ts';
import { fieldErrors, formatFieldErrors } from '../../shared/schema/errors.ts';
import type { ObjectStore } from '../../shared/ports.ts';
import { clusterAuthSchema } from '../../shared/contract/cluster-auth.ts';
import { documentVm, storeKeys } from '../../shared/contract/store-layout.ts';
import { inParallel } from './in-parallel.ts';
import { readStoredCopy, type StoredCopy, type StoredDocuments } from '../../shared/contract/document-envelope.ts';

export interface LoadedState {
  readonly state: RgState | undefined;
  readonly etag: string | undefined;
}

export async function loadState(store: ObjectStore, resourceGroup: string): Promise<LoadedState> {
  const object = await store.get(storeKeys.state(resourceGroup));
  if (!object) return { state: undefined, etag: undefined };
  let value: unknown;
  try {
    value = JSON.parse(object.body);
  } catch (error) {
    throw new Error(`${storeKeys.state(resourceGroup)} is not valid JSON: ${(error as Error).message}`);
  }
  const parsed = rgStateSchema.safeParse(value);
  if (!parsed.success) throw new Error(`${storeKeys.state(resourceGroup)} is not a valid state: ${formatFieldErrors(fieldErrors(parsed.error)).slice(0, 5).join('; ')}`);
  return { state: parsed.data, etag: object.etag };
}

/** The run the stored status names (its commit mark), or undefined when there is none or it cannot be read. */
export async function statusRun(store: ObjectStore, resourceGroup: string): Promise<string | undefined> {
  const object = await store.get(storeKeys.status(resourceGroup));
  if (!object) return undefined;
  try {
    const run = (JSON.parse(object.body) as { run?: unknown }).run;
    return typeof run === 'string' ? run : undefined;
  } catch {
    // Unreadable: the intent counts as unfinished, and the run repairs (and writes a good status).
    return undefined;
  }
}

/**
 * The state as the next run starts from (see `settledState`): a finished intent is read as the
 * finished state; an unfinished one keeps its `pendingWrite` (the run repairs it).
 */
export async function loadSettledState(store: ObjectStore, resourceGroup: string): Promise<LoadedState> {
  const loaded = await loadState(store, resourceGroup);
  if (!loaded.state?.pendingWrite) return loaded;
  return { ...loaded, state: settledState(loaded.state, await statusRun(store, resourceGroup)) };
}

const READ_PARALLELISM = 16;

export async function readStoredDocuments(store: ObjectStore, resourceGroup: string): Promise<StoredDocuments> {
  const keys = await store.list(storeKeys.desiredOf(resourceGroup));
  const copies: Record<string, StoredCopy> = {};
  const strays: string[] = [];
  await inParallel(keys, READ_PARALLELISM, async (key) => {
    const vm = documentVm(resourceGroup, key);
    const object = vm ? await store.get(key) : undefined;
    const copy = object ? readStoredCopy(object.body) : undefined;
    if (vm && copy) copies[vm] = copy;
    else if (!vm || object) strays.push(key);
  });
  return { copies, strays: strays.sort() };
}

/**
 * The keys clusters sign their calls with, read from `cluster-auth/<rg>.json` (never from the
 * state, which holds every secret of the group). Only keys found are kept (a name that
 * has none costs a read each time, never memory), for a short while and at most `limit` of them.
 */
/** The key in a `cluster-auth/<rg>.json` body, or undefined when it is not that group's well-formed object. */
function readClusterKey(body: string, resourceGroup: string): string | undefined {
  try {
    const parsed = clusterAuthSchema.safeParse(JSON.parse(body));
    return parsed.success && parsed.data.resourceGroup === resourceGroup ? parsed.data.key : undefined;
  } catch {
    return undefined;
  }
}

export function clusterKeyLookup(store: ObjectStore, ttlMs = 30_000, limit = 10_000): (resourceGroup: string) => Promise<string | undefined> {
  const cache = new Map<string, { key: string; until: number }>();
  return async (resourceGroup) => {
    const hit = cache.get(resourceGroup);
    if (hit && hit.until > Date.now()) return hit.key;
    cache.delete(resourceGroup);
    const object = await store.get(storeKeys.clusterAuth(resourceGroup));
    const key = object ? readClusterKey(object.body, resourceGroup) : undefined;
    if (key) {
      if (cache.size >= limit) cache.delete(cache.keys().next().value!);
      cache.set(resourceGroup, { key, until: Date.now() + ttlMs });
    }
    return key;
  };
}
