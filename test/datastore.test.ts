/**
 * The server's datastore preparation, applied by the agent as on a VM (root-only files, psql
 * as postgres), against a real throw-away PostgreSQL (Debian's): idempotent, and k3s's
 * endpoint then logs in. PostgreSQL itself is test/helpers/postgres.ts's (initdb refuses root).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parse } from 'yaml';
import { applyDocument } from '../agent/apply.ts';
import type { VersionedDocument } from '../shared/contract/document-envelope.ts';
import { computeDesiredState } from '../shared/desired-state.ts';
import { type Layout, layoutUnder } from '../shared/layout.ts';
import type { ResourceGroup } from '../shared/schema/resource-group.ts';
import { documentOf, example, fileOf } from './helpers/fixtures.ts';
import { type Postgres, startPostgres } from './helpers/postgres.ts';

let postgres: Postgres;
const roots: string[] = [];

beforeAll(() => {
  postgres = startPostgres();
}, 60000);

afterAll(() => {
  postgres?.stop();
  for (const folder of roots) rmSync(folder, { recursive: true, force: true });
});

/** The datastore's part of the server's document (the whole document's first boot is test/reference-architecture-first-boot.test.ts's). */
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
  const applied = await applyDocument(first, undefined, { root: '/', run: postgres.agentRun, layout });
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
    postgres.run(['psql', '-h', '127.0.0.1', '-p', postgres.port, '-U', url.username, '-d', url.pathname.slice(1), '-tAc', 'select current_user, current_database()'], { PGPASSWORD: password });
  const before = endpoint(rg.secrets!.datastorePassword!);
  expect(login(before)).toEqual({ status: 0, output: 'kubernetes|kubernetes\n' });
  expect(login(before, 'wrong').status).not.toBe(0);

  // The same SQL runs again on a datastore that has its role and database: only the password changes.
  const anotherPassword = randomBytes(24).toString('hex');
  const changed = { ...rg, secrets: { ...rg.secrets!, datastorePassword: anotherPassword } };
  expect(await applyDocument(datastorePart(changed, layout, 2), first, { root: '/', run: postgres.agentRun, layout })).toMatchObject({ outcome: 'applied', reloaded: ['postgresql'] });
  expect(login(endpoint(anotherPassword))).toEqual({ status: 0, output: 'kubernetes|kubernetes\n' });
  expect(login(before).status).not.toBe(0);
});
