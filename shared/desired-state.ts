/**
 * The desired state of a resource group: a pure function from its description (and the
 * slot table of the last run) to one document per VM, plus the findings that explain it.
 * No I/O, no clock, no randomness: the same input gives byte-identical documents, so
 * a reconciler writes only what changed and can re-run at any time.
 */
import { type AcmeSettings, DEFAULT_ACME } from './certificates/acme-settings.ts';
import { DocumentParts } from './documents/builder.ts';
import { type RenderContext, renderAgent, renderNfs, renderServer, renderWebgateway } from './documents/roles.ts';
import { blockedVms, type Finding, sortFindings } from './findings/finding.ts';
import { frontendFindings } from './findings/frontends.ts';
import { maintenanceFindings } from './findings/maintenance.ts';
import { networkFindings } from './findings/network.ts';
import { topologyFindings } from './findings/topology.ts';
import { documentHash } from './contract/document-envelope.ts';
import { sha256Hex } from './hash.ts';
import { type Layout, layoutOfVm, type VmLayouts } from './layout.ts';
import { buildModel, type Model } from './model.ts';
import { type HaproxyPlan, planHaproxy } from './render/haproxy.ts';
import { type RoleAssignment, assignRoles } from './role-assignment.ts';
import { DOCUMENT_API_VERSION, type KubernetesTasks, type VmDocument } from './schema/document.ts';
import type { ResourceGroup } from './schema/resource-group.ts';
import type { Vm } from './schema/vm.ts';
import { agentJoinToken, agentTokenOf } from './secrets.ts';
import type { SlotTable } from './slots.ts';
import { kubernetesRolesOf } from './topology.ts';

export interface DesiredStateOptions {
  /** Where VMs keep their files: one layout for all (default: a production VM's) or one per VM (sandboxed VMs). */
  readonly layout?: VmLayouts;
  /** The slot tables of the previous run, so pods keep their haproxy slots. */
  readonly previousSlots?: Readonly<Record<string, SlotTable>>;
  /** The control plane's API URL as the server reaches it, for its calls back (endpoint changes, kubeconfigs). */
  readonly apiUrl?: string;
  /** Kubeconfig requests waiting for the server's agent (from the state, not the description). */
  readonly kubeconfigRequests?: ReadonlyArray<{ readonly eventId: string; readonly user: string }>;
  /** Where VMs order their certificates (default: Let's Encrypt production, no e-mail). */
  readonly acme?: AcmeSettings;
}

export interface BlockedVm {
  readonly vm: string;
  /** The codes of the error findings that withhold its document. */
  readonly reasons: readonly string[];
}

export interface DesiredState {
  readonly resourceGroup: string;
  /** One per VM that is not blocked, sorted by VM name. */
  readonly documents: readonly VmDocument[];
  readonly blocked: readonly BlockedVm[];
  readonly findings: readonly Finding[];
  /** Roles given by automatic assignment: persist them, they must not change later. */
  readonly assignments: readonly RoleAssignment[];
  /** Slot tables to pass back as `previousSlots` next time. */
  readonly slots: Readonly<Record<string, SlotTable>>;
}

function pollInterval(model: Model, vm: Vm): number {
  const poll = model.cluster?.poll;
  if (vm.roles.includes('webgateway')) return poll?.webgatewaySeconds ?? 1;
  return poll?.defaultSeconds ?? 30;
}

function renderDocument(vm: Vm, ctx: RenderContext): VmDocument {
  const { model } = ctx;
  const roles = model.cluster ? kubernetesRolesOf(vm) : [];
  const parts = new DocumentParts();
  const server = model.topology.servers[0];
  let kubernetes: KubernetesTasks | undefined;
  if (roles.includes('k3s-server')) kubernetes = renderServer(parts, vm, ctx);
  if (server && roles.includes('k3s-agent')) renderAgent(parts, vm, server, ctx);
  if (server && roles.includes('webgateway')) renderWebgateway(parts, vm, server, ctx);
  if (roles.includes('k3s-nfs')) renderNfs(parts, ctx);

  const sorted = parts.sorted();
  const body = {
    apiVersion: DOCUMENT_API_VERSION,
    kind: 'VmDocument' as const,
    resourceGroup: model.rg.name,
    vm: vm.name,
    roles,
    pollIntervalSeconds: pollInterval(model, vm),
    ...sorted,
    ...(roles.includes('webgateway') ? { haproxy: ctx.haproxy.runtime } : {}),
    ...(kubernetes ? { kubernetes } : {}),
    ...(sorted.certificates ? { acme: { ...ctx.acme, webroot: ctx.layout.acmeWebroot } } : {}),
  };
  return { ...body, hash: documentHash(body) };
}

export function computeDesiredState(rg: ResourceGroup, options: DesiredStateOptions = {}): DesiredState {
  const layoutOf = (vm: string): Layout => layoutOfVm(options.layout, rg.name, vm);
  const assignment = assignRoles(rg);
  const model = buildModel(rg, assignment.vms);
  // haproxy.cfg names its sockets, so each layout has its config (and a sandboxed VM's binds
  // name its own addresses: one per gateway); the slots and findings are the same in all. One
  // layout for every VM (production) plans it once.
  const plans = new Map<string, HaproxyPlan>();
  const haproxyFor = (layout: Layout, gateway: Vm | undefined): HaproxyPlan => {
    const key = `${JSON.stringify(layout)}${layout.sharedMachine ? `\0${gateway?.name ?? ''}` : ''}`;
    const plan = plans.get(key) ?? planHaproxy(model, layout, options.previousSlots, gateway);
    plans.set(key, plan);
    return plan;
  };
  const firstGateway = model.topology.webgateways[0];
  const haproxy = haproxyFor(layoutOf(firstGateway?.name ?? ''), firstGateway);
  const findings = sortFindings([
    ...assignment.findings,
    ...topologyFindings(model),
    ...networkFindings(model),
    ...frontendFindings(model),
    ...maintenanceFindings(model),
    ...(model.topology.webgateways.length > 0 ? haproxy.findings : []),
  ]);
  const blocked = blockedVms(findings);
  // The server token goes to the server alone; agents and the webgateway join with the agent
  // token, which the server accepts in its short form and they present in the secure one.
  const secretFile = (secret: string | undefined) => {
    const content = `${secret ?? ''}\n`;
    return { content, sha256: `sha256:${sha256Hex(content)}` };
  };
  const serverToken = rg.secrets.clusterToken;
  const agentToken = serverToken === undefined ? undefined : agentTokenOf(serverToken, rg.name);
  const tokens = {
    server: secretFile(serverToken),
    accepted: secretFile(agentToken),
    join: secretFile(agentToken === undefined ? undefined : agentJoinToken(agentToken, rg.secrets.clusterCaHash)),
  };
  const ctx: RenderContext = { model, layout: layoutOf(''), layoutOf, haproxy, apiUrl: options.apiUrl, tokens, kubeconfigRequests: options.kubeconfigRequests ?? [], acme: options.acme ?? DEFAULT_ACME };

  const documents: VmDocument[] = [];
  const blockedList: BlockedVm[] = [];
  for (const vm of model.vms) {
    if (blocked.has(vm.name)) {
      const reasons = findings.filter((f) => f.blocks.includes(vm.name)).map((f) => f.code);
      blockedList.push({ vm: vm.name, reasons: [...new Set(reasons)] });
    } else {
      const layout = layoutOf(vm.name);
      documents.push(renderDocument(vm, { ...ctx, layout, haproxy: vm.roles.includes('webgateway') ? haproxyFor(layout, vm) : haproxy }));
    }
  }
  return { resourceGroup: rg.name, documents, blocked: blockedList, findings, assignments: assignment.assignments, slots: haproxy.slots };
}
