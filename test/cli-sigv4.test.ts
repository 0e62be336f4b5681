/**
 * The operator commands against a control plane in AWS sign with SigV4 (execute-api). The
 * signature is checked here by the verifier the embedded S3 endpoint uses (itself proven
 * against awscli's signer), standing in for API Gateway's IAM authorization.
 */
import { execFile } from 'node:child_process';
import { createServer } from 'node:http';
import { promisify } from 'node:util';
import { verifySigV4 } from '../adapters/sigv4-verifier.ts';
import { statusView } from '../shared/contract/status-view.ts';
import { rgStatusSchema } from '../shared/state/status.ts';
import { ROOT } from './helpers/fixtures.ts';
import { freePort } from './helpers/servers.ts';

const execFileAsync = promisify(execFile);

/** What the status route answers for a group with nothing in it yet (the CLI checks answers against the route table). */
const EMPTY_STATUS = statusView(
  rgStatusSchema.parse({ resourceGroup: 'demo', updatedAt: '2026-12-02T10:00:00Z', clusterProvisioned: false, findings: [], documents: [], rejections: [], pendingKubeconfigRequests: [] }),
  new Map(),
  { copies: {}, strays: [] },
);

test('ringmaster status --aws-region signs the request with the AWS credentials of the environment', async () => {
  const seen: Array<{ ok: boolean; service?: string }> = [];
  const server = createServer(async (request, response) => {
    const url = new URL(request.url ?? '/', 'http://x');
    const verdict = await verifySigV4({ method: request.method ?? 'GET', path: url.pathname, query: Object.fromEntries(url.searchParams), headers: request.headers }, (id) => (id === 'AKIDTEST' ? 'secret-for-the-test-0123456789' : undefined));
    seen.push({ ok: verdict.ok, service: /Credential=[^/]+\/\d+\/[^/]+\/([^/]+)\//.exec(String(request.headers.authorization))?.[1] });
    response.writeHead(verdict.ok ? 200 : 403, { 'content-type': 'application/json' });
    response.end(JSON.stringify(verdict.ok ? EMPTY_STATUS : { detail: verdict.message }));
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  try {
    const run = (secret: string) =>
      execFileAsync(process.execPath, [`${ROOT}cli/ringmaster.ts`, 'status', 'demo', '--api-url', `http://127.0.0.1:${port}`, '--aws-region', 'eu-central-1'], {
        env: { ...process.env, AWS_ACCESS_KEY_ID: 'AKIDTEST', AWS_SECRET_ACCESS_KEY: secret, AWS_SESSION_TOKEN: '' },
      }).then(
        () => 0,
        (error: { code?: number }) => error.code ?? 1,
      );
    expect(await run('secret-for-the-test-0123456789')).toBe(0);
    expect(await run('wrong')).toBe(2);
    expect(seen).toEqual([{ ok: true, service: 'execute-api' }, { ok: false, service: 'execute-api' }]);
  } finally {
    server.close();
  }
});
