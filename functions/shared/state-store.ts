/** Reading and writing a resource group's state, status and documents through the store port. */
import { rgStateSchema, type RgState } from '../../shared/state/rg-state.ts';
import { fieldErrors, formatFieldErrors } from '../../shared/schema/errors.ts';
import type { ObjectStore } from '../../shared/ports.ts';
import { storeKeys } from '../../shared/contract/store-layout.ts';

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

/**
 * The keys clusters sign their calls with (`secrets.webhookKey`), read from their state. Only keys found are kept (a name that
 * has none costs a read each time, never memory), for a short while and at most `limit` of them.
 */
export function clusterKeyLookup(store: ObjectStore, ttlMs = 30_000, limit = 10_000): (resourceGroup: string) => Promise<string | undefined> {
  const cache = new Map<string, { key: string; until: number }>();
  return async (resourceGroup) => {
    const hit = cache.get(resourceGroup);
    if (hit && hit.until > Date.now()) return hit.key;
    cache.delete(resourceGroup);
    const { state } = await loadState(store, resourceGroup);
    const key = state?.description.secrets.webhookKey;
    if (key) {
      if (cache.size >= limit) cache.delete(cache.keys().next().value!);
      cache.set(resourceGroup, { key, until: Date.now() + ttlMs });
    }
    return key;
  };
}
