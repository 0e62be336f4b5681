/**
 * Debian's mosquitto on 127.0.0.1, a broker nobody here wrote: for the MQTT push channel's tests
 * and benchmark. Its config file goes in `directory` with the given lines (say, users and an
 * ACL); it is up once it takes connections.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';

export interface Mosquitto {
  stop(): Promise<void>;
}

const accepts = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.end();
      resolve(true);
    }).on('error', () => resolve(false));
  });

export async function startMosquitto(directory: string, port: number, config: readonly string[] = ['allow_anonymous true']): Promise<Mosquitto> {
  mkdirSync(directory, { recursive: true });
  // mosquitto started as root runs as its own user: it must be able to read its files here.
  chmodSync(directory, 0o755);
  const file = join(directory, 'mosquitto.conf');
  writeFileSync(file, [`listener ${port} 127.0.0.1`, 'persistence false', ...config, ''].join('\n'));
  const broker = spawn('mosquitto', ['-c', file], { stdio: 'ignore' });
  for (const deadline = Date.now() + 10_000; !(await accepts(port)); await new Promise((resolve) => setTimeout(resolve, 50))) {
    if (Date.now() > deadline || broker.exitCode !== null) throw new Error('mosquitto did not start (is it installed?)');
  }
  return {
    stop: async () => {
      if (broker.exitCode !== null || broker.signalCode !== null) return;
      const exited = new Promise((resolve) => broker.once('exit', resolve));
      broker.kill('SIGTERM');
      await exited;
    },
  };
}
