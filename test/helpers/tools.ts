/** Runs the real Debian haproxy, nginx and openssl on what we render. */
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';

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

/** A throw-away self-signed certificate where the nginx config expects the ACME one. */
export function selfSignedCertificate(certDir: string, host: string): void {
  mkdirSync(certDir, { recursive: true });
  const result = run([
    'openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', `/CN=${host}`, '-keyout', `${certDir}/key.pem`, '-out', `${certDir}/fullchain.pem`,
  ]);
  if (result.status !== 0) throw new Error(`openssl failed: ${result.output}`);
}
