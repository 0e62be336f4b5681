/**
 * A VM that lives in a folder, for tests and benchmarks with a real haproxy: documents are
 * rendered under the folder, haproxy is started (master-worker) on the first "reload" and
 * reloaded through its master socket after that; other daemons are not run.
 */
import { execFileSync } from 'node:child_process';
import { type Layout, layoutUnder } from '../../shared/layout.ts';

export interface FolderVm {
  readonly layout: Layout;
  /** haproxy's runtime (stats) socket, as the document names it. */
  readonly socket: string;
  /** Stops the haproxy the VM started, if any. */
  stopHaproxy(): void;
}

export function vmInFolder(root: string): FolderVm {
  const master = `${root}/run/haproxy-master.sock`;
  const pidFile = `${root}/run/haproxy.pid`;
  const startOrReload = [
    'sh',
    '-c',
    `if [ -S ${master} ] && kill -0 "$(cat ${pidFile})" 2>/dev/null; then echo reload | socat - UNIX-CONNECT:${master}; else haproxy -W -D -S ${master} -p ${pidFile} -f ${root}/etc/haproxy/haproxy.cfg; fi`,
  ];
  const layout = layoutUnder(root, (daemon) => (daemon === 'haproxy' ? startOrReload : ['true']));
  return {
    layout,
    socket: layout.haproxySocket,
    stopHaproxy: () => {
      execFileSync('sh', ['-c', `kill "$(cat ${pidFile})" 2>/dev/null || true`]);
    },
  };
}
