/**
 * The status page's routes, served by the `status` function: the HTML shell (`/` and
 * `/resource-groups/{rg}`), its script and its style sheet. None holds data or a secret; the
 * page reads the status API like any other client. Every answer carries a strict
 * Content-Security-Policy: this origin's script and style only, nothing inline, no framing.
 */
import type { RouteId } from '../../shared/contract/routes.ts';
import { PAGE_CONTENT_SECURITY_POLICY, pageHtml } from '../../page/html.ts';
import type { RouteHandlers } from '../shared/api.ts';
import type { HttpResult } from '../shared/http.ts';

/** The page's built files (page/assets.ts builds them). */
export interface PageAssets {
  readonly script: string;
  readonly style: string;
}

export type PageRouteId = Extract<RouteId, 'getStatusPage' | 'getResourceGroupPage' | 'getPageScript' | 'getPageStyle'>;

const SECURITY_HEADERS = {
  'content-security-policy': PAGE_CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

const file = (contentType: string, body: string, cacheControl: string): HttpResult => ({
  statusCode: 200,
  headers: { 'content-type': contentType, 'cache-control': cacheControl, ...SECURITY_HEADERS },
  body,
});

export function createPageHandlers(assets: PageAssets): RouteHandlers<PageRouteId> {
  const html = pageHtml();
  // The shell is small and names the current script: always revalidated, so an upgrade shows at once.
  const page = async () => file('text/html; charset=utf-8', html, 'no-cache');
  return {
    getStatusPage: page,
    getResourceGroupPage: page,
    getPageScript: async () => file('text/javascript; charset=utf-8', assets.script, 'no-cache'),
    getPageStyle: async () => file('text/css; charset=utf-8', assets.style, 'no-cache'),
  };
}
