/**
 * `--log-level`, before or after the command, wins over $RINGMASTER_LOG_LEVEL: `ringmaster serve`
 * as a process, told to log at info while its environment says error, logs the events it
 * accepts; a level that does not exist is refused, naming the flag and the choices.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from './helpers/control-plane-process.ts';
import { ROOT } from './helpers/fixtures.ts';

const CLI = `${ROOT}cli/ringmaster.ts`;
const dataDir = mkdtempSync(join(tmpdir(), 'ringmaster-log-level-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

test('serve --log-level info logs what it accepts though $RINGMASTER_LOG_LEVEL says error', async () => {
  const readyFile = join(dataDir, 'ready.json');
  const child = spawn(process.execPath, [CLI, 'serve', '--log-level', 'info', '--data-dir', join(dataDir, 'cp'), '--api-port', '0', '--s3-port', '0', '--ready-file', readyFile], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RINGMASTER_LOG_LEVEL: 'ERROR' } });
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  try {
    await waitFor('serve ready', async () => (existsSync(readyFile) ? true : undefined), 20_000);
    const { apiUrl, apiToken } = JSON.parse(readFileSync(readyFile, 'utf8')) as { apiUrl: string; apiToken: string };
    const event = { id: 'log-level-1', type: 'cluster.provisioned', resourceGroup: 'logs', occurredAt: new Date().toISOString(), payload: { settings: {} } };
    const response = await fetch(`${apiUrl}/v1/events`, { method: 'POST', headers: { authorization: `Bearer ${apiToken}`, 'content-type': 'application/json' }, body: JSON.stringify([event]) });
    expect(response.status).toBe(202);
    await waitFor('the accepted event logged', async () => (output.includes('"message":"events accepted"') && output.includes('log-level-1') ? true : undefined), 10_000);
    // The API token is never what it logs.
    expect(output).not.toContain(apiToken);
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => (child.exitCode !== null ? resolve(undefined) : child.once('exit', resolve)));
  }
}, 40_000);

test('a level that does not exist is refused with exit 2, naming the flag and the choices, before anything runs', () => {
  const result = spawnSync(process.execPath, [CLI, '--log-level', 'loud', 'serve', '--data-dir', join(dataDir, 'never')], { encoding: 'utf8' });
  expect(result.status).toBe(2);
  expect(result.stderr).toMatch(/--log-level <level>' argument 'loud' is invalid\. Allowed choices are debug, info, warn, error, silent/);
  expect(existsSync(join(dataDir, 'never'))).toBe(false);
});
