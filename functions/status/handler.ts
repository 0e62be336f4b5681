/**
 * The `status` function: what the portal and operators read.
 * - `getResourceGroup`: the status view (shared/contract/status-view.ts): the
 *   stored status joined with what each VM's agent reported.
 * - `getKubeconfig`: the newest kubeconfig the server issued
 *   for the user, for the portal to hand out. A secret: never cached, never logged.
 * - `listResourceGroups`: the groups that have a status, by name.
 * - `getOpenApi` and `getHealth`; the status page's files (./page.ts).
 */
import type { RoutesOf } from '../../shared/contract/routes.ts';
import type { Logger } from '@aws-lambda-powertools/logger';
import type { ReadReport } from '../../shared/contract/agent-report.ts';
import { readAgentReport } from '../../shared/contract/agent-report.ts';
import { openApiDocument } from '../../shared/contract/openapi.ts';
import { statusView } from '../../shared/contract/status-view.ts';
import { historyView } from '../../shared/contract/history-view.ts';
import { reportedVm, storeKeys, storePrefixes } from '../../shared/contract/store-layout.ts';
import type { ObjectStore } from '../../shared/ports.ts';
import { dnsLabel } from '../../shared/schema/primitives.ts';
import { rgStatusSchema } from '../../shared/state/status.ts';
import type { RouteHandlers } from '../shared/api.ts';
import { json, notFound } from '../shared/http.ts';
import { readStoredDocuments } from '../shared/state-store.ts';
import { createPageHandlers, type PageAssets } from './page.ts';

export interface StatusDependencies {
  readonly store: ObjectStore;
  readonly logger: Logger;
  /** The API's URL for the OpenAPI document's `servers` (default: the host the request came to, over HTTPS). */
  readonly serverUrl?: () => string;
  /** Events waiting in the queue, where that is cheap to know (local mode). */
  readonly queued?: () => number;
  /** The status page's built files. */
  readonly page: PageAssets;
}

async function readReports(store: ObjectStore, rg: string): Promise<Map<string, ReadReport>> {
  const keys = await store.list(storeKeys.reportsOf(rg));
  const entries = await Promise.all(
    keys.map(async (key) => {
      const vm = reportedVm(rg, key);
      const object = vm ? await store.get(key) : undefined;
      return vm && object ? [[vm, readAgentReport(object.body)] as const] : [];
    }),
  );
  return new Map(entries.flat());
}

async function readStatus(store: ObjectStore, rg: string) {
  const object = await store.get(storeKeys.status(rg));
  return object ? rgStatusSchema.parse(JSON.parse(object.body)) : undefined;
}

export function createStatusHandlers(deps: StatusDependencies): RouteHandlers<RoutesOf<'status'>> {
  // Made from every schema of the table: once, not per request (kept for the last server URL
  // only: a Host header of the caller's choosing must not grow a cache).
  let openApiCache: { url: string; body: string } | undefined;
  const openApi = (url: string) => (openApiCache?.url === url ? openApiCache : (openApiCache = { url, body: JSON.stringify(openApiDocument(url)) })).body;
  return {
    ...createPageHandlers(deps.page),

    listResourceGroups: async () => {
      const names = (await deps.store.list(storePrefixes.status)).flatMap((key) => {
        const name = key.slice(storePrefixes.status.length, -'.json'.length);
        return key === storeKeys.status(name) && dnsLabel.safeParse(name).success ? [name] : [];
      });
      return json(200, { resourceGroups: names.sort().map((name) => ({ name })) });
    },

    getResourceGroup: async ({ parameters: { rg } }) => {
      const status = await readStatus(deps.store, rg);
      if (!status) throw notFound(`no status for resource group ${rg} yet: no event of it was processed`);
      const [reports, stored] = await Promise.all([readReports(deps.store, rg), readStoredDocuments(deps.store, rg)]);
      return json(200, statusView(status, reports, stored));
    },

    getResourceGroupHistory: async ({ parameters: { rg } }) => {
      const status = await readStatus(deps.store, rg);
      if (!status) throw notFound(`no status for resource group ${rg} yet: no event of it was processed`);
      return json(200, historyView(status, await readReports(deps.store, rg)));
    },

    getKubeconfig: async ({ parameters: { rg, user } }) => {
      const issued = (await readStatus(deps.store, rg))?.kubeconfigs.find((k) => k.user === user);
      const object = issued ? await deps.store.get(issued.location) : undefined;
      if (!issued || !object) throw notFound(`no kubeconfig issued for ${user} in ${rg}: send a kubeconfig.requested event`);
      return {
        statusCode: 200,
        headers: { 'content-type': 'application/yaml', 'cache-control': 'no-store', 'x-ringmaster-expires-at': issued.expiresAt },
        body: object.body,
      };
    },

    getOpenApi: async ({ event }) => ({ statusCode: 200, headers: { 'content-type': 'application/json' }, body: openApi(deps.serverUrl?.() ?? `https://${event.requestContext.domainName}`) }),

    getHealth: async () => json(200, { ok: true, ...(deps.queued ? { queued: deps.queued() } : {}) }),
  };
}
