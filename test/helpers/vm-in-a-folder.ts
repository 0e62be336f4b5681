/**
 * A VM that lives in a folder, for tests and benchmarks with a real haproxy (and, if asked,
 * a real nginx): documents are rendered under the folder; systemd is stood in for by a script
 * that starts the daemon on its first "reload" and reloads it after that (haproxy through its
 * master socket, nginx by signal); other daemons are not run.
 */
import { execFileSync } from 'node:child_process';
import { type DaemonName, type Layout, layoutUnder } from '../../shared/layout.ts';

export interface FolderVm {
  readonly layout: Layout;
  /** haproxy's runtime (stats) socket, as the document names it. */
  readonly socket: string;
  /** Stops the haproxy the VM started, if any. */
  stopHaproxy(): void;
  /** Stops the nginx the VM started, if any. */
  stopNginx(): void;
}

export function vmInFolder(root: string, options: { nginx?: boolean } = {}): FolderVm {
  const master = `${root}/run/haproxy-master.sock`;
  const pidFile = `${root}/run/haproxy.pid`;
  const haproxyStartOrReload = [
    'sh',
    '-c',
    // The master re-executes itself on a reload, and its socket is gone for that moment: a reload
    // sent then (two reloads in quick succession, as a rollback makes) is tried again, and the
    // command returns once the master answers again (what systemd's reload job would wait for).
    `if [ -S ${master} ] && kill -0 "$(cat ${pidFile})" 2>/dev/null; then ` +
      `for i in $(seq 100); do echo reload | socat - UNIX-CONNECT:${master} >/dev/null 2>&1 && break; sleep 0.05; done; ` +
      `sleep 0.1; for i in $(seq 100); do echo 'show proc' | socat - UNIX-CONNECT:${master} 2>/dev/null | grep -q worker && exit 0; sleep 0.05; done; exit 1; ` +
      `else haproxy -W -D -S ${master} -p ${pidFile} -f ${root}/etc/haproxy/haproxy.cfg; fi`,
  ];
  // The pid file is where the rendered nginx.conf puts it; -e keeps nginx's early log in the folder too.
  const nginxPid = `${root}/run/nginx/nginx.pid`;
  const nginx = `nginx -e ${root}/var/log/nginx/error.log -c ${root}/etc/nginx/nginx.conf`;
  const nginxStartOrReload = ['sh', '-c', `if [ -s ${nginxPid} ] && kill -0 "$(cat ${nginxPid})" 2>/dev/null; then ${nginx} -s reload; else ${nginx}; fi`];
  const reload = (daemon: DaemonName): string[] => {
    if (daemon === 'haproxy') return haproxyStartOrReload;
    if (daemon === 'nginx' && options.nginx) return nginxStartOrReload;
    return ['true'];
  };
  const layout = layoutUnder(root, reload);
  return {
    layout,
    socket: layout.haproxySocket,
    stopHaproxy: () => {
      execFileSync('sh', ['-c', `kill "$(cat ${pidFile})" 2>/dev/null || true`]);
    },
    stopNginx: () => {
      execFileSync('sh', ['-c', `kill -QUIT "$(cat ${nginxPid})" 2>/dev/null || true`]);
    },
  };
}
