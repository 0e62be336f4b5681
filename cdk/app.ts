/** The CDK app: `npx cdk synth` (offline; esbuild bundles the functions, no Docker). */
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { RingmasterStack } from './ringmaster-stack.ts';

const app = new App();
const stage = String(app.node.tryGetContext('ringmaster:stage') ?? 'dev');
const context = (key: string) => {
  const value: unknown = app.node.tryGetContext(key);
  return typeof value === 'string' && value !== '' ? value : undefined;
};
const acmeDirectory = context('ringmaster:acmeDirectory');
const acmeEmail = context('ringmaster:acmeEmail');
new RingmasterStack(app, `Ringmaster-${stage}`, {
  stage,
  // `-c ringmaster:acmeDirectory=staging -c ringmaster:acmeEmail=ops@example.com`; Let's Encrypt production by default.
  acme: { ...(acmeDirectory ? { directory: acmeDirectory } : {}), ...(acmeEmail ? { email: acmeEmail } : {}) },
  // Account and region from the deploying credentials; nothing hard-coded.
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
});
// cdk-nag's AWS Solutions rules run on every synth; acknowledgements (with reasons) are in the stack.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
