/**
 * The store layout: one bucket, and its prefixes are the contract between the parts. The
 * reconciler writes `state/`, `status/` and `desired/`; each VM's agent reads its own
 * `desired/` document and writes its own `reports/` object; only the portal reads
 * `kubeconfigs/`. Key builders, the patterns that parse keys back, and the prefixes the CDK
 * grants and the agents' policies are scoped to all come from here.
 */
import { DNS_LABEL_PATTERN } from '../schema/primitives.ts';
import { USER_NAME_PATTERN } from '../schema/user.ts';

/** Every prefix of the bucket, by what it holds. */
export const storePrefixes = {
  /** `state/<rg>.json`: the RG's folded state (secrets included: the reconciler's alone). */
  state: 'state/',
  /** `desired/<rg>/<vm>.json`: one signed-off document per VM, readable by that VM only. */
  desired: 'desired/',
  /** `reports/<rg>/<vm>.json`: what each VM's agent applied, written by that agent only. */
  reports: 'reports/',
  /** `status/<rg>.json`: what the status API serves (merged with reports on read). */
  status: 'status/',
  /** `kubeconfigs/<rg>/<user>/<delivery>.yaml`: issued kubeconfigs, for the portal only. */
  kubeconfigs: 'kubeconfigs/',
  /** `cluster-auth/<rg>.json`: the key a cluster signs its calls with, alone: all the cluster function may read. */
  clusterAuth: 'cluster-auth/',
} as const;

export type StorePrefix = keyof typeof storePrefixes;

export const storeKeys = {
  state: (rg: string) => `${storePrefixes.state}${rg}.json`,
  desired: (rg: string, vm: string) => `${storePrefixes.desired}${rg}/${vm}.json`,
  report: (rg: string, vm: string) => `${storePrefixes.reports}${rg}/${vm}.json`,
  status: (rg: string) => `${storePrefixes.status}${rg}.json`,
  reportsOf: (rg: string) => `${storePrefixes.reports}${rg}/`,
  desiredOf: (rg: string) => `${storePrefixes.desired}${rg}/`,
  /**
   * Readable by the portal only: never under a prefix an agent may read. One object per
   * delivery, so a late or replayed delivery can never overwrite a newer kubeconfig.
   */
  kubeconfig: (rg: string, user: string, deliveryId: string) => `${storePrefixes.kubeconfigs}${rg}/${user}/${deliveryId}.yaml`,
  kubeconfigsOf: (rg: string) => `${storePrefixes.kubeconfigs}${rg}/`,
  clusterAuth: (rg: string) => `${storePrefixes.clusterAuth}${rg}.json`,
} as const;

/** Delivery ids are event ids made from a signature (`wh-<hex>`): a safe key segment. */
const DELIVERY_ID_PATTERN = '[A-Za-z0-9_-]{1,128}';
const inner = (pattern: string) => pattern.replace(/^\^/, '').replace(/\$$/, '');

/** A stored kubeconfig's key, as an event may name it: under `kubeconfigs/<rg>/<user>/` and nowhere else. */
export const kubeconfigKeyPattern = new RegExp(
  `^${storePrefixes.kubeconfigs}(${inner(DNS_LABEL_PATTERN.source)})/(${inner(USER_NAME_PATTERN.source)})/${DELIVERY_ID_PATTERN}\\.yaml$`,
);

function vmUnder(prefix: string, key: string): string | undefined {
  if (!key.startsWith(prefix) || !key.endsWith('.json')) return undefined;
  const vm = key.slice(prefix.length, -'.json'.length);
  return DNS_LABEL_PATTERN.test(vm) ? vm : undefined;
}

/** The VM a key under `reports/<rg>/` belongs to, or undefined for any other key. */
export const reportedVm = (rg: string, key: string): string | undefined => vmUnder(storeKeys.reportsOf(rg), key);

/** The VM a key under `desired/<rg>/` is the document of, or undefined for any other key. */
export const documentVm = (rg: string, key: string): string | undefined => vmUnder(storeKeys.desiredOf(rg), key);

/** The group and VM of a `desired/<rg>/<vm>.json` key, or undefined for any other key. */
export function documentOwner(key: string): { resourceGroup: string; vm: string } | undefined {
  if (!key.startsWith(storePrefixes.desired)) return undefined;
  const [resourceGroup, file, ...rest] = key.slice(storePrefixes.desired.length).split('/');
  if (resourceGroup === undefined || file === undefined || rest.length > 0 || !DNS_LABEL_PATTERN.test(resourceGroup)) return undefined;
  const vm = documentVm(resourceGroup, key);
  return vm === undefined ? undefined : { resourceGroup, vm };
}

/** The resource group a `state/<rg>.json` key holds, or undefined for any other key. */
export function stateGroup(key: string): string | undefined {
  if (!key.startsWith(storePrefixes.state) || !key.endsWith('.json')) return undefined;
  const rg = key.slice(storePrefixes.state.length, -'.json'.length);
  return DNS_LABEL_PATTERN.test(rg) ? rg : undefined;
}

/** A pattern of every key under a prefix, for IAM resources and S3 grants (`desired/*`). */
export const everyKeyUnder = (prefix: StorePrefix): string => `${storePrefixes[prefix]}*`;
