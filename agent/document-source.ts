/**
 * The agent's side of the store: its own document by conditional GET (a 304 costs nothing)
 * and its report.
 */
import { GetObjectCommand, PutObjectCommand, S3ServiceException, type S3Client } from '@aws-sdk/client-s3';
import { type AgentReportDraft, agentReportSchema } from '../shared/contract/agent-report.ts';
import { storeKeys } from '../shared/contract/store-layout.ts';

/** What a poll brought: nothing new, no document at all, or a body to verify (the agent decides whether to trust it). */
export type Fetched = { kind: 'not-modified' } | { kind: 'missing' } | { kind: 'fetched'; body: string; etag: string };

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
    return { kind: 'fetched', body: (await result.Body?.transformToString('utf8')) ?? '', etag: result.ETag ?? '' };
  } catch (error) {
    const status = error instanceof S3ServiceException ? error.$metadata.httpStatusCode : undefined;
    if (status === 304) return { kind: 'not-modified' };
    if (status === 404) return { kind: 'missing' };
    throw error;
  }
}

/** Writes the report, cut to the report schema's limits. */
/**
 * A report write that has not finished by then is given up: reports are written one after the
 * other, and one stuck on a connection the store dropped (it went away mid-request) would hold
 * back every later report. The next report carries everything anyway.
 */
const REPORT_WRITE_TIMEOUT_MS = 10_000;

export async function putReport(client: S3Client, identity: Identity, report: AgentReportDraft): Promise<void> {
  await client.send(
    new PutObjectCommand({
      Bucket: identity.bucket,
      Key: storeKeys.report(identity.resourceGroup, identity.vm),
      Body: JSON.stringify(agentReportSchema.parse(report)),
      ContentType: 'application/json',
    }),
    { abortSignal: AbortSignal.timeout(REPORT_WRITE_TIMEOUT_MS) },
  );
}
