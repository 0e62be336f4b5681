/** Applying documents to the file system: owners and modes, a root prefix, rollback on a failed reload. */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyDocument, type CommandRunner } from '../agent/apply.ts';
import { runCommand } from '../agent/agent.ts';
import { computeDesiredState } from '../shared/desired-state.ts';
import { layoutUnder, DEFAULT_LAYOUT } from '../shared/layout.ts';
import type { VersionedDocument } from '../shared/contract/document-envelope.ts';
import { documentOf, example } from './helpers/fixtures.ts';

const roots: string[] = [];
afterAll(() => roots.forEach((root) => rmSync(root, { recursive: true, force: true })));
const tempRoot = () => {
  const root = mkdtempSync(join(tmpdir(), 'ringmaster-apply-'));
  roots.push(root);
  return root;
};
const stored = (vm: string, layout = DEFAULT_LAYOUT): VersionedDocument => ({ ...documentOf(computeDesiredState(example('reference-architecture'), { layout }).documents, vm), generation: 1 });

test('files get their modes and owners; the NFS export folder belongs to nobody', async () => {
  const root = tempRoot();
  const layout = layoutUnder(root, () => ['true']);
  const document = stored('nfs01', layout);
  expect(await applyDocument(document, undefined, { root: '/', run: runCommand, layout })).toMatchObject({ outcome: 'applied', reloaded: ['nfs'] });
  const exportDir = statSync(`${root}/srv/nfs/kubernetes`);
  expect(exportDir.mode & 0o777).toBe(0o755);
  if (process.getuid?.() === 0) expect(exportDir.uid).toBe(Number(readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('nobody:'))!.split(':')[2]));
  expect(statSync(`${root}/etc/exports.d/kubernetes.exports`).mode & 0o777).toBe(0o644);
});

test('under a root prefix, files land below it and the commands name those copies', async () => {
  const root = tempRoot();
  const ran: string[][] = [];
  const run: CommandRunner = async (argv) => {
    ran.push([...argv]);
    return { code: 0, output: '' };
  };
  const document = stored('web01');
  expect((await applyDocument(document, undefined, { root, run, layout: DEFAULT_LAYOUT })).outcome).toBe('applied');
  expect(readFileSync(`${root}/etc/haproxy/haproxy.cfg`, 'utf8')).toContain('frontend');
  expect(ran).toContainEqual(['haproxy', '-c', '-f', `${root}/etc/haproxy/haproxy.cfg`]);
  expect(statSync(`${root}/var/lib/ringmaster/k3s-token`).mode & 0o777).toBe(0o600);
});

test('a failed reload puts the previous files back', async () => {
  const root = tempRoot();
  const ok: CommandRunner = async () => ({ code: 0, output: '' });
  const first = stored('kube02');
  await applyDocument(first, undefined, { root, run: ok, layout: DEFAULT_LAYOUT });
  const before = readFileSync(`${root}/etc/rancher/k3s/config.yaml`, 'utf8');
  const rg = example('reference-architecture');
  const changed = { ...documentOf(computeDesiredState({ ...rg, vms: rg.vms.map((vm) => (vm.name === 'kube02' ? { ...vm, srvAddresses: ['172.22.48.99'] } : vm)) }).documents, 'kube02'), generation: 2 };
  const failing: CommandRunner = async (argv) => (argv.includes('restart') ? { code: 1, output: 'Job for k3s.service failed' } : { code: 0, output: '' });
  const result = await applyDocument(changed, first, { root, run: failing, layout: DEFAULT_LAYOUT });
  expect(result).toMatchObject({ outcome: 'failed', error: expect.stringContaining('k3s: reload failed') });
  expect(readFileSync(`${root}/etc/rancher/k3s/config.yaml`, 'utf8')).toBe(before);
});

test('a folder reached through a symbolic link is never written through: the file would land outside the role\'s folders', async () => {
  const root = tempRoot();
  const outside = tempRoot();
  const ok: CommandRunner = async () => ({ code: 0, output: '' });
  // Someone made /etc a link to another folder before the first apply: a fresh VM otherwise (nothing else prepared).
  symlinkSync(outside, `${root}/etc`);
  const result = await applyDocument(stored('web01'), undefined, { root, run: ok, layout: DEFAULT_LAYOUT });
  expect(result).toMatchObject({ outcome: 'failed', error: expect.stringContaining('through a symbolic link') });
  expect(readdirSync(outside)).toEqual([]);
});

test('a first document that cannot be written leaves nothing behind: every file and folder it made goes, a folder it changed gets its mode back', async () => {
  const root = tempRoot();
  const ran: string[][] = [];
  const run: CommandRunner = async (argv) => {
    ran.push([...argv]);
    return { code: 0, output: '' };
  };
  // Something else sits where the join token goes (a folder): the write fails with EISDIR.
  mkdirSync(`${root}/var/lib/ringmaster/k3s-token`, { recursive: true, mode: 0o755 });
  const result = await applyDocument(stored('kube02'), undefined, { root, run, layout: DEFAULT_LAYOUT });
  expect(result).toMatchObject({ outcome: 'failed', failedStep: 'write', error: expect.stringContaining('failed at write: writing /var/lib/ringmaster/k3s-token: EISDIR') });
  // config.yaml was written before the token failed: it and the folders made for it are gone.
  expect(existsSync(`${root}/etc`)).toBe(false);
  expect(statSync(`${root}/var/lib/ringmaster`).mode & 0o777).toBe(0o755);
  expect(ran).toEqual([]);
});
