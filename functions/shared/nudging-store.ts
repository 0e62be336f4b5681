/**
 * The store as the reconciler writes through it when agents can be nudged: a document written is
 * announced to its VM once the write is done (what an S3 event notification would do, without
 * its delay), with the generation it carries. Publishing never holds up or fails the write.
 */
import { documentOwner } from '../../shared/contract/store-layout.ts';
import type { NudgePublisher, ObjectStore } from '../../shared/ports.ts';

export function nudgingStore(store: ObjectStore, publishers: readonly NudgePublisher[], onError: (error: unknown) => void): ObjectStore {
  return {
    get: (key) => store.get(key),
    delete: (key) => store.delete(key),
    list: (prefix) => store.list(prefix),
    put: async (key, body, options) => {
      const written = await store.put(key, body, options);
      const owner = documentOwner(key);
      if (owner) {
        const generation = (JSON.parse(body) as { generation?: unknown }).generation;
        if (typeof generation === 'number') {
          for (const publisher of publishers) {
            try {
              void Promise.resolve(publisher.publish({ ...owner, generation })).catch(onError);
            } catch (error) {
              onError(error);
            }
          }
        }
      }
      return written;
    },
  };
}
