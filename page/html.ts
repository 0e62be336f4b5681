/**
 * The status page's HTML: one static shell for `/` and `/resource-groups/{rg}`. It holds no
 * data and no secret; the script fills it from the status API. The API's paths come from the
 * route table, handed to the script in data attributes, so the page never spells a route itself.
 */
import { routes } from '../shared/contract/routes.ts';

/** Served with every page answer: scripts, styles and requests of this origin only, nothing inline, no framing. */
export const PAGE_CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const attribute = (value: string) => value.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');

export function pageHtml(): string {
  const paths = {
    'data-list-path': routes.listResourceGroups.path,
    'data-status-path': routes.getResourceGroup.path,
    'data-page-path': routes.getResourceGroupPage.path,
    'data-home-path': routes.getStatusPage.path,
  };
  const data = Object.entries(paths).map(([name, value]) => `${name}="${attribute(value)}"`).join(' ');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Ringmaster status</title>
<link rel="stylesheet" href="${attribute(routes.getPageStyle.path)}">
<script type="module" src="${attribute(routes.getPageScript.path)}"></script>
</head>
<body ${data}>
<a class="skip" href="#content">Skip to the status</a>
<header class="top">
<p class="brand"><a href="${attribute(routes.getStatusPage.path)}">Ringmaster</a></p>
<p id="refresh" class="refresh" aria-live="off">Loading…</p>
</header>
<main id="content" tabindex="-1">
<noscript><p class="notice">This page needs JavaScript: it reads the status API. Without it, use <code>npx ringmaster status &lt;rg&gt;</code>.</p></noscript>
<p id="notice" class="notice" role="status" aria-live="polite" hidden></p>
<div id="view"></div>
</main>
</body>
</html>
`;
}
