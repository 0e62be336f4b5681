/**
 * How the functions find their parts in AWS: environment variables the CDK app sets, checked
 * at cold start with a message that names the variable. The master key is read from Secrets
 * Manager (cached by Powertools Parameters), never from the environment.
 */
import { getSecret } from '@aws-lambda-powertools/parameters/secrets';
import { z } from 'zod';
import { S3Store } from '../../adapters/s3-store.ts';
import { SqsQueue } from '../../adapters/sqs-queue.ts';
import { fieldErrors, formatFieldErrors } from '../../shared/schema/errors.ts';
import type { DocumentSigner } from '../../shared/contract/document-envelope.ts';
import { documentSignerOf, readSigningCredentials } from '../../shared/contract/signing-credentials.ts';

const environmentSchema = z.object({
  RINGMASTER_BUCKET: z.string().min(3),
  RINGMASTER_QUEUE_URL: z.url(),
  RINGMASTER_DLQ_URL: z.url(),
  RINGMASTER_MASTER_KEY_SECRET: z.string().min(1).optional(),
  RINGMASTER_PUBLIC_URL: z.url().optional(),
  /** The secret holding the signing credentials (online key, delegation, root announcements): the renewer writes it, signers read it. */
  RINGMASTER_SIGNING_SECRET: z.string().min(1).optional(),
  /** The renewer's root KMS keys, comma-separated, oldest first: the last one is active. */
  RINGMASTER_ROOT_KEY_IDS: z
    .string()
    .transform((text) => text.split(',').map((id) => id.trim()).filter((id) => id !== ''))
    .pipe(z.array(z.string()).min(1, 'must name at least one KMS key'))
    .optional(),
  /** The event queue's maxReceiveCount: the reconciler dead-letters on that receive, with the reason. */
  RINGMASTER_MAX_RECEIVES: z.coerce.number().int().min(1).optional(),
  /** Generations of each VM's document kept in the audit trail (default 10). */
  RINGMASTER_HISTORY_DEPTH: z.coerce.number().int().min(1).max(1000).optional(),
  /** The account's IoT Core data endpoint: set, every document written is nudged to its VM over MQTT. */
  RINGMASTER_IOT_ENDPOINT: z.url().optional(),
  /** The ACME directory VMs order certificates from: a URL, or `production` / `staging` (Let's Encrypt; default production). */
  RINGMASTER_ACME_DIRECTORY: z.string().min(1).optional(),
  /** The ACME account's contact e-mail. */
  RINGMASTER_ACME_EMAIL: z.string().min(1).optional(),
  /** For S3-compatible stores that want path-style requests (endpoints come from AWS_ENDPOINT_URL_S3). */
  RINGMASTER_S3_FORCE_PATH_STYLE: z.enum(['true', 'false']).optional(),
});

export type AwsEnvironment = z.output<typeof environmentSchema>;

export function awsEnvironment(env: NodeJS.ProcessEnv = process.env): AwsEnvironment {
  const parsed = environmentSchema.safeParse(env);
  if (!parsed.success) throw new Error(`the function is misconfigured: ${formatFieldErrors(fieldErrors(parsed.error)).join('; ')}`);
  return parsed.data;
}

export const awsStore = (env: AwsEnvironment) =>
  new S3Store({ bucket: env.RINGMASTER_BUCKET, region: process.env.AWS_REGION, forcePathStyle: env.RINGMASTER_S3_FORCE_PATH_STYLE === 'true' });
export const awsQueue = (env: AwsEnvironment) => new SqsQueue({ queueUrl: env.RINGMASTER_QUEUE_URL, deadLetterQueueUrl: env.RINGMASTER_DLQ_URL, region: process.env.AWS_REGION });

/** The master key cluster secrets are derived from; cached for five minutes between invocations. */
export async function masterKey(env: AwsEnvironment): Promise<string> {
  if (!env.RINGMASTER_MASTER_KEY_SECRET) throw new Error('the function is misconfigured: RINGMASTER_MASTER_KEY_SECRET: is required');
  const value = await getSecret(env.RINGMASTER_MASTER_KEY_SECRET, { maxAge: 300 });
  if (typeof value !== 'string' || value.length < 32) throw new Error('the master key secret must be a string of at least 32 characters');
  return value;
}

let cachedSigner: DocumentSigner | undefined;

/**
 * What signs documents: the credentials the renewer keeps in Secrets Manager, cached for five
 * minutes (a renewal reaches every instance within that; the delegation it replaces holds for days).
 */
export async function awsDocumentSigner(env: AwsEnvironment): Promise<DocumentSigner> {
  if (!env.RINGMASTER_SIGNING_SECRET) throw new Error('the function is misconfigured: RINGMASTER_SIGNING_SECRET: is required');
  const value = await getSecret(env.RINGMASTER_SIGNING_SECRET, { maxAge: 300 });
  const credentials = readSigningCredentials(typeof value === 'string' ? value : undefined);
  if (!credentials) throw new Error(`no signing credentials in ${env.RINGMASTER_SIGNING_SECRET} yet: the renewer function makes them (at deploy and daily; invoke it to renew now)`);
  if (cachedSigner?.delegation.signature !== credentials.delegation.signature) cachedSigner = documentSignerOf(credentials);
  return cachedSigner;
}
