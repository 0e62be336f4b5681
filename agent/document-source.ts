/**
 * The agent's side of the store: its own document by conditional GET (a 304 costs nothing),
 * checked before anything is done with it, and its report.
 */
import { GetObjectCommand, PutObjectCommand, S3ServiceException, type S3Client } from '@aws-sdk/client-s3';
import { type AgentReportDraft, agentReportSchema } from '../shared/contract/agent-report.ts';
import { type StoredDocument, verifyStoredDocument } from '../shared/contract/document-envelope.ts';
import { storeKeys } from '../shared/contract/store-layout.ts';

export type Fetched = { kind: 'not-modified' } | { kind: 'missing' } | { kind: 'document'; document: StoredDocument; etag: string } | { kind: 'invalid'; reason: string; etag: string };

export interface Identity {
  readonly bucket: string;
  readonly resourceGroup: string;
  readonly vm: string;
}

export async function fetchDocument(client: S3Client, identity: Identity, etag: string | undefined): Promise<Fetched> {
  try {
    const result = await client.send(
      new GetObjectCommand({ Bucket: identity.bucket, Key: storeKeys.desired(identity.resourceGroup, identity.vm), ...(etag ? { IfNoneMatch: etag } : {}) }),
    );
    const body = (await result.Body?.transformToString('utf8')) ?? '';
    const checked = verifyStoredDocument(body, identity);
    return 'reason' in checked ? { kind: 'invalid', reason: checked.reason, etag: result.ETag ?? '' } : { kind: 'document', document: checked.document, etag: result.ETag ?? '' };
  } catch (error) {
    const status = error instanceof S3ServiceException ? error.$metadata.httpStatusCode : undefined;
    if (status === 304) return { kind: 'not-modified' };
    if (status === 404) return { kind: 'missing' };
    throw error;
  }
}

/** Writes the report, cut to the report schema's limits. */
export async function putReport(client: S3Client, identity: Identity, report: AgentReportDraft): Promise<void> {
  await client.send(
    new PutObjectCommand({
      Bucket: identity.bucket,
      Key: storeKeys.report(identity.resourceGroup, identity.vm),
      Body: JSON.stringify(agentReportSchema.parse(report)),
      ContentType: 'application/json',
    }),
  );
}
