/**
 * Staged rollout of frontend changes to a group's webgateways, as a pure step of the reconcile.
 * A change to the frontends (a haproxy option, a bind, a virtual host) reaches every gateway at
 * once otherwise, and a bad one takes all of them down before anyone notices. So, with two or
 * more gateways that already run a document, the first one by name (the canary) gets the new
 * frontends and the others keep the set they last ran (`stableFrontends`) until the canary
 * reports it applied the round's generation; a failed report halts the round, and the next
 * change to the frontends starts a new one. Endpoints are not held: the held gateways' documents
 * are computed from the stable frontends and the current endpoints, so backends follow the pods
 * on every gateway as fast as ever (runtime API, no reload).
 */
import { documentHash } from '../contract/document-envelope.ts';
import { computeDesiredState, type DesiredState, type DesiredStateOptions } from '../desired-state.ts';
import type { CanaryReportedEvent } from '../events/rollout-events.ts';
import { canonicalJson, sha256Hex } from '../hash.ts';
import type { VmDocument } from '../schema/document.ts';
import type { Frontends, ResourceGroup } from '../schema/resource-group.ts';
import type { Rollout } from './rg-state.ts';
import type { RolloutStatus } from './status.ts';

export type RolloutPolicy = 'canary' | 'all-at-once';

export interface RolloutInput {
  /** The rollout in flight before this run (with the canary's reports of this run folded in). */
  readonly rollout: Rollout | undefined;
  readonly policy: RolloutPolicy;
  /** The frontends every gateway was given before this run, when no rollout was in flight. */
  readonly frontendsBefore: Frontends;
  readonly frontendsNow: Frontends;
  /** The gateways that get a document this run (not blocked), sorted by name. */
  readonly gateways: readonly string[];
  /** The VMs that have a stored document: a gateway without one has nothing to keep. */
  readonly published: ReadonlySet<string>;
  readonly now: string;
}

export interface RolloutStep {
  /** The rollout after this run; undefined when every gateway gets the group's frontends. */
  readonly rollout: Rollout | undefined;
  /** The gateways whose documents are computed from `rollout.stableFrontends`. */
  readonly held: readonly string[];
  /** This run starts a round: its generation is the canary's generation once the writes are planned. */
  readonly newRound: boolean;
}

const NONE: RolloutStep = { rollout: undefined, held: [], newRound: false };

export const frontendsRound = (frontends: Frontends): string => sha256Hex(canonicalJson(frontends)).slice(0, 16);

export function stepRollout(input: RolloutInput): RolloutStep {
  if (input.policy !== 'canary') return NONE;
  const round = frontendsRound(input.frontendsNow);
  let rollout = input.rollout;
  if (!rollout) {
    if (frontendsRound(input.frontendsBefore) === round) return NONE;
    // A fresh group or a single gateway has nothing running to protect.
    const running = input.gateways.filter((vm) => input.published.has(vm));
    if (running.length < 2) return NONE;
    rollout = { canary: running[0]!, stableFrontends: input.frontendsBefore, round: '', startedAt: input.now };
  }
  // Changed back to what the held gateways run: there is nothing left to roll out.
  if (frontendsRound(rollout.stableFrontends) === round) return NONE;
  if (!input.gateways.includes(rollout.canary)) {
    // The canary left (deleted, blocked, no longer a gateway): another one starts the round again.
    const next = input.gateways.find((vm) => input.published.has(vm)) ?? input.gateways[0];
    if (next === undefined) return NONE;
    rollout = { ...rollout, canary: next, round: '' };
  }
  const canary = rollout.canary;
  const held = input.gateways.filter((vm) => vm !== canary);
  if (held.length === 0) return NONE;
  if (rollout.round !== round) {
    const { generation: _previousRound, halted: _halted, report: _report, ...kept } = rollout;
    return { rollout: { ...kept, round, roundStartedAt: input.now }, held, newRound: true };
  }
  const { report, generation } = rollout;
  if (report && generation !== undefined && report.generation >= generation) {
    if (report.outcome === 'applied') return NONE;
    if (!rollout.halted) rollout = { ...rollout, halted: { generation: report.generation, reason: report.reason ?? 'the canary failed to apply it', at: report.at } };
  }
  return { rollout, held, newRound: false };
}

/** The reducer's part: the canary's report is kept on the rollout; any other report changes nothing. */
export function foldCanaryReport(rollout: Rollout | undefined, event: CanaryReportedEvent): Rollout | string {
  const { vm, generation, outcome, reason } = event.payload;
  if (!rollout) return `no gateway rollout is waiting for a report (from ${vm}, generation ${generation})`;
  if (rollout.canary !== vm) return `${vm} is not the canary of the rollout (${rollout.canary} is)`;
  if (rollout.report && rollout.report.generation > generation) return `older than the canary's report for generation ${rollout.report.generation}`;
  return { ...rollout, report: { generation, outcome, ...(reason ? { reason } : {}), at: event.occurredAt } };
}

/**
 * The desired state with a rollout in flight: the canary's document from the group's frontends,
 * marked so its agent reports back; each held gateway's from the stable frontends (and the
 * current endpoints, VMs and settings); every other VM's as computed. A held gateway the stable
 * frontends would block keeps its last document (it is listed as blocked).
 */
export function stagedDesiredState(
  computed: DesiredState,
  rollout: Rollout,
  held: readonly string[],
  description: ResourceGroup,
  options: DesiredStateOptions,
  reportUrl: string,
): DesiredState {
  const stable = computeDesiredState({ ...description, frontends: rollout.stableFrontends }, options);
  const stableOf = new Map(stable.documents.map((document) => [document.vm, document]));
  const holding = new Set(held);
  const documents: VmDocument[] = [];
  const blocked = [...computed.blocked];
  for (const document of computed.documents) {
    if (document.vm === rollout.canary) documents.push(asCanary(document, { round: rollout.round, reportUrl }));
    else if (!holding.has(document.vm)) documents.push(document);
    else {
      const kept = stableOf.get(document.vm);
      if (kept) documents.push(kept);
      else blocked.push({ vm: document.vm, reasons: ['rollout.held'] });
    }
  }
  // Slot tables of frontends only the held gateways still run are kept too, so their pods keep their slots.
  return { ...computed, documents, blocked, slots: { ...stable.slots, ...computed.slots } };
}

function asCanary(document: VmDocument, canary: NonNullable<VmDocument['canary']>): VmDocument {
  const { hash: _computed, ...content } = document;
  const marked = { ...content, canary };
  return { ...marked, hash: documentHash(marked) };
}

export function rolloutStatus(rollout: Rollout, held: readonly string[]): RolloutStatus {
  return {
    phase: rollout.halted ? 'halted' : 'waiting',
    canary: rollout.canary,
    ...(rollout.generation !== undefined ? { generation: rollout.generation } : {}),
    held: [...held],
    startedAt: rollout.startedAt,
    since: rollout.roundStartedAt ?? rollout.startedAt,
    ...(rollout.halted ? { reason: rollout.halted.reason, haltedAt: rollout.halted.at } : {}),
  };
}
