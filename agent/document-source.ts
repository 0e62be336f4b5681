/**
 * The agent's side of the store: its own document by conditional GET (a 304 costs nothing),
 * checked before anything is done with it, and its report.
 */
import { GetObjectCommand, PutObjectCommand, S3ServiceException, type S3Client } from '@aws-sdk/client-s3';
import { hasValidHash } from '../shared/hash.ts';
import { storeKeys } from '../shared/ports.ts';
import { vmDocumentSchema } from '../shared/schema/document.ts';
import { fieldErrors, formatFieldErrors } from '../shared/schema/errors.ts';
import type { AgentReport } from '../shared/state/report.ts';
import type { StoredDocument } from '../shared/state/reconcile.ts';
import { z } from 'zod';

export type Fetched = { kind: 'not-modified' } | { kind: 'missing' } | { kind: 'document'; document: StoredDocument; etag: string } | { kind: 'invalid'; reason: string; etag: string };

const storedDocumentSchema = vmDocumentSchema.extend({ generation: z.number().int().min(1) });

export interface Identity {
  readonly bucket: string;
  readonly resourceGroup: string;
  readonly vm: string;
}

/** Checks a fetched body: JSON, the document schema, every hash, and that it is this VM's. */
export function verifyDocument(body: string, identity: Identity): { document: StoredDocument } | { reason: string } {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch (error) {
    return { reason: `the document is not valid JSON: ${(error as Error).message}` };
  }
  const parsed = storedDocumentSchema.safeParse(value);
  if (!parsed.success) return { reason: `the document does not match the schema: ${formatFieldErrors(fieldErrors(parsed.error)).slice(0, 5).join('; ')}` };
  const document = parsed.data;
  if (document.resourceGroup !== identity.resourceGroup || document.vm !== identity.vm) {
    return { reason: `the document is for ${document.resourceGroup}/${document.vm}, not for ${identity.resourceGroup}/${identity.vm}` };
  }
  if (!hasValidHash(document)) return { reason: 'the document hash (or a file hash) does not match its content' };
  return { document };
}

export async function fetchDocument(client: S3Client, identity: Identity, etag: string | undefined): Promise<Fetched> {
  try {
    const result = await client.send(
      new GetObjectCommand({ Bucket: identity.bucket, Key: storeKeys.desired(identity.resourceGroup, identity.vm), ...(etag ? { IfNoneMatch: etag } : {}) }),
    );
    const body = (await result.Body?.transformToString('utf8')) ?? '';
    const checked = verifyDocument(body, identity);
    return 'reason' in checked ? { kind: 'invalid', reason: checked.reason, etag: result.ETag ?? '' } : { kind: 'document', document: checked.document, etag: result.ETag ?? '' };
  } catch (error) {
    const status = error instanceof S3ServiceException ? error.$metadata.httpStatusCode : undefined;
    if (status === 304) return { kind: 'not-modified' };
    if (status === 404) return { kind: 'missing' };
    throw error;
  }
}

export async function putReport(client: S3Client, identity: Identity, report: AgentReport): Promise<void> {
  await client.send(
    new PutObjectCommand({
      Bucket: identity.bucket,
      Key: storeKeys.report(identity.resourceGroup, identity.vm),
      Body: JSON.stringify(report),
      ContentType: 'application/json',
    }),
  );
}
