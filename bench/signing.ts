/**
 * `npm run bench` (part): what signing and verifying documents cost, at the largest resource
 * group of the desired-state benchmark (MAX_AGENTS k3s-agents, 100 frontends × 10 pods).
 *   - reconcile side: signing every document of the RG, and the share a refresh run signs again
 *     (shared/state/resigning.ts), next to computing them;
 *   - agent side: checking the signature of one document (the webgateway's, the largest) and its
 *     delegation by the root (verified once per delegation, then remembered), next to the checks
 *     the agent made before signatures existed (JSON, schema, every hash).
 * Goal: ≤ 5 % added to each. Prints figures and the settings they ran with; never fails on a miss.
 */
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { DOCUMENT_VALIDITY_MS, parseStoredDocument, signDocument, verifyParsedDocument } from '../shared/contract/document-envelope.ts';
import { checkDelegation, delegationFingerprint } from '../shared/contract/delegation.ts';
import { trustedRoot } from '../shared/contract/document-signing.ts';
import { startingTrust } from '../shared/contract/root-announcement.ts';
import { documentSignerOf, renewSigningCredentials } from '../shared/contract/signing-credentials.ts';
import { addLocalRoot } from '../local/root-keys.ts';
import { applyDocument } from '../agent/apply.ts';
import { DEFAULT_LAYOUT } from '../shared/layout.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { computeDesiredState } from '../shared/desired-state.ts';
import { copiesToResign } from '../shared/state/resigning.ts';
import { resourceGroupSchema } from '../shared/schema/resource-group.ts';
import { buildFixture, DEFAULT_FIXTURE, MAX_AGENTS } from './fixtures.ts';

const RUNS = 30;
const median = (samples: number[]) => samples.sort((a, b) => a - b)[Math.floor(samples.length / 2)]!;
function time(run: () => void): number {
  for (let i = 0; i < 5; i++) run();
  const samples: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const start = performance.now();
    run();
    samples.push(performance.now() - start);
  }
  return median(samples);
}

const rg = resourceGroupSchema.parse(buildFixture({ ...DEFAULT_FIXTURE, agents: MAX_AGENTS }).input);
const desired = computeDesiredState(rg);
// The local scheme (the same as in AWS with a file for the KMS key): a P-256 root, an online Ed25519 key it delegated.
const dataDir = mkdtempSync(join(tmpdir(), 'ringmaster-bench-signing-'));
const root = addLocalRoot(dataDir);
const signer = documentSignerOf(await renewSigningCredentials(undefined, [root], new Date()));
rmSync(dataDir, { recursive: true, force: true });
const trusted = startingTrust([trustedRoot(root.publicKey)], undefined);
const expiresAt = new Date(Date.now() + DOCUMENT_VALIDITY_MS).toISOString();
const unsigned = desired.documents.map((document) => ({ ...document, generation: 1, expiresAt }));
const largest = unsigned.reduce((a, b) => (JSON.stringify(b).length > JSON.stringify(a).length ? b : a));
const largestText = JSON.stringify(signDocument(largest, signer));
const policy = { owner: { resourceGroup: largest.resourceGroup, vm: largest.vm }, trust: trusted, now: new Date() };

const computeMs = time(() => computeDesiredState(rg));
const signAllMs = time(() => unsigned.forEach((document) => signDocument(document, signer)));
// What a refresh run of this group signs at most once all its copies are due together (they were signed together): its share.
const dueAll = unsigned.map((document) => ({ vm: document.vm, expiresAt: new Date(Date.now() + DOCUMENT_VALIDITY_MS - 25 * 3600_000).toISOString(), epoch: 'e' }));
const share = copiesToResign(dueAll, unsigned.length, Date.now(), 'e');
const shareDocuments = unsigned.filter((document) => share.has(document.vm));
const signShareMs = time(() => shareDocuments.forEach((document) => signDocument(document, signer)));
const checksMs = time(() => parseStoredDocument(largestText));
const parsed = parseStoredDocument(largestText);
if ('reason' in parsed) throw new Error(parsed.reason);
// The trust checks alone, on the parsed document (a difference of two timings of a 1.7 MB parse would be mostly noise).
const signatureMs = time(() => verifyParsedDocument(parsed.document, policy));
const verifyMs = checksMs + signatureMs;
// As an agent fetches it: the day's delegation verified before (every document of a day carries the same).
const verifiedDelegation = delegationFingerprint(signer.delegation);
const knownSignatureMs = time(() => verifyParsedDocument(parsed.document, { ...policy, verifiedDelegation }));
// The agent's first apply of that document into an empty folder, its daemons' commands stood in for (no haproxy
// reload counted): files written and synced. A floor for an apply; the trust checks are a share of it.
const APPLY_RUNS = 9;
const applySamples: number[] = [];
for (let i = 0; i < APPLY_RUNS + 2; i++) {
  const vmRoot = mkdtempSync(join(tmpdir(), 'ringmaster-bench-apply-'));
  const start = performance.now();
  const applied = await applyDocument(parsed.document, undefined, { root: vmRoot, run: async () => ({ code: 0, output: '' }), layout: DEFAULT_LAYOUT });
  if (i >= 2) applySamples.push(performance.now() - start);
  rmSync(vmRoot, { recursive: true, force: true });
  if (applied.outcome !== 'applied') throw new Error(`the bench apply failed: ${applied.error ?? applied.outcome}`);
}
const applyMs = median(applySamples);
// The delegation's part of that: one ECDSA P-256 verification by the root, per fetched document.
const delegationMs = time(() => checkDelegation(signer.delegation, trusted.roots));
const pct = (part: number, whole: number) => `${((100 * part) / whole).toFixed(1)} %`;

console.log('Ringmaster document signing benchmark (documents: Ed25519; delegation by the root: ECDSA P-256; node:crypto)');
console.log(`  node ${process.version}, ${os.cpus()[0]?.model ?? 'unknown CPU'} (${os.cpus().length} logical); median of ${RUNS} runs after 5 warm-up`);
console.log(`  RG: ${MAX_AGENTS} k3s-agents + server, webgateway, nfs; ${DEFAULT_FIXTURE.frontends} frontends × ${DEFAULT_FIXTURE.podsPerFrontend} pods; ${unsigned.length} documents`);
console.log(`  reconcile: compute ${computeMs.toFixed(2)} ms; sign all ${unsigned.length} documents ${signAllMs.toFixed(2)} ms (${(signAllMs / unsigned.length * 1000).toFixed(1)} µs each) = +${pct(signAllMs, computeMs)} if all at once; a refresh run signs its share, ${share.size} documents, ${signShareMs.toFixed(2)} ms = +${pct(signShareMs, computeMs)} (goal ≤ 5 %)`);
console.log(`  agent: largest document (${largest.vm}, ${(largestText.length / 1024).toFixed(0)} KiB): form and hash checks ${checksMs.toFixed(3)} ms; with the signature ${verifyMs.toFixed(3)} ms = +${(signatureMs * 1000).toFixed(0)} µs (of which the delegation ${(delegationMs * 1000).toFixed(0)} µs), +${pct(signatureMs, checksMs)} of the checks alone; with the delegation verified before (the agent's usual case) +${(knownSignatureMs * 1000).toFixed(0)} µs, +${pct(knownSignatureMs, checksMs)}`);
console.log(`  agent: its apply (checks ${checksMs.toFixed(2)} ms + files written and synced ${applyMs.toFixed(2)} ms, median of ${APPLY_RUNS}, daemons stood in for) = ${(checksMs + applyMs).toFixed(2)} ms; the trust checks add +${pct(knownSignatureMs, checksMs + applyMs)} with the day's delegation known, +${pct(signatureMs, checksMs + applyMs)} with a new one (goal ≤ 5 %)`);
console.log(`BENCH_JSON ${JSON.stringify({ documents: unsigned.length, computeMs, signAllMs, signPerDocumentUs: (signAllMs / unsigned.length) * 1000, resignShare: share.size, signShareMs, largestBytes: largestText.length, checksMs, verifyMs, signatureUs: signatureMs * 1000, delegationUs: delegationMs * 1000, knownDelegationSignatureUs: knownSignatureMs * 1000, applyMs })}`);
