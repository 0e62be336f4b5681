/** `ringmaster plan` as a user runs it: a real process, real files, exit codes that scripts can use. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jsonSchemas } from '../shared/contract/json-schemas.ts';
import { hasValidHash } from '../shared/contract/document-envelope.ts';
import { ROOT, TOKEN } from './helpers/fixtures.ts';

const dir = mkdtempSync(join(tmpdir(), 'ringmaster-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function ringmaster(...args: string[]) {
  const result = spawnSync(process.execPath, [`${ROOT}cli/ringmaster.ts`, ...args], { encoding: 'utf8', cwd: ROOT });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function writeInput(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

test('plans the reference architecture: a findings table, documents written with secrets at mode 0600', () => {
  const tokenFile = writeInput('token', `${TOKEN}\n`);
  const out = join(dir, 'out');
  const result = ringmaster('plan', 'examples/reference-architecture.yaml', '--out', out, '--token-file', tokenFile);
  expect(result.stderr).toBe('');
  expect(result.status).toBe(0);
  expect(result.stdout).toMatch(/VM\s+ROLES\s+FILES\s+HASH\s+DOCUMENT/);
  expect(result.stdout).toMatch(/kube01\s+k3s-server/);
  expect(readdirSync(out).sort()).toEqual(['db01.json', 'kube01.json', 'kube02.json', 'kube03.json', 'nfs01.json', 'web01.json']);
  const server = JSON.parse(readFileSync(join(out, 'kube01.json'), 'utf8'));
  expect(hasValidHash(server)).toBe(true);
  expect(server.files.find((f: { path: string }) => f.path.endsWith('k3s-token')).content).toBe(`${TOKEN}\n`);
  expect(statSync(join(out, 'kube01.json')).mode & 0o777).toBe(0o600);
  expect(result.stdout).not.toContain(TOKEN);
});

test('the same description and token file plan the same documents, byte for byte; another token, another datastore password', () => {
  const tokenFile = writeInput('token-same', `${TOKEN}\n`);
  const runs = ['same-1', 'same-2'].map((name) => {
    const out = join(dir, name);
    const result = ringmaster('plan', 'examples/reference-architecture.yaml', '--out', out, '--token-file', tokenFile);
    expect(result.status).toBe(0);
    return { stdout: result.stdout.replace(out, 'OUT'), files: Object.fromEntries(readdirSync(out).sort().map((file) => [file, readFileSync(join(out, file), 'utf8')])) };
  });
  expect(runs[1]).toEqual(runs[0]);
  expect(ringmaster('plan', 'examples/reference-architecture.yaml', '--json', '--token-file', tokenFile).stdout).toBe(ringmaster('plan', 'examples/reference-architecture.yaml', '--json', '--token-file', tokenFile).stdout);

  const datastoreSql = (files: Record<string, string>) => JSON.parse(files['kube01.json']!).files.find((f: { path: string }) => f.path.endsWith('.sql'))?.content as string;
  const password = /PASSWORD '([0-9a-f]{64})'/.exec(datastoreSql(runs[0]!.files))?.[1];
  expect(password).toBeDefined();
  expect(password).not.toContain(TOKEN);
  const otherOut = join(dir, 'same-other');
  expect(ringmaster('plan', 'examples/reference-architecture.yaml', '--out', otherOut, '--token-file', writeInput('token-other', `${TOKEN.replace(/^./, 'x')}\n`)).status).toBe(0);
  expect(datastoreSql({ 'kube01.json': readFileSync(join(otherOut, 'kube01.json'), 'utf8') })).not.toContain(password);
});

test('printed documents never show secret contents', () => {
  const tokenFile = writeInput('token2', `${TOKEN}\n`);
  const result = ringmaster('plan', 'examples/scenario-1-http.yaml', '--token-file', tokenFile);
  expect(result.status).toBe(0);
  expect(result.stdout).toContain('--- web01.json');
  expect(result.stdout).toContain('<secret, 36 bytes: written only with --out>');
  expect(result.stdout).not.toContain(TOKEN);
});

test('a bad field: exit code 2, naming the file, the field path and the reason', () => {
  const path = writeInput('bad.yaml', 'name: demo\nvms:\n  - name: vm01\n    cpu: 0\n    memoryMiB: 1024\nfrontends:\n  myapp:\n    podport: 8080\n    mode: udp\n');
  const result = ringmaster('plan', path);
  expect(result.status).toBe(2);
  expect(result.stdout).toBe('');
  expect(result.stderr.trim().split('\n').sort()).toEqual([
    `${path}: frontends.myapp.mode: must be "http" or "tcp"`,
    `${path}: frontends.myapp: unknown field "podport"`,
    `${path}: vms[0].cpu: must be at least 1`,
  ]);
});

test('a misspelt role: exit code 2, naming the field and the known roles (no VM left silently outside the cluster)', () => {
  const path = writeInput('typo.yaml', readFileSync(`${ROOT}examples/reference-architecture.yaml`, 'utf8').replace('roles: [k3s-agent]', 'roles: [k3s-agnet]'));
  const result = ringmaster('plan', path);
  expect(result.status).toBe(2);
  expect(result.stdout).toBe('');
  expect(result.stderr.trim()).toBe(`${path}: vms[2].roles[0]: unknown Kubernetes role "k3s-agnet" (did you mean "k3s-agent"?): the Kubernetes roles are webgateway, k3s-server, k3s-agent, k3s-nfs`);
});

test('duplicate names and an invalid bind are refused with their path', () => {
  const path = writeInput('dup.json', JSON.stringify({ name: 'demo', vms: [{ name: 'a', cpu: 1, memoryMiB: 1 }, { name: 'a', cpu: 1, memoryMiB: 1 }], frontends: { x: { binds: ['localhost:99999'], podPort: 1 } } }));
  const result = ringmaster('plan', path);
  expect(result.status).toBe(2);
  expect(result.stderr).toContain(`${path}: vms[1]: duplicate VM name "a" (first at index 0)`);
  expect(result.stderr).toContain(`${path}: frontends.x.binds[0]: port 99999 must be between 1 and 65535`);
});

test('unreadable and malformed files: exit code 2 with the reason', () => {
  expect(ringmaster('plan', join(dir, 'missing.yaml')).stderr).toContain('missing.yaml: cannot read: ENOENT');
  const broken = ringmaster('plan', writeInput('broken.yaml', 'name: [unclosed\n'));
  expect(broken.status).toBe(2);
  expect(broken.stderr).toContain('broken.yaml: not valid YAML');
  const json = ringmaster('plan', writeInput('broken.json', '{"name": '));
  expect(json.status).toBe(2);
  expect(json.stderr).toContain('broken.json: not valid JSON');
});

test('error findings: exit code 1 and the blocked VMs in the table', () => {
  const path = writeInput('noserver.yaml', readFileSync(`${ROOT}examples/reference-architecture.yaml`, 'utf8').replace('roles: [k3s-server]', 'roles: []'));
  const result = ringmaster('plan', path);
  expect(result.status).toBe(1);
  expect(result.stdout).toMatch(/error\s+cluster demo\s+server\.missing/);
  expect(result.stdout).toMatch(/kube02\s+blocked: server\.missing/);
});

test('--json gives findings and documents for scripts', () => {
  const result = ringmaster('plan', 'examples/scenario-2-tcp.yaml', '--json');
  expect(result.status).toBe(0);
  const parsed = JSON.parse(result.stdout);
  expect(parsed.documents.map((d: { vm: string }) => d.vm)).toContain('web01');
  expect(result.stdout).not.toMatch(/"content": "[0-9a-f]{64}\\n"/);
});

test('the JSON Schemas in docs/ are the current ones (run npm run schemas)', () => {
  for (const [name, schema] of Object.entries(jsonSchemas())) {
    expect(JSON.parse(readFileSync(`${ROOT}docs/schemas/${name}.schema.json`, 'utf8'))).toEqual(schema);
  }
});

test('`ringmaster plan … | head` ends quietly when the reader has closed the pipe (no EPIPE stack trace)', () => {
  const tokenFile = writeInput('token-pipe', `${TOKEN}\n`);
  // A real shell pipe whose reader is gone before ringmaster writes (as `head` is after its lines): `true` reads nothing.
  const result = spawnSync('bash', ['-o', 'pipefail', '-c', `"${process.execPath}" cli/ringmaster.ts plan examples/reference-architecture.yaml --token-file "${tokenFile}" | true`], { encoding: 'utf8', cwd: ROOT });
  expect(result.stderr).not.toMatch(/EPIPE|Error|at /);
  expect(result.status).toBe(0);
});

test("--acme-directory and --acme-email put where VMs order certificates into the documents; a bad one: exit code 2 naming the flag", () => {
  const tokenFile = writeInput('token-acme', `${TOKEN}\n`);
  const out = join(dir, 'out-acme');
  const result = ringmaster('plan', 'examples/scenario-1-http.yaml', '--out', out, '--token-file', tokenFile, '--acme-directory', 'staging', '--acme-email', 'ops@example.com');
  expect(result.status).toBe(0);
  const web = JSON.parse(readFileSync(join(out, 'web01.json'), 'utf8'));
  expect(web.acme).toEqual({ directoryUrl: 'https://acme-staging-v02.api.letsencrypt.org/directory', email: 'ops@example.com', webroot: '/var/lib/acme/acme-challenge' });
  expect(web.certificates.map((c: { host: string }) => c.host)).toEqual(['myapp.example.com']);
  const bad = ringmaster('plan', 'examples/scenario-1-http.yaml', '--token-file', tokenFile, '--acme-directory', 'http://acme.internal/dir');
  expect(bad.status).toBe(2);
  expect(bad.stderr).toContain('--acme-directory: must be an https URL of an ACME directory');
});
