/**
 * `GET /v1/resource-groups/{rg}`: the RG's status (findings, documents with generation and
 * hash, refused events) with what each VM's agent last reported it applied.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import middy from '@middy/core';
import httpErrorHandler from '@middy/http-error-handler';
import { type ObjectStore, storeKeys } from '../../shared/ports.ts';
import { dnsLabel } from '../../shared/schema/primitives.ts';
import { agentReportSchema, type AgentReport } from '../../shared/state/report.ts';
import { rgStatusSchema } from '../../shared/state/status.ts';
import { type Authorizer, type HttpEvent, type HttpResult, json, problem, unauthorized } from '../shared/http.ts';

export interface StatusDependencies {
  readonly store: ObjectStore;
  readonly authorize: Authorizer;
  readonly logger: Logger;
}

async function reports(store: ObjectStore, rg: string): Promise<Map<string, AgentReport | { invalid: string }>> {
  const prefix = storeKeys.reportsOf(rg);
  const keys = await store.list(prefix);
  const entries = await Promise.all(
    keys.map(async (key) => {
      const object = await store.get(key);
      const vm = key.slice(prefix.length).replace(/\.json$/, '');
      try {
        const parsed = agentReportSchema.safeParse(JSON.parse(object?.body ?? ''));
        return [vm, parsed.success ? parsed.data : { invalid: 'the report does not match the report schema' }] as const;
      } catch {
        return [vm, { invalid: 'the report is not valid JSON' }] as const;
      }
    }),
  );
  return new Map(entries);
}

export function createStatusHandler(deps: StatusDependencies) {
  const handler = async (event: HttpEvent): Promise<HttpResult> => {
    if (!deps.authorize(event)) return unauthorized();
    const rg = dnsLabel.safeParse(event.pathParameters?.rg);
    if (!rg.success) return problem(400, 'Bad Request', 'invalid resource group name', [{ field: 'rg', reason: rg.error.issues[0]?.message ?? 'invalid' }]);
    const object = await deps.store.get(storeKeys.status(rg.data));
    if (!object) return problem(404, 'Not Found', `no status for resource group ${rg.data} yet: no event of it was processed`);
    const status = rgStatusSchema.parse(JSON.parse(object.body));
    const reported = await reports(deps.store, rg.data);
    return json(200, {
      ...status,
      documents: status.documents.map((document) => {
        const report = reported.get(document.vm);
        const inSync = report && 'appliedHash' in report ? report.appliedHash === document.hash : false;
        return { ...document, agent: report ?? null, inSync };
      }),
    });
  };
  return middy<HttpEvent, HttpResult>(handler).use(httpErrorHandler({ logger: (error) => deps.logger.error('status failed', error as Error) }));
}
