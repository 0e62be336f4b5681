/**
 * The server's datastore preparation, run by the very command its document carries, against a
 * real throw-away PostgreSQL (Debian's): idempotent, and k3s's endpoint then logs in.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, globSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { computeDesiredState } from '../shared/desired-state.ts';
import { layoutUnder } from '../shared/layout.ts';
import { serviceCommands } from '../shared/services.ts';
import { documentOf, example, fileOf } from './helpers/fixtures.ts';
import { materialize } from './helpers/materialize.ts';

const bin = globSync('/usr/lib/postgresql/*/bin/initdb').sort().pop()?.replace(/\/initdb$/, '');
const root = mkdtempSync(join(tmpdir(), 'ringmaster-pg-'));
const port = String(20000 + (process.pid % 20000));
const socketDir = join(root, 'pgdata');

function run(argv: string[], env: Record<string, string> = {}) {
  const result = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', env: { ...process.env, ...env } });
  return { status: result.status, output: `${result.stdout ?? ''}${result.stderr ?? ''}` };
}
const asPostgres = (argv: string[]) => run(['runuser', '-u', 'postgres', '--', ...argv]);

beforeAll(() => {
  if (!bin) throw new Error('PostgreSQL server binaries are missing: apt-get install -y postgresql');
  if (process.getuid?.() !== 0) throw new Error('this test runs PostgreSQL as the postgres user and needs root');
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
  rmSync(root, { recursive: true, force: true });
});

test('the datastore SQL runs twice without error and the endpoint in config.yaml logs in', () => {
  const layout = layoutUnder(join(root, 'vm'));
  const server = documentOf(computeDesiredState(example('reference-architecture'), { layout }).documents, 'kube01');
  materialize(server, join(root, 'vm'));
  chmodSync(join(root, 'vm'), 0o755);
  for (const dir of ['var', 'var/lib', 'var/lib/ringmaster']) chmodSync(join(root, 'vm', dir), 0o755);
  chmodSync(layout.datastoreInitFile, 0o644);

  expect(server.services.map((s) => s.name)).toContain('postgresql');
  const init = [...serviceCommands(layout).postgresql.reload];
  const pg = { PGHOST: socketDir, PGPORT: port };
  for (let i = 0; i < 2; i++) {
    const result = run(init, pg);
    expect({ status: result.status, output: result.output }).toEqual({ status: 0, output: '' });
  }

  const endpoint = new URL(parse(fileOf(server, 'config.yaml'))['datastore-endpoint']);
  const login = (password: string) =>
    run(['psql', '-h', '127.0.0.1', '-p', port, '-U', endpoint.username, '-d', endpoint.pathname.slice(1), '-tAc', 'select current_user, current_database()'], { PGPASSWORD: password });
  expect(login(decodeURIComponent(endpoint.password))).toEqual({ status: 0, output: 'kubernetes|kubernetes\n' });
  expect(login('wrong').status).not.toBe(0);
});
