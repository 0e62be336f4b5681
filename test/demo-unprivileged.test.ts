/**
 * `ringmaster demo` run by a user who is not root (`nobody`, through setpriv). The sandboxed
 * VMs' nginx serves ports 80 and 443 as on a VM: where only root may bind those, the demo says
 * so before starting anything, naming both ways out; where the machine lets every user bind
 * from port 80 (`net.ipv4.ip_unprivileged_port_start=80`, set here in a network namespace of the
 * test's own so the machine's setting is left alone), it converges as that user, PostgreSQL
 * included, and stops cleanly. Without root it cannot add the pods' pod-network addresses, so
 * it goes without a Kubernetes API and says so.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { waitFor } from './helpers/control-plane-process.ts';
import { ROOT } from './helpers/fixtures.ts';

const AS_NOBODY = ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups', 'env', 'HOME=/tmp', `PATH=${process.env.PATH}`];
const DEMO = [process.execPath, `${ROOT}cli/ringmaster.ts`, 'demo'];

test('where only root may bind ports 80 and 443, the demo refuses at once and says why and what to do', () => {
  // The machine's own setting (Linux's default): below 1024 is root's.
  expect(Number(readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8'))).toBeGreaterThan(80);
  const run = spawnSync(AS_NOBODY[0]!, [...AS_NOBODY.slice(1), ...DEMO], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
  expect(run.status).toBe(2);
  expect(run.stdout).toBe('');
  expect(run.stderr).toContain("ringmaster demo: the demo needs root here: the sandboxed VMs' nginx serves ports 80 and 443");
  expect(run.stderr).toContain('sudo npx ringmaster demo');
  expect(run.stderr).toContain('sudo sysctl -w net.ipv4.ip_unprivileged_port_start=80');
});

test('where every user may bind from port 80, the demo converges as nobody and stops cleanly', async () => {
  const script = `ip link set lo up && sysctl -qw net.ipv4.ip_unprivileged_port_start=80 && exec "$@"`;
  const demo: ChildProcess = spawn('unshare', ['-n', 'sh', '-c', script, 'sh', ...AS_NOBODY, ...DEMO], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  demo.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  demo.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const exited = new Promise<number | null>((done) => demo.once('exit', done));
  try {
    await waitFor('the demo to be in sync', async () => (/All 6 VMs in sync after/.test(output) || demo.exitCode !== null ? true : undefined), 90_000);
    expect(output).toMatch(/All 6 VMs in sync after [\d.]+ s/);
    expect(output).toMatch(/→ hello from pod myapp-\d/);
    expect(output).toMatch(/No Kubernetes API: (no test kube-apiserver built|cannot add the pods' address)/);
  } finally {
    demo.kill('SIGINT');
    await exited;
  }
  expect(output).toMatch(/Stopped: \d+ processes, none left running/);
}, 120_000);
