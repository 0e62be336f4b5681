/**
 * A resource group description: everything the desired state is computed from.
 * Cross-field rules that make a description meaningless (duplicate names) are schema
 * errors; rules about a sensible cluster are findings (see ../findings/).
 */
import { z } from 'zod';
import { clusterSchema } from './cluster.ts';
import { serviceEndpointsSchema } from './endpoints.ts';
import { frontendName, frontendSchema } from './frontend.ts';
import { caHash, dnsLabel, secretValue, serviceName } from './primitives.ts';
import { userSchema } from './user.ts';
import { vmInputSchema, vmSchema } from './vm.ts';

export const secretsSchema = z.strictObject({
  /** Shared by server, agents and webgateway to join the cluster. */
  clusterToken: secretValue.optional(),
  /** Signs the cluster's endpoint webhooks; only the server's document carries it. */
  webhookKey: secretValue.optional(),
  /** The k3s datastore's password on the server's own PostgreSQL; only the server's document carries it. */
  datastorePassword: secretValue.optional(),
  /**
   * The hash of the server CA k3s made on its first start, as the server's agent first reported
   * it (pinned: another one is refused). Not secret, but it lives and dies with the cluster as
   * the secrets do. Agents and the webgateway join with `K10<hash>::node:<agent token>`.
   */
  clusterCaHash: caHash.optional(),
});

/** Marks duplicates of `key(item)` in a list as issues at `path[index]`. */
function refineUnique<T>(list: readonly T[], key: (item: T) => string, what: string, path: (string | number)[], ctx: z.RefinementCtx): void {
  const firstIndex = new Map<string, number>();
  list.forEach((item, index) => {
    const value = key(item);
    const first = firstIndex.get(value);
    if (first === undefined) firstIndex.set(value, index);
    else ctx.addIssue({ code: 'custom', path: [...path, index], message: `duplicate ${what} "${value}" (first at index ${first})` });
  });
}

/** A group's frontends by name (also what a gateway rollout keeps as the last good set). */
export const frontendsSchema = z.record(frontendName, frontendSchema).default({});
export type Frontends = z.output<typeof frontendsSchema>;

/** A description whose VMs are read with `vm`: as stored (`vmSchema`) or as written by a user (`vmInputSchema`). */
const describedWith = (vm: typeof vmSchema) =>
  z
    .strictObject({
      name: dnsLabel,
      /** Absent until the portal provisions a cluster; then every Kubernetes role is served. */
      cluster: clusterSchema.optional(),
      vms: z.array(vm).default([]),
      users: z.array(userSchema).default([]),
      frontends: frontendsSchema,
      endpoints: z.array(serviceEndpointsSchema).default([]),
      secrets: secretsSchema.default({}),
    })
    .superRefine((rg, ctx) => {
      refineUnique(rg.vms, (vm) => vm.name, 'VM name', ['vms'], ctx);
      refineUnique(rg.users, (user) => user.name, 'user name', ['users'], ctx);
      refineUnique(rg.endpoints, (e) => `${e.namespace}/${e.service}`, 'service', ['endpoints'], ctx);
      for (const [name, frontend] of Object.entries(rg.frontends)) {
        const problem = defaultServiceNameProblem(name, frontend.serviceName);
        if (problem) ctx.addIssue({ code: 'custom', path: ['frontends', name, 'serviceName'], message: problem });
      }
    });

/** A resource group as stored in the state and read back. */
export const resourceGroupSchema = describedWith(vmSchema);
/** A resource group as a user writes it (`ringmaster plan`): no misspelt Kubernetes role either. */
export const resourceGroupInputSchema = describedWith(vmInputSchema);

/** `serviceName` defaults to the frontend's name, which must then be a valid Service name. */
export function defaultServiceNameProblem(frontendName: string, explicit: string | undefined): string | undefined {
  if (explicit !== undefined || serviceName.safeParse(frontendName).success) return undefined;
  return `is required: it defaults to the frontend's name "${frontendName}", which is not a valid Kubernetes Service name`;
}

export type ResourceGroupInput = z.input<typeof resourceGroupSchema>;
export type ResourceGroup = z.output<typeof resourceGroupSchema>;
