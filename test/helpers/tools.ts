/** Runs the real Debian haproxy and nginx on what we render. */
import { spawnSync } from 'node:child_process';

export interface Run {
  readonly status: number | null;
  readonly output: string;
}

export function run(argv: readonly string[]): Run {
  const [program, ...args] = argv;
  const result = spawnSync(program!, args, { encoding: 'utf8' });
  if (result.error) throw new Error(`${program} could not run (${result.error.message}); install it with: apt-get install -y haproxy nginx`);
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}
