/**
 * `GET /v1/resource-groups/{rg}`: the RG's status (findings, documents with generation and
 * hash, refused events) with what each VM's agent last reported it applied.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import middy from '@middy/core';
import httpErrorHandler from '@middy/http-error-handler';
import { type ObjectStore, storeKeys } from '../../shared/ports.ts';
import { dnsLabel } from '../../shared/schema/primitives.ts';
import { userSchema } from '../../shared/schema/user.ts';
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
    // The server's agent reports each drain step: shown per VM, so the portal can tell when one is safe to take down.
    // Only the k3s server's report is believed: any other VM writes its own report too, and must not speak for others.
    const servers = new Set(status.documents.filter((d) => d.roles.includes('k3s-server')).map((d) => d.vm));
    const maintenance = [...reported.entries()].flatMap(([vm, report]) =>
      servers.has(vm) && 'kubernetes' in report && report.kubernetes ? report.kubernetes.drain.map((step) => ({ vm: step.node, ...step, reportedAt: report.kubernetes!.at })) : [],
    );
    return json(200, {
      ...status,
      maintenance,
      documents: status.documents.map((document) => {
        const report = reported.get(document.vm);
        const inSync = report && 'appliedHash' in report ? report.appliedHash === document.hash : false;
        return { ...document, agent: report ?? null, inSync };
      }),
    });
  };
  return middy<HttpEvent, HttpResult>(handler).use(httpErrorHandler({ logger: (error) => deps.logger.error('status failed', error as Error) }));
}

/**
 * `GET /v1/resource-groups/{rg}/kubeconfigs/{user}`: the newest kubeconfig the server issued
 * for the user, for the portal to hand out. A secret: never cached, never logged.
 */
export function createKubeconfigReadHandler(deps: StatusDependencies) {
  const handler = async (event: HttpEvent): Promise<HttpResult> => {
    if (!deps.authorize(event)) return unauthorized();
    const rg = dnsLabel.safeParse(event.pathParameters?.rg);
    if (!rg.success) return problem(400, 'Bad Request', 'invalid resource group name', [{ field: 'rg', reason: rg.error.issues[0]?.message ?? 'invalid' }]);
    const user = userSchema.shape.name.safeParse(event.pathParameters?.user);
    if (!user.success) return problem(400, 'Bad Request', 'invalid user name', [{ field: 'user', reason: user.error.issues[0]?.message ?? 'invalid' }]);
    const status = await deps.store.get(storeKeys.status(rg.data));
    const issued = status ? rgStatusSchema.parse(JSON.parse(status.body)).kubeconfigs.find((k) => k.user === user.data) : undefined;
    const object = issued ? await deps.store.get(issued.location) : undefined;
    if (!issued || !object) return problem(404, 'Not Found', `no kubeconfig issued for ${user.data} in ${rg.data}: send a kubeconfig.requested event`);
    return {
      statusCode: 200,
      headers: { 'content-type': 'application/yaml', 'cache-control': 'no-store', 'x-ringmaster-expires-at': issued.expiresAt },
      body: object.body,
    };
  };
  return middy<HttpEvent, HttpResult>(handler).use(httpErrorHandler({ logger: (error) => deps.logger.error('kubeconfig read failed', error as Error) }));
}
