/**
 * Root keys and their rotation: the pure rules (announcements, renewal, which copies are signed
 * again), then end to end in the local control plane with the real agent: old root → a new root
 * announced → documents under the new root verify → the old root retired → a document under it
 * is refused, also after the agent restarts with a configuration that still names it.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { Agent } from '../agent/agent.ts';
import type { LocalControlPlane } from '../local/control-plane.ts';
import { startDemoControlPlane } from './helpers/local-demo.ts';
import { addLocalRoot, localRootSigner, localRoots, localTrustedRoots, retireLocalRoot } from '../local/root-keys.ts';
import { agentCredentials } from '../shared/agent-identity.ts';
import { signDocument } from '../shared/contract/document-envelope.ts';
import { trustedRoot } from '../shared/contract/document-signing.ts';
import { announce, followAnnouncements, type RootTrust, startingTrust } from '../shared/contract/root-announcement.ts';
import { renewSigningCredentials } from '../shared/contract/signing-credentials.ts';
import { storeKeys } from '../shared/contract/store-layout.ts';
import { computeDesiredState } from '../shared/desired-state.ts';
import { copiesToResign } from '../shared/state/resigning.ts';
import { createRenewerHandler } from '../functions/renewer/handler.ts';
import { createLogger } from '../functions/shared/logger.ts';
import './helpers/quiet-logs.ts';
import { waitFor } from './helpers/control-plane-process.ts';
import { documentOf, example, ROOT } from './helpers/fixtures.ts';
import { spawnSync } from 'node:child_process';
import { newTestRoot, signerUnder } from './helpers/signing.ts';

const DAY = 24 * 3600_000;
const rootSigner = (root: { pem: string }) => localRootSigner(root.pem);
const trustOf = (...roots: Array<{ publicKey: string }>): RootTrust => startingTrust(roots.map((root) => trustedRoot(root.publicKey)), undefined);
const ids = (trust: RootTrust) => trust.roots.map((root) => root.keyId).sort();

describe('root announcements', () => {
  const [r1, r2, r3] = [newTestRoot(), newTestRoot(), newTestRoot()];
  const now = new Date();

  test('a new root announced by a trusted root is trusted; a retirement signed by a trusted root drops the old one for good', async () => {
    const trustR2 = await announce(rootSigner(r1), { action: 'trust', rootKey: r2.publicKey }, now);
    const retireR1 = await announce(rootSigner(r2), { action: 'retire', rootKeyId: r1.keyId }, now);
    const followed = followAnnouncements(trustOf(r1), [trustR2, retireR1]);
    expect(followed).toMatchObject({ changed: true, trust: { retired: [r1.keyId] } });
    const trust = (followed as { trust: RootTrust }).trust;
    expect(ids(trust)).toEqual([r2.keyId]);
    // Replayed later, the chain changes nothing; r1 never comes back, even named by a trusted root.
    expect(followAnnouncements(trust, [trustR2, retireR1])).toMatchObject({ changed: false });
    const readdR1 = await announce(rootSigner(r2), { action: 'trust', rootKey: r1.publicKey }, now);
    expect(ids((followAnnouncements(trust, [readdR1]) as { trust: RootTrust }).trust)).toEqual([r2.keyId]);
    // An agent configured after the rotation (trusting r2 only) passes over the chain's beginning.
    expect(followAnnouncements(trustOf(r2), [trustR2, retireR1])).toMatchObject({ changed: false });
  });

  test('an announcement not signed by a trusted root, forged, or leaving no root is refused with the reason', async () => {
    const byStranger = await announce(rootSigner(r3), { action: 'trust', rootKey: r2.publicKey }, now);
    expect(followAnnouncements(trustOf(r1), [byStranger])).toEqual({ reason: `the root announcement (trust root ${r2.keyId}) is signed by root ${r3.keyId}, which this agent does not trust` });
    const genuine = await announce(rootSigner(r1), { action: 'trust', rootKey: r2.publicKey }, now);
    const forged = { ...genuine, rootKey: r3.publicKey };
    expect(followAnnouncements(trustOf(r1), [forged])).toEqual({ reason: `the root announcement (trust root ${r3.keyId}) does not verify against root ${r1.keyId}` });
    const suicide = await announce(rootSigner(r1), { action: 'retire', rootKeyId: r1.keyId }, now);
    expect(followAnnouncements(trustOf(r1), [suicide])).toEqual({ reason: `the root announcement (retire root ${r1.keyId}) would leave this agent trusting no root` });
    // The retirement of a root this agent does not trust is passed over, and bars nothing later.
    const unknown = { ...suicide, rootKeyId: r3.keyId, signature: 'AAAA' };
    expect(followAnnouncements(trustOf(r1), [unknown])).toEqual({ trust: { roots: trustOf(r1).roots, retired: [] }, changed: false });
  });

  test('renewal announces a configured root with a trusted one, retires an unconfigured one with the active root, and refuses what agents could not follow', async () => {
    const first = await renewSigningCredentials(undefined, [rootSigner(r1)], now);
    expect(first).toMatchObject({ roots: [r1.keyId], retired: [], announcements: [], delegation: { rootKeyId: r1.keyId } });
    const adding = await renewSigningCredentials(first, [rootSigner(r1), rootSigner(r2)], now);
    expect(adding).toMatchObject({ roots: [r1.keyId, r2.keyId], announcements: [{ action: 'trust', rootKey: r2.publicKey, signedBy: r1.keyId }], delegation: { rootKeyId: r2.keyId } });
    expect(adding.delegation.keyId).not.toBe(first.delegation.keyId);
    const retiring = await renewSigningCredentials(adding, [rootSigner(r2)], now);
    expect(retiring).toMatchObject({ roots: [r2.keyId], retired: [r1.keyId], announcements: [{ action: 'trust' }, { action: 'retire', rootKeyId: r1.keyId, signedBy: r2.keyId }] });
    await expect(renewSigningCredentials(retiring, [rootSigner(r3)], now)).rejects.toThrow('no configured root is one agents trust');
    await expect(renewSigningCredentials(retiring, [rootSigner(r1), rootSigner(r2)], now)).rejects.toThrow(`root ${r1.keyId} was retired`);
  });
});

describe('the renewer', () => {
  test('starts from the placeholder secret, keeps the chain on every renewal, and never overwrites damaged credentials', async () => {
    const [r1, r2] = [newTestRoot(), newTestRoot()];
    let secret = 'Placeholder0123456789abcdefABCDEF';
    let roots = [rootSigner(r1)];
    const renew = createRenewerHandler({ read: async () => secret, write: async (text) => void (secret = text), roots: async () => roots, logger: createLogger('test') });
    expect(await renew()).toMatchObject({ rootKeyId: r1.keyId, announcements: 0 });
    roots = [rootSigner(r1), rootSigner(r2)];
    expect(await renew()).toMatchObject({ rootKeyId: r2.keyId, announcements: 1 });
    expect(await renew()).toMatchObject({ rootKeyId: r2.keyId, announcements: 1 });
    secret = secret.replace('"roots"', '"rootz"');
    await expect(renew()).rejects.toThrow('not overwritten');
    expect(secret).toContain('"rootz"');
  });
});

describe('which copies are signed again', () => {
  const now = Date.parse('2026-12-04T12:00:00Z');
  const signedAgo = (ms: number) => new Date(now - ms + 7 * DAY).toISOString();
  const copies = (count: number, ago: number, epoch = 'e1') => Array.from({ length: count }, (_, i) => ({ vm: `vm${String(i).padStart(3, '0')}`, expiresAt: signedAgo(ago + i), epoch }));

  test('none within a day; a large group a sixteenth per run, the oldest first; a copy near expiry whatever the share; a new epoch makes all due', () => {
    expect(copiesToResign(copies(256, DAY - 60_000), 256, now, 'e1').size).toBe(0);
    const due = copiesToResign(copies(256, DAY), 256, now, 'e1');
    expect([...due]).toEqual(copies(256, DAY).slice(-16).map((c) => c.vm).reverse());
    expect(copiesToResign(copies(6, DAY), 6, now, 'e1').size).toBe(6);
    expect(copiesToResign(copies(256, 5 * DAY + 1000), 256, now, 'e1').size).toBe(256);
    expect(copiesToResign(copies(256, 60_000), 256, now, 'e2').size).toBe(16);
  });

  test('a large group signed at once, refreshed hourly for three weeks: no copy expires, no run signs more than its share after the first day', () => {
    let stored = copies(256, 0).map((copy) => ({ ...copy, expiresAt: new Date(now + 7 * DAY).toISOString() }));
    const perRun: number[] = [];
    for (let hour = 1; hour <= 21 * 24; hour++) {
      const at = now + hour * 3600_000;
      const resign = copiesToResign(stored, 256, at, 'e1');
      perRun.push(resign.size);
      stored = stored.map((copy) => (resign.has(copy.vm) ? { ...copy, expiresAt: new Date(at + 7 * DAY).toISOString() } : copy));
      expect(stored.every((copy) => Date.parse(copy.expiresAt) - at > 2 * DAY)).toBe(true);
    }
    expect(Math.max(...perRun)).toBe(16);
    // Each copy is signed about daily: 256 a day, spread over the hours.
    expect(perRun.slice(-24).reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(200);
  });
});

describe('rotation end to end (local control plane, real agent)', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'ringmaster-rotation-'));
  const cpDir = join(dataDir, 'cp');
  let cp: LocalControlPlane;
  let configured: string[];

  const stored = async () => (await cp.store.get(storeKeys.desired('demo', 'db01')))!.body;
  const agentWith = (roots: readonly string[]) => {
    const { masterKey } = JSON.parse(readFileSync(join(cpDir, 'credentials.json'), 'utf8')) as { masterKey: string };
    return new Agent({
      client: new S3Client({ region: cp.info.region, endpoint: cp.info.s3Endpoint, forcePathStyle: true, credentials: agentCredentials(masterKey, 'demo', 'db01') }),
      identity: { bucket: cp.info.bucket, resourceGroup: 'demo', vm: 'db01' },
      trustedKeys: roots.map((text) => trustedRoot(text)),
      root: join(dataDir, 'vm-root'),
      stateDir: join(dataDir, 'agent-state'),
    });
  };
  /** The next copy of db01's document, once the control plane signed it again under `rootKeyId`. */
  const resignedUnder = async (rootKeyId: string) => {
    // What the hourly timer does; a new epoch queues a refresh of every group at once.
    await cp.renewSigning();
    return waitFor(`db01 signed under ${rootKeyId}`, async () => {
      const body = await stored();
      return (JSON.parse(body) as { signature: { delegation: { rootKeyId: string } } }).signature.delegation.rootKeyId === rootKeyId ? body : undefined;
    });
  };

  beforeAll(async () => {
    cp = await startDemoControlPlane({ dataDir: cpDir, apiPort: 0, s3Port: 0 });
    configured = [...cp.info.trustedRoots];
  }, 30_000);

  afterAll(async () => {
    await cp.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('old root → new root announced → documents under it verify → old root retired → documents under it refused, also after a restart', async () => {
    const [r1] = localRoots(cpDir);
    expect(configured).toEqual([r1!.publicKey]);
    const agent = agentWith(configured);
    expect(await agent.poll()).toMatchObject({ kind: 'unchanged', generation: 1 });
    const underR1 = await stored();

    // A new root: announced by r1 in every document, and delegating the next online key.
    const r2 = addLocalRoot(cpDir);
    expect(localTrustedRoots(cpDir)).toEqual([r1!.publicKey]);
    const underR2 = await resignedUnder(r2.keyId);
    expect(localTrustedRoots(cpDir)).toEqual([r1!.publicKey, r2.publicKey]);
    expect(await agent.poll()).toMatchObject({ kind: 'unchanged', generation: 1 });
    expect(agent.trust).toEqual({ roots: [r1!.keyId, r2.keyId], retired: [] });

    // The old root retired: its key is destroyed, r2 announces the retirement.
    expect(() => retireLocalRoot(cpDir, r2.keyId)).toThrow('is the active root');
    // A thief's copy of r1, taken before it is destroyed (used below).
    copyFileSync(join(cpDir, 'roots', 'root-1.pem'), join(dataDir, 'r1-copy.pem'));
    retireLocalRoot(cpDir, r1!.keyId);
    await cp.renewSigning();
    const retiring = await waitFor('the retirement in db01', async () => {
      const body = await stored();
      return body !== underR2 && body.includes('"retire"') ? body : undefined;
    });
    expect(JSON.parse(retiring).signature.announcements).toEqual([expect.objectContaining({ action: 'trust', signedBy: r1!.keyId }), expect.objectContaining({ action: 'retire', rootKeyId: r1!.keyId, signedBy: r2.keyId })]);
    expect(await agent.poll()).toMatchObject({ kind: 'unchanged', generation: 1 });
    expect(agent.trust).toEqual({ roots: [r2.keyId], retired: [r1!.keyId] });
    expect(localTrustedRoots(cpDir)).toEqual([r2.publicKey]);

    // A document under the retired root (a copy replayed by a bucket writer) is refused, and the agent keeps what runs.
    await cp.store.put(storeKeys.desired('demo', 'db01'), underR1);
    const refusal = `is signed by root ${r1!.keyId}, which this agent does not trust`;
    expect(await agent.poll()).toMatchObject({ kind: 'failed', error: expect.stringContaining(refusal) });
    const report = JSON.parse((await cp.store.get(storeKeys.report('demo', 'db01')))!.body);
    expect(report).toMatchObject({ outcome: 'failed', appliedGeneration: 1, error: expect.stringContaining(refusal) });
    // Restarted with its first configuration (still naming r1): the retirement it kept holds.
    const restarted = agentWith(configured);
    expect(await restarted.poll()).toMatchObject({ kind: 'failed', error: expect.stringContaining(refusal) });
    expect(restarted.trust).toEqual({ roots: [r2.keyId], retired: [r1!.keyId] });
    // So is one a thief made with a key delegated by r1 (before it was destroyed) and the whole chain replayed.
    const content = documentOf(computeDesiredState(example('reference-architecture')).documents, 'db01');
    const r1Thief = signerUnder({ keyId: r1!.keyId, publicKey: r1!.publicKey, pem: readFileSync(join(dataDir, 'r1-copy.pem'), 'utf8') }, { announcements: JSON.parse(retiring).signature.announcements });
    await cp.store.put(storeKeys.desired('demo', 'db01'), JSON.stringify(signDocument({ ...content, generation: 2, expiresAt: new Date(Date.now() + DAY).toISOString() }, r1Thief)));
    expect(await restarted.poll()).toMatchObject({ kind: 'failed', error: expect.stringContaining(refusal) });
    // The control plane's own copy, under r2, is taken.
    await cp.store.put(storeKeys.desired('demo', 'db01'), retiring);
    expect(await restarted.poll()).toMatchObject({ kind: 'unchanged', generation: 1 });
    // What an operator sees: `ringmaster roots list`, and a retirement of the active root refused with the reason.
    const cli = (...args: string[]) => spawnSync(process.execPath, [`${ROOT}cli/ringmaster.ts`, 'roots', ...args, '--data-dir', cpDir], { encoding: 'utf8' });
    const listed = cli('list');
    expect(listed.status).toBe(0);
    expect(listed.stdout.split('\n').filter(Boolean)).toEqual([`${r2.keyId}  active, announced  ${r2.publicKey}`, `${r1!.keyId}  retired`]);
    const refused = cli('retire', r2.keyId);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toContain(`root ${r2.keyId} is the active root`);
    // A damaged trust file is not taken for "no announcement yet": the agent will not guess.
    writeFileSync(join(dataDir, 'agent-state', 'trust.json'), '{"roots": [');
    await expect(agentWith(configured).poll()).rejects.toThrow('is not a valid trust file');
  }, 60_000);
});
