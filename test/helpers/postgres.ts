/**
 * A throw-away PostgreSQL (Debian's server binaries) on its own socket folder and port, run as
 * the postgres user (initdb refuses root), for the agent's datastore preparation. The agent's
 * commands find it through PGHOST and PGPORT, as psql finds any server.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, globSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCommand } from '../../agent/agent.ts';
import type { CommandRunner } from '../../agent/apply.ts';

export interface Postgres {
  readonly port: string;
  /** The agent's own runner, its commands pointed at this server (PGHOST, PGPORT). */
  readonly agentRun: CommandRunner;
  /** Runs a command with this server's environment added. */
  run(argv: readonly string[], env?: Record<string, string>): { status: number | null; output: string };
  stop(): void;
}

function run(argv: readonly string[], env: Record<string, string> = {}) {
  const result = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', env: { ...process.env, ...env } });
  return { status: result.status, output: `${result.stdout ?? ''}${result.stderr ?? ''}` };
}
const asPostgres = (argv: readonly string[]) => run(['runuser', '-u', 'postgres', '--', ...argv]);

export function startPostgres(): Postgres {
  const bin = globSync('/usr/lib/postgresql/*/bin/initdb').sort().pop()?.replace(/\/initdb$/, '');
  if (!bin) throw new Error('PostgreSQL server binaries are missing: apt-get install -y postgresql');
  if (process.getuid?.() !== 0) throw new Error('PostgreSQL runs here as the postgres user, which needs root');
  const root = mkdtempSync(join(tmpdir(), 'ringmaster-pg-'));
  const port = String(20000 + ((process.pid * 7 + Math.floor(Math.random() * 1000)) % 20000));
  const data = join(root, 'pgdata');
  // PostgreSQL's own folder (not a VM's): postgres reaches its data and socket through it.
  chmodSync(root, 0o755);
  chownSync(root, 0, 0);
  run(['install', '-d', '-o', 'postgres', '-g', 'postgres', '-m', '0700', data]);
  const init = asPostgres([`${bin}/initdb`, '-D', data, '-U', 'postgres', '--auth-local=trust', '--auth-host=scram-sha-256']);
  if (init.status !== 0) throw new Error(init.output);
  const start = asPostgres([`${bin}/pg_ctl`, '-D', data, '-w', '-l', join(data, 'log'), '-o', `-k ${data} -p ${port} -c listen_addresses=127.0.0.1 -c fsync=off`, 'start']);
  if (start.status !== 0) throw new Error(start.output);
  return {
    port,
    agentRun: (argv, stdinFile) => runCommand(['env', `PGHOST=${data}`, `PGPORT=${port}`, ...argv], stdinFile),
    run: (argv, env = {}) => run(argv, env),
    stop() {
      asPostgres([`${bin}/pg_ctl`, '-D', data, '-m', 'immediate', 'stop']);
      rmSync(root, { recursive: true, force: true });
    },
  };
}
