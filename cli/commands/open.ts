/**
 * `ringmaster open [rg]`: the status page of the local control plane, with the API token
 * handed over in the URL fragment (`#token=…`). A browser never sends a fragment to a server,
 * so the token is in no request line and no log; the page keeps it in the tab's
 * sessionStorage and removes it from the address bar. Only for a control plane on this
 * machine: elsewhere the page sits behind the API's own authorization.
 */
import { spawn } from 'node:child_process';
import { ApiClient, type ConnectionOptions, resolveToken } from '../api-client.ts';
import { InputError } from '../input.ts';
import { routePath } from '../../shared/contract/routes.ts';
import { dnsLabel } from '../../shared/schema/primitives.ts';

export interface OpenOptions extends ConnectionOptions {
  /** Print the URL only; start no browser. */
  readonly print?: boolean;
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** The page's URL with the token in its fragment. */
export function pageUrl(baseUrl: string, token: string, rg?: string): string {
  const path = rg === undefined ? routePath('getStatusPage', {}) : routePath('getResourceGroupPage', { rg });
  return `${baseUrl.replace(/\/+$/, '')}${path}#token=${encodeURIComponent(token)}`;
}

export async function openPage(rg: string | undefined, options: OpenOptions): Promise<number> {
  if (rg !== undefined) {
    const valid = dnsLabel.safeParse(rg);
    if (!valid.success) throw new InputError('resource group', [`"${rg}" ${valid.error.issues[0]?.message ?? 'is invalid'}`]);
  }
  const client = new ApiClient(options);
  const base = new URL(client.baseUrl);
  if (base.protocol !== 'http:' || !LOOPBACK_HOSTS.has(base.hostname)) {
    throw new InputError(client.baseUrl, ['the page gets a token in its URL only from a control plane on this machine; a control plane in AWS serves the page behind its IAM authorization']);
  }
  const token = resolveToken(options);
  if (!token) throw new InputError('token', ['no API token: start the control plane once with `npx ringmaster serve` (it writes one), or pass --token']);
  // A dead URL helps nobody: say how to start the control plane instead.
  await client.request('GET', routePath('getHealth', {}));
  const url = pageUrl(client.baseUrl, token, rg);
  process.stdout.write(`${url}\n`);
  process.stderr.write('(the token after # stays in your browser: it is never sent to the server; keep the URL to yourself)\n');
  const graphical = Boolean(process.env.DISPLAY ?? process.env.WAYLAND_DISPLAY);
  if (!options.print && graphical) {
    // Best effort: the URL is printed either way.
    const opener = spawn('xdg-open', [url], { stdio: 'ignore', detached: true });
    opener.on('error', () => undefined);
    opener.unref();
  }
  return 0;
}
