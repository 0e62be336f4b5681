/**
 * nginx.conf for the webgateway's virtual hosts (scenario 1: `forceSSL`,
 * `locations."/".proxyPass`) and the k3s server's dashboard. Certificates come from ACME
 * into `<acmeDir>/<host>/`; port 80 keeps answering ACME challenges when SSL is forced.
 */
import { compareText } from '../compare.ts';
import type { Layout } from '../layout.ts';
import { parseBind } from '../schema/bind.ts';
import type { Frontend } from '../schema/frontend.ts';
import { hostPort } from '../topology.ts';

export interface VirtualHost {
  readonly serverName: string;
  readonly forceSSL: boolean;
  /** Listen addresses; empty means every address. */
  readonly addresses: readonly string[];
  readonly locations: ReadonlyArray<{ path: string; proxyPass: string; allow?: readonly string[] }>;
}

const PROXY_HEADERS = [
  'proxy_http_version 1.1;',
  'proxy_set_header Host $host;',
  'proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;',
  'proxy_set_header X-Forwarded-Proto $scheme;',
  'proxy_set_header Upgrade $http_upgrade;',
  'proxy_set_header Connection $connection_upgrade;',
];

/**
 * Where `forceSSL` without an explicit location sends traffic: the frontend's first bind; a bind
 * on every address is reached at `local` (the VM's loopback; a sandboxed VM's own address, as
 * its haproxy does not listen on the machine's loopback).
 */
export function defaultProxyPass(frontend: Frontend, local = '127.0.0.1'): string {
  const bind = parseBind(frontend.binds[0] ?? '');
  if (typeof bind === 'string') return `http://${local}`;
  return `http://${hostPort(bind.address ?? local, bind.port)}`;
}

export function frontendVirtualHosts(frontends: readonly Frontend[], addresses: readonly string[], local?: string): VirtualHost[] {
  return frontends.flatMap((frontend) =>
    Object.entries(frontend.virtualHosts)
      .sort(([a], [b]) => compareText(a, b))
      .map(([serverName, vhost]) => ({
        serverName,
        forceSSL: vhost.forceSSL,
        addresses,
        locations: Object.entries(vhost.locations ?? { '/': {} })
          .sort(([a], [b]) => compareText(a, b))
          .map(([path, location]) => ({ path, proxyPass: location.proxyPass ?? defaultProxyPass(frontend, local) })),
      })),
  );
}

/** Where nginx reads a TLS host's certificate and key; the document's `certificates` name the same files. */
export function certificateFiles(host: string, layout: Layout): { certificateFile: string; keyFile: string } {
  const dir = `${layout.acmeDir}/${host}`;
  return { certificateFile: `${dir}/fullchain.pem`, keyFile: `${dir}/key.pem` };
}

/** The hosts nginx serves over TLS: each needs a certificate before nginx accepts the config. */
export function tlsHosts(vhosts: readonly VirtualHost[]): string[] {
  return [...new Set(vhosts.filter((vhost) => vhost.forceSSL).map((vhost) => vhost.serverName))];
}

function listen(addresses: readonly string[], port: number, ssl: boolean): string[] {
  const suffix = ssl ? ' ssl' : '';
  if (addresses.length === 0) return [`listen ${port}${suffix};`, `listen [::]:${port}${suffix};`];
  return addresses.map((address) => `listen ${hostPort(address, port)}${suffix};`);
}

function locationBlock(location: VirtualHost['locations'][number]): string[] {
  const access = location.allow ? [...location.allow.map((net) => `allow ${net};`), 'deny all;'] : [];
  // Upstreams behind https here are in-cluster (the dashboard) with self-signed certificates.
  const tls = location.proxyPass.startsWith('https:') ? ['proxy_ssl_verify off;'] : [];
  return [`location ${location.path} {`, ...[...access, `proxy_pass ${location.proxyPass};`, ...PROXY_HEADERS, ...tls].map((l) => `    ${l}`), '}'];
}

function serverBlock(lines: string[]): string[] {
  return ['server {', ...lines.map((line) => (line ? `    ${line}` : line)), '}'];
}

function virtualHostBlocks(vhost: VirtualHost, layout: Layout): string[] {
  const acme = ['location /.well-known/acme-challenge/ {', `    root ${layout.acmeWebroot};`, '}'];
  const locations = vhost.locations.flatMap(locationBlock);
  if (!vhost.forceSSL) {
    return serverBlock([...listen(vhost.addresses, 80, false), `server_name ${vhost.serverName};`, ...acme, ...locations]);
  }
  const { certificateFile, keyFile } = certificateFiles(vhost.serverName, layout);
  return [
    ...serverBlock([...listen(vhost.addresses, 80, false), `server_name ${vhost.serverName};`, ...acme, 'location / {', '    return 301 https://$host$request_uri;', '}']),
    ...serverBlock([
      ...listen(vhost.addresses, 443, true),
      `server_name ${vhost.serverName};`,
      `ssl_certificate ${certificateFile};`,
      `ssl_certificate_key ${keyFile};`,
      'add_header Strict-Transport-Security "max-age=31536000" always;',
      ...locations,
    ]),
  ];
}

export function renderNginx(vhosts: readonly VirtualHost[], layout: Layout): string {
  const temp = layout.nginxTempDir;
  const http = [
    'default_type application/octet-stream;',
    `access_log ${layout.nginxLogDir}/access.log;`,
    'server_tokens off;',
    'client_max_body_size 64m;',
    `client_body_temp_path ${temp}/client_body;`,
    `proxy_temp_path ${temp}/proxy;`,
    `fastcgi_temp_path ${temp}/fastcgi;`,
    `uwsgi_temp_path ${temp}/uwsgi;`,
    `scgi_temp_path ${temp}/scgi;`,
    'map $http_upgrade $connection_upgrade {',
    '    default upgrade;',
    "    '' close;",
    '}',
    ...vhosts.flatMap((vhost) => ['', ...virtualHostBlocks(vhost, layout)]),
  ];
  return [
    '# Managed by Ringmaster: changes here are overwritten.',
    'worker_processes auto;',
    `pid ${layout.nginxRunDir}/nginx.pid;`,
    `error_log ${layout.nginxLogDir}/error.log warn;`,
    'events {',
    '    worker_connections 1024;',
    '}',
    'http {',
    ...http.map((line) => (line ? `    ${line}` : line)),
    '}',
    '',
  ].join('\n');
}
