/**
 * Runs on the k3s server: informers on EndpointSlices and Services forward the changes of the
 * services a frontend names to the control plane's endpoint webhook.
 *
 * - Bursts are batched: changes wait `batchDelayMs` for more (never more than `maxDelayMs`
 *   after the first), and only the newest state of each slice is kept, so a thousand updates
 *   to a few slices make a few calls.
 * - One call at a time, in order; a failed call goes back into the pending set (behind newer
 *   changes of the same slice) and is tried again with backoff. The informers never wait on
 *   the control plane, so a slow one only makes batches bigger.
 * - Every full list (start, restart, a watch gap answered 410 Gone) sends a resync: all
 *   watched slices, flagged so the control plane drops the ones not named.
 */
import { randomUUID } from 'node:crypto';
import { CoreV1Api, DiscoveryV1Api, ERROR, type KubeConfig, makeInformer, type V1EndpointSlice, type V1Service } from '@kubernetes/client-node';
import { endpointChangeSchema, MAX_CHANGES_PER_WEBHOOK, SERVICE_NAME_LABEL, serviceObservationSchema, type EndpointChange } from '../../shared/events/endpoint-events.ts';
import type { z } from 'zod';

type ServiceObservation = z.output<typeof serviceObservationSchema>;
type ChangeType = EndpointChange['type'];

export interface WatchedService {
  readonly namespace: string;
  readonly service: string;
}

/** What one call carries; `oldestChangeAt` is when the oldest change in it was observed. */
export interface WebhookBatch {
  readonly body: string;
  readonly changes: readonly EndpointChange[];
  readonly services: readonly ServiceObservation[];
  readonly resync: boolean;
  readonly oldestChangeAt: number;
}

/** Sends one batch; resolves true when the control plane has it, false (or throws) to retry. */
export type DeliverBatch = (batch: WebhookBatch) => Promise<boolean>;

export interface EndpointForwarderOptions {
  readonly kubeConfig: KubeConfig;
  readonly deliver: DeliverBatch;
  readonly batchDelayMs?: number;
  readonly maxDelayMs?: number;
  /** A body stays under the webhook's 256 KiB limit, with room for the defaults the control plane adds. */
  readonly maxBodyBytes?: number;
  readonly log?: (message: string, fields?: Record<string, unknown>) => void;
  readonly now?: () => number;
}

interface Pending {
  readonly type: ChangeType;
  readonly object: EndpointChange['object'];
  readonly seenAt: number;
}

const key = (namespace: string, name: string) => `${namespace}/${name}`;

export class EndpointForwarder {
  readonly #options: Required<Omit<EndpointForwarderOptions, 'log'>> & Pick<EndpointForwarderOptions, 'log'>;
  readonly #slices;
  readonly #services;
  #watched = new Set<string>();
  #pending = new Map<string, Pending>();
  #pendingServices = new Map<string, { observation: ServiceObservation; seenAt: number }>();
  #resyncSince: number | undefined;
  #firstPendingAt: number | undefined;
  #timer: NodeJS.Timeout | undefined;
  #sending: Promise<void> | undefined;
  /** Failed deliveries in a row, and failed watches since the last successful list: each backs off. */
  #failures = 0;
  #watchFailures = 0;
  /** Whether each informer's cache holds a full list (a resync waits for both). */
  readonly #listed = { slices: false, services: false };
  #stopped = true;
  #starting: Promise<unknown> | undefined;
  readonly #restartTimers = new Set<NodeJS.Timeout>();
  /** Ends the backoff after a failed call early (on stop). */
  #wakeUp: (() => void) | undefined;

  constructor(options: EndpointForwarderOptions) {
    this.#options = { batchDelayMs: 100, maxDelayMs: 1000, maxBodyBytes: 160 * 1024, now: Date.now, ...options };
    const discovery = options.kubeConfig.makeApiClient(DiscoveryV1Api);
    const core = options.kubeConfig.makeApiClient(CoreV1Api);
    // Every list (the first and each after a watch gap) is a full picture: send it as a resync.
    const listed = <T>(which: 'slices' | 'services', list: () => Promise<T>) => async (): Promise<T> => {
      const result = await list();
      this.#watchFailures = 0;
      this.#listed[which] = true;
      this.#requestResync();
      return result;
    };
    this.#slices = makeInformer<V1EndpointSlice>(options.kubeConfig, '/apis/discovery.k8s.io/v1/endpointslices', listed('slices', () => discovery.listEndpointSliceForAllNamespaces()));
    this.#services = makeInformer<V1Service>(options.kubeConfig, '/api/v1/services', listed('services', () => core.listServiceForAllNamespaces()));
    this.#slices.on('add', (slice) => this.#onSlice('ADDED', slice));
    this.#slices.on('update', (slice) => this.#onSlice('MODIFIED', slice));
    this.#slices.on('delete', (slice) => this.#onSlice('DELETED', slice));
    for (const verb of ['add', 'update', 'delete'] as const) this.#services.on(verb, (service) => this.#onService(service));
    for (const [name, informer] of [['endpointslices', this.#slices], ['services', this.#services]] as const) {
      informer.on(ERROR, (error?: unknown) => this.#restart(name, informer, error));
    }
  }

  /** The services a frontend names (from the server's document). A change resyncs them all. */
  setWatched(services: readonly WatchedService[]): void {
    const next = new Set(services.map((s) => key(s.namespace, s.service)));
    if (next.size === this.#watched.size && [...next].every((k) => this.#watched.has(k))) return;
    this.#watched = next;
    if (!this.#stopped) this.#requestResync();
  }

  /** Starts both informers; a no-op while they run (the informers keep themselves going). */
  async start(): Promise<void> {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#starting = Promise.all([this.#slices.start(), this.#services.start()]);
    await this.#starting;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const timer of this.#restartTimers) clearTimeout(timer);
    this.#restartTimers.clear();
    this.#wakeUp?.();
    // An informer still listing would open its watch after being stopped: let it get there first.
    await this.#starting?.catch(() => undefined);
    await Promise.all([this.#slices.stop(), this.#services.stop()]);
    await this.#sending;
  }

  /** Resolves once nothing is pending or being sent, or the forwarder is stopped (a flush before shutdown). */
  async idle(): Promise<void> {
    while (!this.#stopped && (this.#sending || this.#timer || this.#pending.size > 0 || this.#pendingServices.size > 0 || this.#resyncSince !== undefined)) {
      await (this.#sending ?? new Promise((resolve) => setTimeout(resolve, 10)));
    }
  }

  #log(message: string, fields?: Record<string, unknown>): void {
    this.#options.log?.(message, fields);
  }

  /** A watch that ended in an error other than 410 (which the informer handles by listing again). */
  #restart(name: string, informer: { start(): Promise<void> }, error: unknown): void {
    if (this.#stopped) return;
    const wait = Math.min(30_000, 1000 * 2 ** Math.min(this.#watchFailures++, 5));
    this.#log('watch failed; starting it again', { resource: name, error: error instanceof Error ? error.message : String(error), retryInMs: wait });
    const timer = setTimeout(() => {
      this.#restartTimers.delete(timer);
      if (!this.#stopped) informer.start().catch((e: unknown) => this.#restart(name, informer, e));
    }, wait);
    this.#restartTimers.add(timer);
  }

  #isWatched(namespace: string | undefined, service: string | undefined): boolean {
    return namespace !== undefined && service !== undefined && this.#watched.has(key(namespace, service));
  }

  #onSlice(type: ChangeType, slice: V1EndpointSlice): void {
    const namespace = slice.metadata?.namespace;
    if (!this.#isWatched(namespace, slice.metadata?.labels?.[SERVICE_NAME_LABEL])) return;
    const change = toChange(type, slice);
    if (!change) {
      this.#log('an EndpointSlice the control plane cannot take was skipped', { namespace, slice: slice.metadata?.name });
      return;
    }
    const sliceKey = key(namespace!, change.object.metadata.name);
    // Only the newest state counts; the change keeps the time its oldest unsent part was seen.
    this.#pending.set(sliceKey, { type, object: change.object, seenAt: this.#pending.get(sliceKey)?.seenAt ?? this.#options.now() });
    this.#schedule();
  }

  #onService(service: V1Service): void {
    const namespace = service.metadata?.namespace;
    const name = service.metadata?.name;
    if (!this.#isWatched(namespace, name)) return;
    const observation = toServiceObservation(service);
    if (!observation) return;
    const serviceKey = key(namespace!, name!);
    this.#pendingServices.set(serviceKey, { observation, seenAt: this.#pendingServices.get(serviceKey)?.seenAt ?? this.#options.now() });
    this.#schedule();
  }

  #requestResync(): void {
    this.#resyncSince ??= this.#options.now();
    this.#schedule();
  }

  #schedule(): void {
    if (this.#stopped) return;
    const now = this.#options.now();
    this.#firstPendingAt ??= now;
    clearTimeout(this.#timer);
    const wait = Math.max(0, Math.min(this.#options.batchDelayMs, this.#firstPendingAt + this.#options.maxDelayMs - now));
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#flush();
    }, wait);
  }

  #flush(): void {
    if (this.#sending) return; // the running send schedules the next one
    this.#firstPendingAt = undefined;
    const batches = this.#takeBatches();
    if (batches.length === 0) return;
    this.#sending = this.#send(batches).finally(() => {
      this.#sending = undefined;
      if (this.#pending.size > 0 || this.#pendingServices.size > 0 || this.#resyncSince !== undefined) this.#schedule();
    });
  }

  async #send(batches: WebhookBatch[]): Promise<void> {
    for (const [index, batch] of batches.entries()) {
      let ok = false;
      try {
        ok = await this.#options.deliver(batch);
      } catch (error) {
        this.#log('endpoint webhook failed', { error: (error as Error).message });
      }
      if (!ok) {
        // Put everything not delivered back, behind anything newer, and wait before the next try.
        for (const rest of batches.slice(index)) this.#giveBack(rest);
        this.#failures++;
        await new Promise<void>((resolve) => {
          // At most a second apart, however long the control plane is away: its changes reach the
          // gateways within two seconds of it being back (one small signed POST a second meanwhile).
          const timer = setTimeout(resolve, Math.min(1000, 200 * 2 ** Math.min(this.#failures, 8)));
          this.#wakeUp = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.#wakeUp = undefined;
        return;
      }
      this.#failures = 0;
    }
  }

  #giveBack(batch: WebhookBatch): void {
    if (batch.resync) {
      // A resync is rebuilt from the informer's cache, which is newer anyway.
      this.#resyncSince = Math.min(this.#resyncSince ?? batch.oldestChangeAt, batch.oldestChangeAt);
      return;
    }
    for (const change of batch.changes) {
      const sliceKey = key(change.object.metadata.namespace, change.object.metadata.name);
      if (!this.#pending.has(sliceKey)) this.#pending.set(sliceKey, { type: change.type, object: change.object, seenAt: batch.oldestChangeAt });
    }
    for (const observation of batch.services) {
      const serviceKey = key(observation.namespace, observation.name);
      if (!this.#pendingServices.has(serviceKey)) this.#pendingServices.set(serviceKey, { observation, seenAt: batch.oldestChangeAt });
    }
  }

  /** Turns what is pending into bodies within the size and count limits, and clears it. */
  #takeBatches(): WebhookBatch[] {
    let changes: Pending[];
    let services: { observation: ServiceObservation; seenAt: number }[];
    const resyncSince = this.#resyncSince;
    // A resync says "this is everything": never built from a cache not yet filled by its first list.
    if (resyncSince !== undefined && !(this.#listed.slices && this.#listed.services)) return [];
    if (resyncSince !== undefined) {
      // Everything watched, from the caches the informers keep; pending changes are in there too.
      changes = this.#slices
        .list()
        .filter((slice) => this.#isWatched(slice.metadata?.namespace, slice.metadata?.labels?.[SERVICE_NAME_LABEL]))
        .flatMap((slice) => {
          const change = toChange('ADDED', slice);
          return change ? [{ type: 'ADDED' as const, object: change.object, seenAt: resyncSince }] : [];
        });
      services = this.#services
        .list()
        .filter((service) => this.#isWatched(service.metadata?.namespace, service.metadata?.name))
        .flatMap((service) => {
          const observation = toServiceObservation(service);
          return observation ? [{ observation, seenAt: resyncSince }] : [];
        });
    } else {
      changes = [...this.#pending.values()];
      services = [...this.#pendingServices.values()];
    }
    this.#pending.clear();
    this.#pendingServices.clear();
    this.#resyncSince = undefined;
    if (changes.length === 0 && services.length === 0 && resyncSince === undefined) return [];

    const batches: WebhookBatch[] = [];
    let current: { changes: Pending[]; services: typeof services; bytes: number } = { changes: [], services: [], bytes: 0 };
    const close = () => {
      const resync = resyncSince !== undefined && batches.length === 0;
      const all = [...current.changes.map((c) => c.seenAt), ...current.services.map((s) => s.seenAt)];
      const changes = current.changes.map(({ type, object }) => ({ type, object }));
      const services = current.services.map((s) => s.observation);
      batches.push({
        body: JSON.stringify({ changes, services, resync, nonce: randomUUID() }),
        changes,
        services,
        resync,
        oldestChangeAt: all.length > 0 ? Math.min(...all) : (resyncSince ?? this.#options.now()),
      });
      current = { changes: [], services: [], bytes: 0 };
    };
    // Service ports go first: they let the frontends of the slices that follow pick the right port.
    for (const service of services) {
      const bytes = JSON.stringify(service.observation).length + 1;
      if (current.bytes + bytes > this.#options.maxBodyBytes && current.services.length + current.changes.length > 0) close();
      current.services.push(service);
      current.bytes += bytes;
    }
    for (const change of changes) {
      const bytes = JSON.stringify(change.object).length + 32;
      if ((current.bytes + bytes > this.#options.maxBodyBytes || current.changes.length >= MAX_CHANGES_PER_WEBHOOK) && current.services.length + current.changes.length > 0) close();
      current.changes.push(change);
      current.bytes += bytes;
    }
    // An empty resync still says "nothing is watched any more".
    if (current.changes.length + current.services.length > 0 || batches.length === 0) close();
    return batches;
  }
}

/** The slice as the control plane takes it: only the fields it reads, checked by its own schema. */
function toChange(type: ChangeType, slice: V1EndpointSlice): EndpointChange | undefined {
  const parsed = endpointChangeSchema.safeParse({
    type,
    object: {
      metadata: {
        name: slice.metadata?.name,
        namespace: slice.metadata?.namespace,
        resourceVersion: slice.metadata?.resourceVersion,
        labels: { [SERVICE_NAME_LABEL]: slice.metadata?.labels?.[SERVICE_NAME_LABEL] },
      },
      addressType: slice.addressType,
      endpoints: (slice.endpoints ?? []).map((endpoint) => ({
        addresses: endpoint.addresses,
        conditions: endpoint.conditions ?? {},
        nodeName: endpoint.nodeName,
        targetRef: endpoint.targetRef ? { kind: endpoint.targetRef.kind, name: endpoint.targetRef.name, namespace: endpoint.targetRef.namespace, uid: endpoint.targetRef.uid } : undefined,
      })),
      ports: (slice.ports ?? []).map((port) => ({ name: port.name, port: port.port, protocol: port.protocol })),
    },
  });
  return parsed.success ? parsed.data : undefined;
}

function toServiceObservation(service: V1Service): ServiceObservation | undefined {
  const parsed = serviceObservationSchema.safeParse({
    namespace: service.metadata?.namespace,
    name: service.metadata?.name,
    ports: (service.spec?.ports ?? []).map((port) => ({ name: port.name, port: port.port, targetPort: port.targetPort, protocol: port.protocol })),
  });
  return parsed.success ? parsed.data : undefined;
}
