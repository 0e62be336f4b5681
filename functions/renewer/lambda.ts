/** AWS Lambda entry of the `renewer` function, run daily by an EventBridge schedule (see the CDK app). */
import { KMSClient } from '@aws-sdk/client-kms';
import { GetSecretValueCommand, PutSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { kmsRootSigner } from '../../adapters/kms-root-signer.ts';
import { awsEnvironment } from '../shared/aws-environment.ts';
import { createLogger } from '../shared/logger.ts';
import { createRenewerHandler } from './handler.ts';

const env = awsEnvironment();
if (!env.RINGMASTER_SIGNING_SECRET || !env.RINGMASTER_ROOT_KEY_IDS) throw new Error('the function is misconfigured: RINGMASTER_SIGNING_SECRET and RINGMASTER_ROOT_KEY_IDS are required');
const secret = env.RINGMASTER_SIGNING_SECRET;
const rootKeyIds = env.RINGMASTER_ROOT_KEY_IDS;
const secrets = new SecretsManagerClient({ region: process.env.AWS_REGION });
const kms = new KMSClient({ region: process.env.AWS_REGION });

export const handler = createRenewerHandler({
  // Read fresh, not cached: the chain of announcements must be the latest one.
  read: async () => (await secrets.send(new GetSecretValueCommand({ SecretId: secret }))).SecretString,
  write: async (text) => void (await secrets.send(new PutSecretValueCommand({ SecretId: secret, SecretString: text }))),
  roots: () => Promise.all(rootKeyIds.map((id) => kmsRootSigner(kms, id))),
  logger: createLogger('ringmaster-renewer'),
});
