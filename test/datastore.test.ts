/**
 * The server's datastore preparation, applied by the agent as on a VM (root-only files, psql
 * as postgres), against a real throw-away PostgreSQL (Debian's): idempotent, and k3s's
 * endpoint then logs in. PostgreSQL's own data folder is set up here (initdb refuses root).
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, globSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parse } from 'yaml';
import { runCommand } from '../agent/agent.ts';
import { applyDocument, type CommandRunner } from '../agent/apply.ts';
import type { VersionedDocument } from '../shared/contract/document-envelope.ts';
import { computeDesiredState } from '../shared/desired-state.ts';
import { type Layout, layoutUnder } from '../shared/layout.ts';
import type { ResourceGroup } from '../shared/schema/resource-group.ts';
import { documentOf, example, fileOf } from './helpers/fixtures.ts';

const bin = globSync('/usr/lib/postgresql/*/bin/initdb').sort().pop()?.replace(/\/initdb$/, '');
const root = mkdtempSync(join(tmpdir(), 'ringmaster-pg-'));
const port = String(20000 + (process.pid % 20000));
const socketDir = join(root, 'pgdata');
const roots: string[] = [root];
/** The agent's own runner; its commands find this test's PostgreSQL (own socket and port) through their environment, as psql finds any. */
const agentRun: CommandRunner = (argv, stdinFile) => runCommand(['env', `PGHOST=${socketDir}`, `PGPORT=${port}`, ...argv], stdinFile);

function run(argv: string[], env: Record<string, string> = {}) {
  const result = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', env: { ...process.env, ...env } });
  return { status: result.status, output: `${result.stdout ?? ''}${result.stderr ?? ''}` };
}
const asPostgres = (argv: string[]) => run(['runuser', '-u', 'postgres', '--', ...argv]);

beforeAll(() => {
  if (!bin) throw new Error('PostgreSQL server binaries are missing: apt-get install -y postgresql');
  if (process.getuid?.() !== 0) throw new Error('this test runs PostgreSQL as the postgres user and needs root');
  // PostgreSQL's own folder (not the VM's): postgres reaches its data and socket through it.
  chmodSync(root, 0o755);
  chownSync(root, 0, 0);
  const data = socketDir;
  run(['install', '-d', '-o', 'postgres', '-g', 'postgres', '-m', '0700', data]);
  const init = asPostgres([`${bin}/initdb`, '-D', data, '-U', 'postgres', '--auth-local=trust', '--auth-host=scram-sha-256']);
  if (init.status !== 0) throw new Error(init.output);
  const start = asPostgres([`${bin}/pg_ctl`, '-D', data, '-w', '-l', join(data, 'log'), '-o', `-k ${data} -p ${port} -c listen_addresses=127.0.0.1 -c fsync=off`, 'start']);
  if (start.status !== 0) throw new Error(start.output);
}, 60000);

afterAll(() => {
  asPostgres([`${bin}/pg_ctl`, '-D', socketDir, '-m', 'immediate', 'stop']);
  for (const folder of roots) rmSync(folder, { recursive: true, force: true });
});

/** The datastore's part of the server's document: its nginx and k3s are other tests' (they need certificates, and a k3s). */
function datastorePart(rg: ResourceGroup, layout: Layout, generation: number): VersionedDocument {
  const server = documentOf(computeDesiredState(rg, { layout }).documents, 'kube01');
  const services = server.services.filter((service) => service.name === 'postgresql');
  const files = server.files.filter((file) => services.some((service) => service.files.includes(file.path)));
  const directories = server.directories.filter((directory) => files.some((file) => dirname(file.path) === directory.path));
  return { ...server, services, files, directories, generation };
}

test('the agent prepares the datastore from its root-only SQL file (psql runs as postgres, the agent gives it the SQL), again after a password change, and the endpoint in config.yaml logs in', async () => {
  // A VM's root with nothing prepared, readable by root only; systemd is stood in for (nothing here reloads k3s or nginx).
  const vm = mkdtempSync(join(tmpdir(), 'ringmaster-pg-vm-'));
  roots.push(vm);
  const layout = layoutUnder(vm, () => ['true']);
  const rg = example('reference-architecture');
  const first = datastorePart(rg, layout, 1);
  const applied = await applyDocument(first, undefined, { root: '/', run: agentRun, layout });
  expect(applied.error).toBeUndefined();
  expect(applied).toMatchObject({ outcome: 'applied', reloaded: ['postgresql'] });
  // The SQL holds the password: it stays root's, as the document says.
  const sql = statSync(layout.datastoreInitFile);
  expect({ mode: sql.mode & 0o777, uid: sql.uid }).toEqual({ mode: 0o600, uid: 0 });
  expect(statSync(dirname(layout.datastoreInitFile)).mode & 0o777).toBe(0o700);

  const endpoint = (password: string) => {
    const server = documentOf(computeDesiredState({ ...rg, secrets: { ...rg.secrets!, datastorePassword: password } }, { layout }).documents, 'kube01');
    return new URL(parse(fileOf(server, 'config.yaml'))['datastore-endpoint']);
  };
  const login = (url: URL, password = decodeURIComponent(url.password)) =>
    run(['psql', '-h', '127.0.0.1', '-p', port, '-U', url.username, '-d', url.pathname.slice(1), '-tAc', 'select current_user, current_database()'], { PGPASSWORD: password });
  const before = endpoint(rg.secrets!.datastorePassword!);
  expect(login(before)).toEqual({ status: 0, output: 'kubernetes|kubernetes\n' });
  expect(login(before, 'wrong').status).not.toBe(0);

  // The same SQL runs again on a datastore that has its role and database: only the password changes.
  const changed = { ...rg, secrets: { ...rg.secrets!, datastorePassword: 'another-datastore-password-77cc' } };
  expect(await applyDocument(datastorePart(changed, layout, 2), first, { root: '/', run: agentRun, layout })).toMatchObject({ outcome: 'applied', reloaded: ['postgresql'] });
  expect(login(endpoint('another-datastore-password-77cc'))).toEqual({ status: 0, output: 'kubernetes|kubernetes\n' });
  expect(login(before).status).not.toBe(0);
});
