#!/usr/bin/env node
/**
 * The `ringmaster` command. Runs on Node 24 (`npx ringmaster …` or the npm scripts pick the
 * project's pinned Node); the commands are thin shells around the core in ../shared.
 */
import { routeKey } from '../shared/contract/routes.ts';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { ApiError, DEFAULT_DATA_DIR } from './api-client.ts';
import { DEFAULT_API_PORT, DEFAULT_S3_PORT } from '../local/ports.ts';
import { InputError } from './input.ts';

// Commands are loaded when used: the agent on a VM should not load the control plane (s3rver,
// the queue, the handlers) to poll one document.
const commands = {
  agent: () => import('./commands/agent.ts'),
  demo: () => import('./commands/demo.ts'),
  kubeconfig: () => import('./commands/kubeconfig.ts'),
  open: () => import('./commands/open.ts'),
  operator: () => import('./commands/operator.ts'),
  plan: () => import('./commands/plan.ts'),
  serve: () => import('./commands/serve.ts'),
};

const [major] = process.versions.node.split('.').map(Number);
if ((major ?? 0) < 24) {
  process.stderr.write(`ringmaster needs Node 24 or newer (this is ${process.version}); run it as "npx ringmaster" inside the project.\n`);
  process.exit(2);
}

// `ringmaster plan … | head`: the reader has all it wants once it closes the pipe. Stop quietly,
// as Unix tools do, instead of failing with a stack trace.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
  process.exit(process.exitCode ?? 0);
});

function portNumber(value: string): number {
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65535) throw new InvalidArgumentError('must be a port number from 0 to 65535 (0 picks a free one)');
  return Number(value);
}

function historyDepth(value: string): number {
  if (!/^\d{1,4}$/.test(value) || Number(value) < 1 || Number(value) > 1000) throw new InvalidArgumentError('must be a whole number from 1 to 1000');
  return Number(value);
}

function httpUrl(value: string): string {
  try {
    const url = new URL(value);
    if (url.protocol === 'http:' || url.protocol === 'https:') return value;
  } catch {
    // fall through
  }
  throw new InvalidArgumentError('must be an http:// or https:// URL');
}

function mqttUrl(value: string): string {
  try {
    const url = new URL(value);
    if (['mqtt:', 'mqtts:', 'ws:', 'wss:'].includes(url.protocol) && url.hostname) return value;
  } catch {
    // fall through
  }
  throw new InvalidArgumentError('must be an mqtt://, mqtts://, ws:// or wss:// URL of a broker');
}
/** Where VMs order TLS certificates: the same flags for `plan` and `serve`, checked by the command (errors name the flag). */
const ACME_DIRECTORY_OPTION = ['--acme-directory <url>', "ACME directory VMs order TLS certificates from: a URL, or production / staging (Let's Encrypt) (default: $RINGMASTER_ACME_DIRECTORY, else production)"] as const;
const ACME_EMAIL_OPTION = ['--acme-email <address>', "the ACME account's contact e-mail (default: $RINGMASTER_ACME_EMAIL)"] as const;

const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'];

const program = new Command()
  .name('ringmaster')
  .description('Control plane for per-resource-group k3s clusters')
  .addOption(new Option('--log-level <level>', 'what the control plane and the agent log (default: $RINGMASTER_LOG_LEVEL, else info); debug adds every nudge and poll').choices(LOG_LEVELS))
  .exitOverride()
  .configureOutput({ writeErr: (text) => process.stderr.write(text) })
  // Before any command makes its logger (they read the level when they are made).
  .hook('preAction', (command) => {
    const level = command.opts<{ logLevel?: string }>().logLevel;
    if (level) process.env.RINGMASTER_LOG_LEVEL = level.toUpperCase();
  });

program
  .command('plan')
  .description("validate a resource group description (JSON or YAML) and compute every VM's document")
  .argument('<file>', 'resource group description, or - for standard input')
  .option('-o, --out <dir>', 'write one document per VM to DIR/<vm>.json (secrets included, mode 0600)')
  .option('--json', 'print findings and documents as JSON (secret contents redacted)')
  .option('--token-file <file>', 'the cluster token to use when the description carries none')
  .option('--root <dir>', 'render every path under DIR (dry runs and tests)')
  .option(...ACME_DIRECTORY_OPTION)
  .option(...ACME_EMAIL_OPTION)
  .action(async (file: string, options: { out?: string; json?: boolean; tokenFile?: string; root?: string; acmeDirectory?: string; acmeEmail?: string }) => {
    process.exitCode = await (await commands.plan()).plan(file, options);
  });

program
  .command('serve')
  .description('run the whole control plane on this machine (HTTP API, queue, reconciler, S3 endpoint), on 127.0.0.1')
  .option('--data-dir <dir>', 'where queue, objects and credentials live', DEFAULT_DATA_DIR)
  .option('--api-port <port>', 'HTTP API port', portNumber, DEFAULT_API_PORT)
  .option('--s3-port <port>', 'S3 endpoint port', portNumber, DEFAULT_S3_PORT)
  .option('--public-url <url>', 'the URL clusters reach the API at (webhook URLs), if not loopback', httpUrl)
  .option('--ready-file <file>', 'write the connection details as JSON (mode 0600) once ready')
  .option('--show-credentials', 'print the API token and S3 secret, not just where they are')
  .option('--history-depth <n>', "generations of each VM's document kept in the audit trail (ringmaster history)", historyDepth, 10)
  .option('--sandbox-root <dir>', 'sandboxed VMs: render each VM\'s paths under DIR/<rg>/<vm> (run its agent there with --service-manager sandbox)')
  .option('--mqtt-url <url>', 'also publish nudges on this MQTT broker, each VM on its own topic (account: $RINGMASTER_MQTT_USERNAME, $RINGMASTER_MQTT_PASSWORD)', mqttUrl)
  .option(...ACME_DIRECTORY_OPTION)
  .option(...ACME_EMAIL_OPTION)
  .action(async (options: { dataDir: string; apiPort: number; s3Port: number; publicUrl?: string; readyFile?: string; showCredentials?: boolean; historyDepth: number; sandboxRoot?: string; mqttUrl?: string; acmeDirectory?: string; acmeEmail?: string }) => {
    await (await commands.serve()).serve(options);
  });

program
  .command('demo')
  .description("the whole product on this machine: control plane, the reference architecture's VMs sandboxed (real haproxy, nginx, PostgreSQL), pods, until all is in sync; Ctrl-C stops it all")
  .option('--data-dir <dir>', 'an empty or new folder for everything (default: a new one in the temp folder, removed on stop)')
  .option('--keep', 'keep the data folder after stopping')
  .option('--api-port <port>', 'HTTP API port (default: a free one)', portNumber)
  .action(async (options: { dataDir?: string; keep?: boolean; apiPort?: number }) => {
    process.exitCode = await (await commands.demo()).runDemo(options);
  });

const connection = (command: Command) =>
  command
    .addOption(new Option('--api-url <url>', 'control plane API (default: $RINGMASTER_API_URL or the local one)').argParser(httpUrl))
    .option('--token <token>', 'API token (default: $RINGMASTER_TOKEN or the local credentials file)')
    .addOption(new Option('--aws-region <region>', 'sign with AWS credentials (IAM, SigV4) for a control plane in AWS').argParser((value: string) => {
      if (!/^[a-z0-9-]{2,32}$/.test(value)) throw new InvalidArgumentError('must be a region name such as eu-central-1');
      return value;
    }))
    .option('--data-dir <dir>', 'local data folder to read the token from', DEFAULT_DATA_DIR)
    .option('--json', 'print JSON for scripts');

program
  .command('agent-credentials')
  .description("store credentials for one VM's agent on the local control plane: read its document, write its report, nothing else")
  .argument('<rg>', 'resource group')
  .argument('<vm>', 'VM name')
  .option('--data-dir <dir>', 'the local data folder', DEFAULT_DATA_DIR)
  .action(async (rg: string, vm: string, options: { dataDir: string }) => {
    process.exitCode = (await commands.serve()).printAgentCredentials(rg, vm, options.dataDir);
  });

program
  .command('roots')
  .description('the local root keys agents trust: list them, add the next one, retire an old one (rotation)')
  .argument('<action>', 'list | add | retire')
  .argument('[key-id]', 'the root to retire')
  .option('--data-dir <dir>', 'the local data folder', DEFAULT_DATA_DIR)
  .action(async (action: string, keyId: string | undefined, options: { dataDir: string }) => {
    if (action !== 'list' && action !== 'add' && action !== 'retire') throw new InputError('ringmaster roots', [`action "${action}" must be list, add or retire`]);
    process.exitCode = (await commands.serve()).manageRoots(action, options.dataDir, keyId);
  });

program
  .command('agent')
  .description('the pull agent of one VM: fetch its document, verify, apply, report')
  .option('--resource-group <rg>', 'resource group (default: $RINGMASTER_RESOURCE_GROUP)')
  .option('--vm <name>', 'this VM (default: $RINGMASTER_VM)')
  .option('--endpoint <url>', 'S3-compatible endpoint, path-style (default: $RINGMASTER_S3_ENDPOINT, else AWS S3)')
  .option('--bucket <name>', 'bucket (default: $RINGMASTER_BUCKET)')
  .option('--region <region>', 'region (default: $AWS_REGION or us-east-1)')
  .option('--root <dir>', 'prefix for every path written (tests and dry runs); with the sandbox: the VM\'s folder, which its documents are rendered for', '/')
  .option('--state-dir <dir>', 'where the last applied document is kept (default: /var/lib/ringmaster-agent, under --root in a sandbox)')
  .addOption(new Option('--service-manager <kind>', 'systemd: a real VM; sandbox: the agent runs haproxy, nginx and PostgreSQL itself under --root (k3s is not run)').choices(['systemd', 'sandbox']).default('systemd'))
  .option('--once', 'poll once, apply, report, and exit (code 1 when the apply failed)')
  .option('--kubeconfig <file>', `on the k3s server: the cluster admin's kubeconfig (default: $RINGMASTER_KUBECONFIG or /etc/rancher/k3s/k3s.yaml)`)
  .option('--trust-key <key...>', "the control plane's root public key(s), base64 (default: $RINGMASTER_TRUSTED_KEYS, comma-separated); documents not signed under one are refused")
  .option('--push-url <url>', 'the control plane to hear "your document changed" from (default: $RINGMASTER_PUSH_URL; unset: polling only)')
  .option('--push-mqtt-url <url>', 'or an MQTT broker (AWS IoT Core: mqtts://<endpoint>:8883) to hear it from (default: $RINGMASTER_PUSH_MQTT_URL; password for a local broker: $RINGMASTER_MQTT_PASSWORD)')
  .option('--mqtt-cert <file>', "this VM's certificate for the broker (AWS IoT), PEM")
  .option('--mqtt-key <file>', "this VM's private key for the broker, PEM")
  .option('--mqtt-ca <file>', "the CA the broker's certificate chains to, PEM")
  .action(async (options) => {
    process.exitCode = await (await commands.agent()).runAgent(options);
  });

program
  .command('kubeconfig')
  .description('on the k3s server: print a kubeconfig for a user with sudo-srv (default: the user who ran sudo); its token expires')
  .argument('[user]', 'login name (default: $SUDO_USER, else $USER)')
  .option('--state-dir <dir>', "the agent's state folder (its last applied document)", '/var/lib/ringmaster-agent')
  .option('--kubeconfig <file>', "the cluster admin's kubeconfig (default: $RINGMASTER_KUBECONFIG or /etc/rancher/k3s/k3s.yaml)")
  .action(async (user: string | undefined, options: { stateDir: string; kubeconfig?: string }) => {
    process.exitCode = await (await commands.kubeconfig()).printKubeconfig(user, options);
  });

const event = program.command('event').description('portal events');
connection(event.command('send').description(`send events (one or a list; JSON or YAML) to ${routeKey('postEvents')}`).argument('<file>', 'events file, or - for standard input')).action(
  async (file: string, options) => {
    process.exitCode = await (await commands.operator()).sendEvents(file, options);
  },
);
connection(program.command('status').description("a resource group's findings, documents and agents' reports").argument('<rg>', 'resource group'))
  .option('--wide', 'whole errors, however wide the table gets (default: cut to the terminal with …)')
  .action(async (rg: string, options) => {
  process.exitCode = await (await commands.operator()).showStatus(rg, options);
});
connection(program.command('history').description(`which events produced which generation of each VM's document, and what its agent reported (${routeKey('getResourceGroupHistory')})`).argument('<rg>', 'resource group').argument('[vm]', 'only this VM')).action(
  async (rg: string, vm: string | undefined, options) => {
    process.exitCode = await (await commands.operator()).showHistory(rg, vm, options);
  },
);
connection(program.command('open').description('the status page of the local control plane (prints its URL with the API token in the fragment, and opens a browser when there is a display)').argument('[rg]', 'a resource group (default: all of them)'))
  .option('--print', 'only print the URL')
  .action(async (rg: string | undefined, options) => {
    process.exitCode = await (await commands.open()).openPage(rg, options);
  });
const dlq = program.command('dlq').description('events that could not be processed');
connection(dlq.command('list').description('list dead letters with their reasons')).action(async (options) => {
  process.exitCode = await (await commands.operator()).listDeadLetters(options);
});
connection(dlq.command('replay').description('send dead letters back to the queue (all, or the given ids)').argument('[ids...]', 'event ids')).action(async (ids: string[], options) => {
  process.exitCode = await (await commands.operator()).replayDeadLetters(ids, options);
});

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof InputError) {
    process.stderr.write(`${error.lines.join('\n')}\n`);
    process.exitCode = 2;
  } else if (error instanceof ApiError) {
    process.stderr.write(`${error.message}\n`);
    process.exitCode = error.status >= 400 && error.status < 500 ? 2 : 1;
  } else if (error instanceof CommanderError) {
    process.exitCode = error.exitCode === 0 ? 0 : 2;
  } else {
    throw error;
  }
}
