/**
 * `ringmaster kubeconfig [USER]` on the k3s server: prints a kubeconfig for a user with
 * `sudo-srv` (default: the user who ran sudo), like the platform's `kubernetes-make-kubeconfig`
 * but with a token that expires and a server URL that works from outside the VM. Who may have
 * one, the TTL and the URL come from the document the agent last applied.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { describeApiError } from '../../agent/kubernetes/api-errors.ts';
import { ClusterAccess } from '../../agent/kubernetes/cluster-access.ts';
import { kubeconfigForUser } from '../../agent/kubernetes/server-tasks.ts';
import { parseStoredDocument } from '../../shared/contract/document-envelope.ts';
import { userSchema } from '../../shared/schema/user.ts';
import { fieldErrors } from '../../shared/schema/errors.ts';
import { InputError } from '../input.ts';
import { K3S_ADMIN_KUBECONFIG } from './agent.ts';

export interface KubeconfigFlags {
  readonly stateDir: string;
  readonly kubeconfig?: string;
}

export async function printKubeconfig(user: string | undefined, flags: KubeconfigFlags, out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const name = user ?? process.env.SUDO_USER ?? process.env.USER;
  const checked = userSchema.shape.name.safeParse(name);
  if (!checked.success) throw new InputError('ringmaster kubeconfig', fieldErrors(checked.error).map((e) => `USER: ${e.reason}`));
  const appliedPath = join(flags.stateDir, 'applied.json');
  let text: string;
  try {
    text = await readFile(appliedPath, 'utf8');
  } catch (error) {
    throw new InputError('ringmaster kubeconfig', [`--state-dir: ${appliedPath} cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}): is the agent running on this VM?`]);
  }
  const applied = parseStoredDocument(text);
  if ('reason' in applied) throw new InputError('ringmaster kubeconfig', [`${appliedPath}: ${applied.reason}`]);
  if (!applied.document.kubernetes) throw new InputError('ringmaster kubeconfig', [`${appliedPath}: this VM's applied document has no k3s server tasks: run this on the k3s server`]);
  const kubeConfig = new KubeConfig();
  const adminPath = flags.kubeconfig ?? process.env.RINGMASTER_KUBECONFIG ?? K3S_ADMIN_KUBECONFIG;
  try {
    kubeConfig.loadFromFile(adminPath);
  } catch (error) {
    throw new InputError('ringmaster kubeconfig', [`--kubeconfig: ${adminPath} cannot be read: ${(error as Error).message.split('\n')[0]}`]);
  }
  try {
    const issued = await kubeconfigForUser(applied.document.kubernetes, kubeConfig, new ClusterAccess(kubeConfig), applied.document.resourceGroup, checked.data);
    out.write(issued.kubeconfig);
    process.stderr.write(`kubeconfig for ${checked.data}: valid until ${issued.expiresAt}. Keep it secret: it grants full access to the cluster.\n`);
    return 0;
  } catch (error) {
    process.stderr.write(`ringmaster kubeconfig: ${describeApiError(error)}\n`);
    return 1;
  }
}
