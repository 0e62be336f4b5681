#!/usr/bin/env node
/**
 * The `ringmaster` command. Runs on Node 24 (`npx ringmaster …` or the npm scripts pick the
 * project's pinned Node); the commands are thin shells around the core in ../shared.
 */
import { Command, CommanderError } from 'commander';
import { plan } from './commands/plan.ts';
import { InputError } from './input.ts';

const [major] = process.versions.node.split('.').map(Number);
if ((major ?? 0) < 24) {
  process.stderr.write(`ringmaster needs Node 24 or newer (this is ${process.version}); run it as "npx ringmaster" inside the project.\n`);
  process.exit(2);
}

const program = new Command()
  .name('ringmaster')
  .description('Control plane for per-resource-group k3s clusters')
  .exitOverride()
  .configureOutput({ writeErr: (text) => process.stderr.write(text) });

program
  .command('plan')
  .description('validate a resource group description (JSON or YAML) and compute every VM\'s document')
  .argument('<file>', 'resource group description, or - for standard input')
  .option('-o, --out <dir>', 'write one document per VM to DIR/<vm>.json (secrets included, mode 0600)')
  .option('--json', 'print findings and documents as JSON (secret contents redacted)')
  .option('--token-file <file>', 'the cluster token to use when the description carries none')
  .option('--root <dir>', 'render every path under DIR (dry runs and tests)')
  .action(async (file: string, options: { out?: string; json?: boolean; tokenFile?: string; root?: string }) => {
    process.exitCode = await plan(file, options);
  });

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof InputError) {
    process.stderr.write(`${error.lines.join('\n')}\n`);
    process.exitCode = 2;
  } else if (error instanceof CommanderError) {
    process.exitCode = error.exitCode === 0 ? 0 : 2;
  } else {
    throw error;
  }
}
