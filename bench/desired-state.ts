/**
 * `npm run bench`: how long the pure desired-state computation takes for big resource groups.
 *
 * For each size (k3s-agents; plus one k3s-server, webgateway and k3s-nfs VM, 100 frontends with
 * 10 ready pods each and 50 users) it times two cases of `computeDesiredState`:
 *   - full:        a run without previous slots (a cold reconcile);
 *   - slot update: the same RG after one pod was replaced, with the slots of the prior run
 *                  (what one endpoint event costs).
 * Inputs are parsed once, outside the timing loop, and checked for error findings first.
 * Prints a table, then one line `BENCH_JSON {...}` for scripts. A missed goal is reported,
 * never an exit code: only a broken fixture fails the run.
 *
 * Options: --sizes 10,50,253  --warmup 20  --min-runs 200  --min-seconds 2  --goal-ms 10
 *          --frontends 100  --pods 10 (per frontend)  --users 50
 * The goal is judged only with the default fixture shape (100 frontends, 10 pods, 50 users).
 */
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { computeDesiredState, type DesiredState, type DesiredStateOptions } from '../shared/desired-state.ts';
import { type ResourceGroup, resourceGroupSchema } from '../shared/schema/resource-group.ts';
import { buildFixture, DEFAULT_FIXTURE, type FixtureSettings, MAX_AGENTS } from './fixtures.ts';

interface Settings {
  readonly sizes: number[];
  readonly warmup: number;
  readonly minRuns: number;
  readonly minSeconds: number;
  readonly goalMs: number;
  readonly fixture: Omit<FixtureSettings, 'agents'>;
}

function readSettings(): Settings {
  const { values } = parseArgs({
    options: {
      sizes: { type: 'string', default: '10,50,253' },
      warmup: { type: 'string', default: '20' },
      'min-runs': { type: 'string', default: '200' },
      'min-seconds': { type: 'string', default: '2' },
      'goal-ms': { type: 'string', default: '10' },
      frontends: { type: 'string', default: String(DEFAULT_FIXTURE.frontends) },
      pods: { type: 'string', default: String(DEFAULT_FIXTURE.podsPerFrontend) },
      users: { type: 'string', default: String(DEFAULT_FIXTURE.users) },
    },
    strict: true,
  });
  const number = (name: string, text: string, min: number): number => {
    const value = Number(text);
    if (!Number.isFinite(value) || value < min) throw new Error(`--${name} must be a number of at least ${min}, got "${text}"`);
    return value;
  };
  const sizes = values.sizes.split(',').map((s) => number('sizes', s.trim(), 1));
  for (const size of sizes) {
    if (!Number.isInteger(size) || size > MAX_AGENTS) throw new Error(`--sizes: ${size} must be a whole number up to ${MAX_AGENTS}`);
  }
  return {
    sizes: [...new Set(sizes)].sort((a, b) => a - b),
    warmup: Math.floor(number('warmup', values.warmup, 0)),
    minRuns: Math.floor(number('min-runs', values['min-runs'], 1)),
    minSeconds: number('min-seconds', values['min-seconds'], 0),
    goalMs: number('goal-ms', values['goal-ms'], 0),
    fixture: {
      ...DEFAULT_FIXTURE,
      frontends: Math.floor(number('frontends', values.frontends, 1)),
      podsPerFrontend: Math.floor(number('pods', values.pods, 1)),
      users: Math.floor(number('users', values.users, 0)),
    },
  };
}

interface Stats {
  readonly runs: number;
  readonly medianMs: number;
  readonly p90Ms: number;
  readonly minMs: number;
  readonly maxMs: number;
  readonly meanMs: number;
}

/** Nearest-rank percentile of sorted samples. */
function percentile(sorted: readonly number[], p: number): number {
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1]!;
}

function median(sorted: readonly number[]): number {
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Keeps every result reachable so no run can be optimised away. */
let sink = 0;

function measure(run: () => DesiredState, settings: Settings): Stats {
  for (let i = 0; i < settings.warmup; i++) sink += run().documents.length;
  const samples: number[] = [];
  const minMs = settings.minSeconds * 1000;
  const start = performance.now();
  while (samples.length < settings.minRuns || performance.now() - start < minMs) {
    const t0 = performance.now();
    const state = run();
    samples.push(performance.now() - t0);
    sink += state.documents.length;
  }
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    runs: sorted.length,
    medianMs: median(sorted),
    p90Ms: percentile(sorted, 90),
    minMs: sorted[0]!,
    maxMs: sorted[sorted.length - 1]!,
    meanMs: samples.reduce((sum, s) => sum + s, 0) / samples.length,
  };
}

class FixtureError extends Error {}

function fail(message: string, details: readonly string[] = []): never {
  throw new FixtureError([message, ...details.map((d) => `  ${d}`)].join('\n'));
}

/** The generated RG must be sound: no error findings, no blocked VM, every slot filled. */
function checkFull(state: DesiredState, rg: ResourceGroup, fixture: FixtureSettings): void {
  const errors = state.findings.filter((f) => f.severity === 'error');
  if (state.blocked.length > 0 || errors.length > 0) {
    fail(
      `fixture ${rg.name}: ${state.blocked.length} blocked VMs and ${errors.length} error findings; the benchmark would time the wrong thing`,
      [...state.blocked.slice(0, 5).map((b) => `blocked ${b.vm}: ${b.reasons.join(', ')}`), ...errors.slice(0, 10).map((f) => `${f.code} (${f.subject.name}): ${f.message}`)],
    );
  }
  const expectedDocuments = fixture.agents + 3;
  if (state.documents.length !== expectedDocuments) fail(`fixture ${rg.name}: ${state.documents.length} documents, expected ${expectedDocuments}`);
  const gateway = state.documents.find((d) => d.roles.includes('webgateway'));
  const backends = gateway?.haproxy?.backends ?? [];
  if (backends.length !== fixture.frontends) fail(`fixture ${rg.name}: ${backends.length} haproxy backends, expected ${fixture.frontends}`);
  for (const backend of backends) {
    const ready = backend.slots.filter((s) => s.state === 'ready').length;
    if (ready !== fixture.podsPerFrontend) fail(`fixture ${rg.name}: backend ${backend.name} has ${ready} ready pod slots, expected ${fixture.podsPerFrontend}`);
    if (backend.loadBalancerPort === undefined || !backend.loadBalancersAreBackup) fail(`fixture ${rg.name}: backend ${backend.name} has no backup load balancers`);
  }
  const lbCount = gateway?.haproxy?.loadBalancers.length ?? 0;
  if (lbCount !== fixture.agents) fail(`fixture ${rg.name}: ${lbCount} load balancers, expected ${fixture.agents}`);
}

interface SlotUpdateFacts {
  /** VMs whose document hash changed: only the webgateway should. */
  readonly changedDocuments: string[];
  /** Equal haproxy structure hashes: the agent applies the change through the runtime API, no reload. */
  readonly runtimeOnly: boolean;
}

/** One pod replaced: exactly its slot changes, to the new pod; every other slot stays. */
function checkSlotUpdate(before: DesiredState, after: DesiredState, frontend: string, oldPod: string, newPod: string): SlotUpdateFacts {
  if (after.blocked.length > 0) fail(`slot update: ${after.blocked.length} blocked VMs`);
  for (const [name, table] of Object.entries(before.slots)) {
    const next = after.slots[name] ?? [];
    const changed = table.flatMap((key, i) => (key === next[i] ? [] : [i]));
    if (name !== frontend) {
      if (changed.length > 0 || next.length !== table.length) fail(`slot update: slots of untouched frontend ${name} moved (indexes ${changed.join(', ')})`);
      continue;
    }
    const i = changed[0];
    if (changed.length !== 1 || i === undefined || table[i] !== oldPod || next[i] !== newPod) {
      fail(`slot update: expected only the slot of ${oldPod} to change to ${newPod}`, [`before: ${table.join(', ')}`, `after:  ${next.join(', ')}`]);
    }
  }
  const hashes = new Map(before.documents.map((d) => [d.vm, d.hash]));
  const changedDocuments = after.documents.filter((d) => hashes.get(d.vm) !== d.hash).map((d) => d.vm);
  const structure = (state: DesiredState) => state.documents.find((d) => d.haproxy)?.haproxy?.structureHash;
  return { changedDocuments, runtimeOnly: structure(before) !== undefined && structure(before) === structure(after) };
}

interface SizeResult {
  readonly agents: number;
  readonly vms: number;
  readonly documentBytes: number;
  readonly full: Stats;
  readonly slotUpdate: Stats;
  readonly slotUpdateFacts: SlotUpdateFacts;
}

function benchSize(agents: number, settings: Settings): SizeResult {
  const fixtureSettings: FixtureSettings = { ...settings.fixture, agents };
  const fixture = buildFixture(fixtureSettings);
  const rg = resourceGroupSchema.parse(fixture.input);
  const rgAfter = resourceGroupSchema.parse(fixture.afterPodReplaced);

  const before = computeDesiredState(rg);
  checkFull(before, rg, fixtureSettings);
  const options: DesiredStateOptions = { previousSlots: before.slots };
  const after = computeDesiredState(rgAfter, options);
  const slotUpdateFacts = checkSlotUpdate(before, after, fixture.replacedFrontend, fixture.replacedPod, fixture.newPod);
  const documentBytes = before.documents.reduce((sum, d) => sum + JSON.stringify(d).length, 0);

  const full = measure(() => computeDesiredState(rg), settings);
  const slotUpdate = measure(() => computeDesiredState(rgAfter, options), settings);
  return { agents, vms: rg.vms.length, documentBytes, full, slotUpdate, slotUpdateFacts };
}

/** Least-squares line `ms = fixed + perAgent * agents` through the medians. */
function fitLine(points: ReadonlyArray<{ x: number; y: number }>): { fixedMs: number; perAgentMs: number; r2: number } | undefined {
  if (points.length < 2) return undefined;
  const n = points.length;
  const mx = points.reduce((s, p) => s + p.x, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  const sxx = points.reduce((s, p) => s + (p.x - mx) ** 2, 0);
  const sxy = points.reduce((s, p) => s + (p.x - mx) * (p.y - my), 0);
  const syy = points.reduce((s, p) => s + (p.y - my) ** 2, 0);
  const perAgentMs = sxy / sxx;
  const fixedMs = my - perAgentMs * mx;
  return { fixedMs, perAgentMs, r2: syy === 0 ? 1 : (sxy * sxy) / (sxx * syy) };
}

function marginals(results: readonly SizeResult[], pick: (r: SizeResult) => Stats) {
  return results.slice(1).map((r, i) => {
    const prev = results[i]!;
    return { from: prev.agents, to: r.agents, msPerAgent: (pick(r).medianMs - pick(prev).medianMs) / (r.agents - prev.agents) };
  });
}

const ms = (value: number) => value.toFixed(3);
const round = (value: number, digits = 4) => Number(value.toFixed(digits));

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  return rows.map((row) => row.map((cell, c) => (c < 1 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ')).join('\n');
}

function main(): void {
  const settings = readSettings();
  const cpus = os.cpus();
  const cpuModel = cpus[0]?.model.trim() ?? 'unknown';
  const fixture = settings.fixture;
  const defaultShape = fixture.frontends === DEFAULT_FIXTURE.frontends && fixture.podsPerFrontend === DEFAULT_FIXTURE.podsPerFrontend && fixture.users === DEFAULT_FIXTURE.users;
  const loadBefore = os.loadavg()[0]!;

  console.log('Ringmaster desired-state benchmark: computeDesiredState(rg), pure compute');
  console.log(`  node ${process.version} (${process.platform}/${process.arch}), V8 ${process.versions.v8}`);
  console.log(`  CPU: ${cpuModel} (${cpus.length} logical)`);
  console.log(`  sizes (k3s-agents): ${settings.sizes.join(', ')}; plus 1 k3s-server, 1 webgateway, 1 k3s-nfs`);
  console.log(`  frontends: ${fixture.frontends} (podPort + lbServicePort), ${fixture.podsPerFrontend} ready pods each; users: ${fixture.users} (every ${fixture.sudoEvery}th with sudo-srv)`);
  console.log(`  runs: ${settings.warmup} warm-up, then at least ${settings.minRuns} runs and ${settings.minSeconds} s per case`);
  console.log(`  load average (1 min) at start: ${loadBefore.toFixed(2)}`);
  console.log(`  goal: full run of the ${MAX_AGENTS}-agent RG <= ${settings.goalMs} ms (median), growing about linearly`);
  console.log('');

  const results: SizeResult[] = [];
  for (const agents of settings.sizes) {
    process.stdout.write(`  timing ${agents} agents ...`);
    const result = benchSize(agents, settings);
    process.stdout.write(` full ${ms(result.full.medianMs)} ms, slot update ${ms(result.slotUpdate.medianMs)} ms\n`);
    results.push(result);
  }
  console.log('');

  const rows: string[][] = [['case', 'agents', 'VMs', 'doc KiB', 'runs', 'median ms', 'p90 ms', 'min ms', 'max ms', 'mean ms', 'median ms/agent']];
  for (const [label, pick] of [
    ['full', (r: SizeResult) => r.full],
    ['slot update', (r: SizeResult) => r.slotUpdate],
  ] as const) {
    for (const r of results) {
      const s = pick(r);
      rows.push([label, String(r.agents), String(r.vms), (r.documentBytes / 1024).toFixed(0), String(s.runs), ms(s.medianMs), ms(s.p90Ms), ms(s.minMs), ms(s.maxMs), ms(s.meanMs), (s.medianMs / r.agents).toFixed(4)]);
    }
  }
  console.log(table(rows));
  console.log('');

  const growth = {
    full: { marginal: marginals(results, (r) => r.full), fit: fitLine(results.map((r) => ({ x: r.agents, y: r.full.medianMs }))) },
    slotUpdate: { marginal: marginals(results, (r) => r.slotUpdate), fit: fitLine(results.map((r) => ({ x: r.agents, y: r.slotUpdate.medianMs }))) },
  };
  console.log('Growth (medians):');
  for (const [label, g] of [
    ['full', growth.full],
    ['slot update', growth.slotUpdate],
  ] as const) {
    const steps = g.marginal.map((m) => `${m.from}->${m.to}: ${m.msPerAgent.toFixed(4)} ms/agent`).join(', ');
    const fit = g.fit ? `; fit ${g.fit.fixedMs.toFixed(3)} ms + ${g.fit.perAgentMs.toFixed(4)} ms/agent (R^2 ${g.fit.r2.toFixed(4)})` : '';
    console.log(`  ${label.padEnd(11)} ${steps || 'one size only'}${fit}`);
  }
  for (const r of results) {
    const f = r.slotUpdateFacts;
    console.log(`  slot update, ${r.agents} agents: changed documents [${f.changedDocuments.join(', ')}], haproxy ${f.runtimeOnly ? 'runtime API only (no reload)' : 'structure changed (reload)'}`);
  }
  console.log('');

  const largest = results.find((r) => r.agents === MAX_AGENTS);
  const steps = growth.full.marginal;
  const linearRatio = steps.length >= 2 ? steps[steps.length - 1]!.msPerAgent / steps[0]!.msPerAgent : undefined;
  const linear = linearRatio === undefined ? undefined : linearRatio <= 2;
  const goalMet = largest && defaultShape ? largest.full.medianMs <= settings.goalMs : undefined;
  if (!defaultShape) {
    console.log('Goal: not evaluated (the fixture shape differs from the default: 100 frontends, 10 pods, 50 users)');
  } else if (largest) {
    console.log(
      `Goal (${MAX_AGENTS} agents <= ${settings.goalMs} ms): ${goalMet ? 'MET' : 'NOT MET'}: median ${ms(largest.full.medianMs)} ms, p90 ${ms(largest.full.p90Ms)} ms` +
        (goalMet ? '' : ` (${(largest.full.medianMs / settings.goalMs).toFixed(1)}x the goal)`),
    );
  } else {
    console.log(`Goal: not evaluated (the ${MAX_AGENTS}-agent size was not run)`);
  }
  if (linearRatio !== undefined) {
    console.log(
      `Growth: ${linear ? 'about linear' : 'faster than linear'}: the last step costs ${linearRatio.toFixed(2)}x per agent what the first did` +
        ` (${steps[0]!.msPerAgent.toFixed(4)} -> ${steps[steps.length - 1]!.msPerAgent.toFixed(4)} ms/agent)`,
    );
  }

  const loadAfter = os.loadavg()[0]!;
  if (Math.max(loadBefore, loadAfter) > cpus.length) {
    console.log(`Note: the machine was busy (load average ${loadBefore.toFixed(2)} -> ${loadAfter.toFixed(2)} on ${cpus.length} CPUs); figures may be inflated.`);
  }

  const stats = (s: Stats) => ({ runs: s.runs, medianMs: round(s.medianMs), p90Ms: round(s.p90Ms), minMs: round(s.minMs), maxMs: round(s.maxMs), meanMs: round(s.meanMs) });
  const json = {
    node: process.version,
    v8: process.versions.v8,
    platform: `${process.platform}/${process.arch}`,
    cpu: cpuModel,
    cpuCount: cpus.length,
    settings: { sizes: settings.sizes, warmup: settings.warmup, minRuns: settings.minRuns, minSeconds: settings.minSeconds, goalMs: settings.goalMs, ...fixture },
    loadAverage: { before: round(loadBefore, 2), after: round(loadAfter, 2) },
    results: results.map((r) => ({
      agents: r.agents,
      vms: r.vms,
      documentBytes: r.documentBytes,
      full: stats(r.full),
      slotUpdate: stats(r.slotUpdate),
      slotUpdateChangedDocuments: r.slotUpdateFacts.changedDocuments,
      slotUpdateRuntimeOnly: r.slotUpdateFacts.runtimeOnly,
    })),
    growth: {
      full: { marginal: growth.full.marginal.map((m) => ({ ...m, msPerAgent: round(m.msPerAgent, 5) })), fit: growth.full.fit && { fixedMs: round(growth.full.fit.fixedMs), perAgentMs: round(growth.full.fit.perAgentMs, 5), r2: round(growth.full.fit.r2) } },
      slotUpdate: {
        marginal: growth.slotUpdate.marginal.map((m) => ({ ...m, msPerAgent: round(m.msPerAgent, 5) })),
        fit: growth.slotUpdate.fit && { fixedMs: round(growth.slotUpdate.fit.fixedMs), perAgentMs: round(growth.slotUpdate.fit.perAgentMs, 5), r2: round(growth.slotUpdate.fit.r2) },
      },
    },
    goal: { agents: MAX_AGENTS, ms: settings.goalMs, met: goalMet ?? null, linear: linear ?? null, lastToFirstStepRatio: linearRatio === undefined ? null : round(linearRatio, 3) },
  };
  if (sink < 0) console.log('unreachable');
  console.log(`BENCH_JSON ${JSON.stringify(json)}`);
}

try {
  main();
} catch (error) {
  if (error instanceof FixtureError) {
    console.error(`\nbench: ${error.message}`);
    process.exit(1);
  }
  throw error;
}
