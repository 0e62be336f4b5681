/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The status page's script (bundled by esbuild into `/page/app.js`). It reads the status API,
 * the same answers `ringmaster status` prints, and draws them: badges and tables of one group
 * (`/resource-groups/{rg}`) or every group (`/`), polled every few seconds. The meaning of the
 * badges is shared/status-badges.ts, run here as it is in Node.
 *
 * The API token: `ringmaster open` hands it over in the URL fragment (`#token=…`), which a
 * browser never sends to a server; it is kept in this tab's sessionStorage and the fragment is
 * removed from the address bar at once. Everything is drawn with DOM nodes and text, never
 * HTML strings: a report's text (written by a VM) cannot become markup.
 */
import type { StatusView } from '../shared/contract/status-view.ts';
import { ago, type Badge, certificateDetail, shortText, statusGlance, type VmGlance } from '../shared/status-badges.ts';

const POLL_MS = 3000;
const TOKEN_KEY = 'ringmaster.apiToken';
/** At most this many groups are read for the overview's badges (one status read each). */
const OVERVIEW_LIMIT = 50;

interface Paths {
  readonly list: string;
  readonly status: string;
  readonly page: string;
  readonly home: string;
}

const body = document.body;
const paths: Paths = {
  list: body.dataset.listPath ?? '/v1/resource-groups',
  status: body.dataset.statusPath ?? '/v1/resource-groups/{rg}',
  page: body.dataset.pagePath ?? '/resource-groups/{rg}',
  home: body.dataset.homePath ?? '/',
};
const fill = (pattern: string, rg: string) => pattern.replace('{rg}', encodeURIComponent(rg));

function takeTokenFromFragment(): void {
  const match = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (!match) return;
  sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]!));
  // Out of the address bar, the history and any bookmark.
  history.replaceState(null, '', location.pathname + location.search);
}

/** The group this page shows, or undefined on the overview. */
function groupOfPath(): string | undefined {
  const [prefix, suffix] = paths.page.split('{rg}') as [string, string];
  const path = location.pathname;
  if (!path.startsWith(prefix) || !path.endsWith(suffix) || path.length <= prefix.length + suffix.length) return undefined;
  return decodeURIComponent(path.slice(prefix.length, path.length - suffix.length).replace(/\/$/, ''));
}

class ApiFailure extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

async function getJson(path: string): Promise<{ text: string; value: unknown }> {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const response = await fetch(path, { headers: token ? { authorization: `Bearer ${token}` } : {}, cache: 'no-store', credentials: 'same-origin' });
  const text = await response.text();
  if (!response.ok) {
    let detail = text;
    try {
      detail = (JSON.parse(text) as { detail?: string }).detail ?? text;
    } catch {
      // not a problem document: show the text
    }
    throw new ApiFailure(response.status, detail);
  }
  return { text, value: JSON.parse(text) };
}

// --- drawing -------------------------------------------------------------------------------

type Child = Node | string | undefined | false;

function h<K extends keyof HTMLElementTagNameMap>(tag: K, attributes: Readonly<Record<string, string>> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
  for (const child of children) if (child !== undefined && child !== false) element.append(child);
  return element;
}

/** A time shown as "12 s ago" that stays current between refreshes, with the exact time on hover. */
function timeAgo(iso: string | undefined): Child {
  if (!iso) return '—';
  return h('time', { datetime: iso, title: new Date(iso).toLocaleString(), 'data-ago': iso }, ago(iso, new Date()));
}

function badge(kind: string, value: Badge): HTMLElement {
  return h(
    'div',
    { class: `badge badge-${value.tone}`, 'data-badge': kind },
    h('span', { class: 'badge-kind' }, `${kind}: `),
    h('strong', { class: 'badge-label' }, value.label),
    h('span', { class: 'badge-detail' }, value.detail),
  );
}

function table(caption: string, header: readonly string[], rows: ReadonlyArray<readonly Child[]>, attributes: Readonly<Record<string, string>> = {}): HTMLElement {
  return h(
    'div',
    { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': caption },
    h(
      'table',
      attributes,
      h('caption', {}, caption),
      h('thead', {}, h('tr', {}, ...header.map((title) => h('th', { scope: 'col' }, title)))),
      h('tbody', {}, ...rows.map((cells) => h('tr', {}, ...cells.map((cell, column) => (column === 0 ? h('th', { scope: 'row' }, cell) : h('td', {}, cell)))))),
    ),
  );
}

/** A long text shown short, the whole of it one click (or Enter) away. */
function expandable(key: string, text: string, max = 80): Child {
  const short = shortText(text, max);
  if (short === text) return h('span', { class: 'error-text' }, text);
  const details = h('details', { 'data-key': key }, h('summary', {}, short), h('pre', { class: 'error-text' }, text));
  if (openDetails.has(key)) details.open = true;
  details.addEventListener('toggle', () => (details.open ? openDetails.add(key) : openDetails.delete(key)));
  return details;
}

const openDetails = new Set<string>();

function section(title: string, id: string, ...content: Child[]): HTMLElement {
  return h('section', { 'aria-labelledby': id }, h('h2', { id }, title), ...content);
}

function outcomeCell(document: StatusView['documents'][number], glance: VmGlance): Child {
  const agent = document.agent;
  if (agent === null) return h('span', { class: 'muted' }, 'no report');
  if ('invalid' in agent) return h('span', { class: 'outcome outcome-failed' }, 'unreadable');
  return h('span', { class: `outcome outcome-${agent.outcome}` }, glance.health === 'failed' ? `${agent.outcome} (gen ${agent.attemptedGeneration ?? '?'})` : agent.outcome);
}

function storedCell(document: StatusView['documents'][number]): Child {
  if (document.stored === null) return document.storedAsWanted ? '—' : h('strong', { class: 'flag' }, 'missing');
  const copy = `${document.stored.generation} · ${document.stored.hash.replace(/^sha256:/, '').slice(0, 12)}`;
  return document.storedAsWanted ? copy : h('span', {}, copy, ' ', h('strong', { class: 'flag' }, 'differs'));
}

type Report = Exclude<StatusView['documents'][number]['agent'], null | { invalid: string }>;
const reportOf = (document: StatusView['documents'][number]): Report | undefined => (document.agent !== null && !('invalid' in document.agent) ? document.agent : undefined);

/** Pods first (in slot order), then the load balancers: as haproxy lists them within a frontend. */
const serverOrder = (server: string) => (/^pod(\d+)$/.exec(server) ? Number(/^pod(\d+)$/.exec(server)![1]) : 100_000);

/** Each webgateway's frontends with their servers as its haproxy has them (from its agent's last report). */
function frontendsSection(view: StatusView): HTMLElement {
  const gateways = view.documents.filter((document) => document.roles.includes('webgateway'));
  const tables = gateways.flatMap((document) => {
    const backends = reportOf(document)?.backends;
    if (!backends || backends.length === 0) return [];
    const rows = [...backends]
      .sort((a, b) => a.frontend.localeCompare(b.frontend) || serverOrder(a.server) - serverOrder(b.server) || a.server.localeCompare(b.server))
      .map((server) => [server.frontend, server.server, server.target ?? (server.state === 'maint' ? 'free slot' : '—'), server.address, h('span', { class: `server-state server-state-${server.state}` }, server.state)]);
    return [table(`Frontends and their backends as haproxy on ${document.vm} has them`, ['Frontend', 'Slot', 'Pod', 'Address', 'State'], rows, { id: `frontends-${document.vm}`, 'data-frontends': document.vm })];
  });
  return section('Frontends', 'frontends', ...(tables.length > 0 ? tables : [h('p', { class: 'muted' }, gateways.length === 0 ? 'No webgateway.' : 'No webgateway reported its haproxy yet.')]));
}

function dashboardSection(view: StatusView): HTMLElement {
  const link = view.dashboard;
  return section(
    'Kubernetes dashboard',
    'dashboard',
    link === null || link === undefined
      ? h('p', { class: 'muted' }, 'No dashboard (no cluster, no k3s server, or it is disabled).')
      : h('p', { id: 'dashboard-link' }, h('a', { href: link.url, rel: 'noreferrer' }, link.url), link.vpnOnly ? ' · reachable from the VPN only' : ' · token login'),
  );
}

/** What the VMs' service managers say beyond outcomes (a sandbox names what it does not run). */
function noticesOf(view: StatusView): Child {
  const lines = view.documents.flatMap((document) => (reportOf(document)?.notices ?? []).map((notice) => `${document.vm}: ${notice}`));
  return lines.length > 0 && h('ul', { class: 'notices', 'aria-label': 'Notices from the agents' }, ...lines.map((line) => h('li', {}, line)));
}

/** When the agent last reached the store, its last outage, and whether nudges reach it. */
function contactCell(v: VmGlance): Child {
  const notes: Child[] = [];
  if (v.lastOutage) notes.push(h('small', { class: 'muted' }, `back from a ${v.lastOutage.seconds} s outage `, timeAgo(v.lastOutage.endedAt)));
  if (v.push) notes.push(v.push.connected ? h('small', { class: 'muted' }, 'push connected') : h('small', { class: 'push-down' }, 'push down ', timeAgo(v.push.since), ': polling'));
  if (notes.length === 0) return timeAgo(v.lastContact);
  return h('span', {}, timeAgo(v.lastContact), ...notes.flatMap((note) => [h('br'), note]));
}

function drawGroup(view: StatusView): HTMLElement {
  const glance = statusGlance(view, new Date());
  const byVm = new Map(glance.vms.map((v) => [v.vm, v]));
  const vmRows = view.documents.map((document) => {
    const v = byVm.get(document.vm)!;
    const report = document.agent !== null && !('invalid' in document.agent) ? document.agent : undefined;
    return [
      document.vm,
      document.roles.join(', ') || '—',
      document.generation === undefined ? '—' : String(document.generation),
      report ? String(report.appliedGeneration) : '—',
      v.lag === undefined ? '—' : String(v.lag),
      h('span', { class: `sync sync-${v.sync.replace(/ /g, '-')}` }, v.sync),
      contactCell(v),
      outcomeCell(document, v),
      v.error ? expandable(`error:${document.vm}`, v.error) : document.blockedBy.length > 0 ? `blocked by ${document.blockedBy.join(', ')}` : '—',
      storedCell(document),
    ];
  });
  const parts: Child[] = [
    h('h1', {}, 'Resource group ', h('span', { class: 'rg-name' }, view.resourceGroup)),
    h('div', { class: 'badges', role: 'group', 'aria-label': 'At a glance' }, badge('sync', glance.sync), badge('health', glance.health)),
    h('p', { class: 'muted' }, 'Status written ', timeAgo(view.updatedAt), view.clusterProvisioned ? '' : ' · cluster not provisioned yet'),
    section(
      'VMs',
      'vms',
      table('Each VM: the generation wanted, the one its agent runs, and its last apply', ['VM', 'Roles', 'Wanted', 'Applied', 'Lag', 'Sync', 'Last contact', 'Last outcome', 'Error', 'Stored'], vmRows, { id: 'vm-table' }),
      view.strayDocuments.length > 0 && h('p', { class: 'flag-line' }, h('strong', {}, 'Stored but wanted by no VM: '), view.strayDocuments.join(', ')),
      noticesOf(view),
    ),
    frontendsSection(view),
    section(
      'Findings',
      'findings',
      view.findings.length === 0
        ? h('p', { class: 'muted' }, 'No finding.')
        : table('What the control plane found in the description', ['Severity', 'Subject', 'Code', 'Message', 'Blocks'], view.findings.map((f) => [h('span', { class: `severity severity-${f.severity}` }, f.severity), `${f.subject.kind} ${f.subject.name}`, f.code, f.message, f.blocks.join(', ') || '—'])),
    ),
    section(
      'Refused events',
      'refused',
      view.rejections.length === 0
        ? h('p', { class: 'muted' }, 'None.')
        : table('Events that could not apply, and why', ['Event', 'Type', 'Occurred', 'Reason'], view.rejections.map((r) => [r.eventId, r.type, timeAgo(r.occurredAt), expandable(`refused:${r.eventId}`, r.reason, 120)])),
    ),
    section(
      'Gateway rollout',
      'rollout',
      view.rollout === null
        ? h('p', { class: 'muted' }, 'None in flight: every gateway runs the group\'s frontends.')
        : table(
            'A frontend change goes to the canary first; the held gateways get it once the canary applied it',
            ['Phase', 'Canary', 'Generation', 'Held', 'Started', 'Reason'],
            [[h('span', { id: 'rollout-phase', class: `rollout rollout-${view.rollout.phase}` }, view.rollout.phase), view.rollout.canary, view.rollout.generation === undefined ? '—' : String(view.rollout.generation), view.rollout.held.join(', '), timeAgo(view.rollout.startedAt), view.rollout.reason ? expandable('rollout', view.rollout.reason, 120) : '—']],
          ),
    ),
    section(
      'Maintenance',
      'maintenance',
      view.maintenance.length === 0
        ? h('p', { class: 'muted' }, 'No VM in maintenance.')
        : table('Drains as the k3s server reports them', ['VM', 'Phase', 'Safe to take down', 'Pods left', 'Blocked pods', 'Message', 'Reported'], view.maintenance.map((m) => [m.vm, m.phase, m.safeToTakeDown ? 'yes' : 'no', String(m.remainingPods), m.blockedPods.join(', ') || '—', m.message, timeAgo(m.reportedAt)])),
    ),
    section(
      'Certificates',
      'certificates',
      view.certificates.length === 0
        ? h('p', { class: 'muted' }, 'No TLS host.')
        : table('Each TLS host\'s certificate, as its VM reports it', ['VM', 'Host', 'State', 'Detail', 'Reported'], view.certificates.map((c) => [c.vm, c.host, h('span', { class: `certificate certificate-${c.state}` }, c.state), certificateDetail(c), timeAgo(c.reportedAt)])),
    ),
    section(
      'Kubeconfigs',
      'kubeconfigs',
      view.kubeconfigs.length === 0 && view.pendingKubeconfigRequests.length === 0
        ? h('p', { class: 'muted' }, 'None issued.')
        : table(
            'Issued kubeconfigs (the portal hands them out; none is shown here)',
            ['User', 'Issued', 'Expires'],
            [...view.kubeconfigs.map((k) => [k.user, timeAgo(k.issuedAt), h('time', { datetime: k.expiresAt }, new Date(k.expiresAt).toLocaleString())]), ...view.pendingKubeconfigRequests.map((p) => [p.user, h('span', { class: 'muted' }, 'requested ', timeAgo(p.requestedAt)), '—'])],
          ),
    ),
    dashboardSection(view),
  ];
  return h('div', { class: 'group' }, ...parts);
}

function drawOverview(groups: ReadonlyArray<{ name: string; view: StatusView | undefined; error: string | undefined }>, total: number): HTMLElement {
  const now = new Date();
  const rows = groups.map(({ name, view, error }) => {
    const glance = view ? statusGlance(view, now) : undefined;
    return [
      h('a', { href: fill(paths.page, name) }, name),
      glance ? badge('sync', glance.sync) : (error ?? '—'),
      glance ? badge('health', glance.health) : '—',
      view ? String(view.documents.length) : '—',
      view ? timeAgo(view.updatedAt) : '—',
    ];
  });
  return h(
    'div',
    {},
    h('h1', {}, 'Resource groups'),
    groups.length === 0
      ? h('p', { class: 'muted' }, 'No resource group has a status yet: send its events (npx ringmaster event send …).')
      : table('Every resource group at a glance', ['Resource group', 'Sync', 'Health', 'VMs', 'Status written'], rows, { id: 'group-table' }),
    total > groups.length && h('p', { class: 'muted' }, `Showing ${groups.length} of ${total} groups.`),
  );
}

// --- refreshing ----------------------------------------------------------------------------

const viewElement = document.getElementById('view')!;
const noticeElement = document.getElementById('notice')!;
const refreshElement = document.getElementById('refresh')!;
let lastDrawn = '';

function notice(text: string | undefined): void {
  noticeElement.hidden = text === undefined;
  noticeElement.textContent = text ?? '';
}

/** Replaces the view only when the data changed, keeping keyboard focus on the element it was on. */
function draw(key: string, make: () => HTMLElement): void {
  if (key === lastDrawn) return;
  lastDrawn = key;
  const focused = document.activeElement instanceof HTMLElement ? document.activeElement.closest('[data-key], a[href]') : null;
  const focusKey = focused?.getAttribute('data-key') ?? focused?.getAttribute('href') ?? undefined;
  viewElement.replaceChildren(make());
  if (focusKey) {
    const again = [...viewElement.querySelectorAll<HTMLElement>('[data-key], a[href]')].find((e) => (e.getAttribute('data-key') ?? e.getAttribute('href')) === focusKey);
    (again?.querySelector('summary') ?? again)?.focus();
  }
}

function explain(error: unknown): string {
  if (error instanceof ApiFailure && error.status === 401) return 'Not authorized: open this page with `npx ringmaster open`, which hands it the local API token.';
  if (error instanceof ApiFailure) return `The status API answered ${error.status}: ${error.message}`;
  return `Cannot reach the control plane (${error instanceof Error ? error.message : String(error)}); the last status stays shown.`;
}

async function refreshGroup(rg: string): Promise<void> {
  document.title = `${rg} · Ringmaster status`;
  try {
    const { text, value } = await getJson(fill(paths.status, rg));
    notice(undefined);
    draw(text, () => drawGroup(value as StatusView));
  } catch (error) {
    if (error instanceof ApiFailure && error.status === 404) {
      notice(undefined);
      draw('404', () => h('div', {}, h('h1', {}, 'Resource group ', h('span', { class: 'rg-name' }, rg)), h('p', {}, 'No status yet: no event of this group was processed.')));
    } else notice(explain(error));
  }
}

async function refreshOverview(): Promise<void> {
  try {
    const list = (await getJson(paths.list)).value as { resourceGroups: Array<{ name: string }> };
    const shown = list.resourceGroups.slice(0, OVERVIEW_LIMIT);
    const groups = await Promise.all(
      shown.map(async ({ name }) => {
        try {
          return { name, view: (await getJson(fill(paths.status, name))).value as StatusView, error: undefined };
        } catch (error) {
          return { name, view: undefined, error: error instanceof ApiFailure ? `status ${error.status}` : 'unreachable' };
        }
      }),
    );
    notice(undefined);
    draw(JSON.stringify(groups), () => drawOverview(groups, list.resourceGroups.length));
  } catch (error) {
    notice(explain(error));
  }
}

/** Times drawn as "… ago" move on between refreshes without redrawing anything else. */
function tickTimes(): void {
  const now = new Date();
  for (const element of document.querySelectorAll<HTMLElement>('[data-ago]')) element.textContent = ago(element.dataset.ago!, now);
}

async function refresh(): Promise<void> {
  const rg = groupOfPath();
  await (rg === undefined ? refreshOverview() : refreshGroup(rg));
  tickTimes();
  refreshElement.textContent = `Refreshed ${new Date().toLocaleTimeString()} · every ${POLL_MS / 1000} s`;
}

async function poll(): Promise<void> {
  await refresh();
  setTimeout(() => void poll(), POLL_MS);
}

// A URL with a token pasted into a tab already showing the page changes only the fragment: no reload.
window.addEventListener('hashchange', () => {
  takeTokenFromFragment();
  void refresh();
});
takeTokenFromFragment();
void poll();
