/**
 * The ObjectStore port on any S3-compatible endpoint (AWS S3, Ceph RGW, MinIO, the embedded
 * s3rver): endpoint, region, path style and credentials are configuration. Conditional writes
 * are sent where asked; stores that ignore them still work, because one writer per resource
 * group is guaranteed by the queue.
 */
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { type ObjectStore, PreconditionFailed, type PutOptions, type StoredObject } from '../shared/ports.ts';

export interface S3StoreConfig {
  readonly bucket: string;
  readonly endpoint?: string;
  readonly region?: string;
  readonly forcePathStyle?: boolean;
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string; readonly sessionToken?: string };
}

export function s3Client(config: S3StoreConfig): S3Client {
  return new S3Client({
    region: config.region ?? 'us-east-1',
    ...(config.endpoint ? { endpoint: config.endpoint } : {}),
    forcePathStyle: config.forcePathStyle ?? Boolean(config.endpoint),
    ...(config.credentials ? { credentials: config.credentials } : {}),
    // Some S3-compatible stores keep aws-chunked framing of streamed checksums in the object.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

const status = (error: unknown): number | undefined => (error instanceof S3ServiceException ? error.$metadata.httpStatusCode : undefined);

export class S3Store implements ObjectStore {
  readonly client: S3Client;
  readonly bucket: string;

  constructor(config: S3StoreConfig, client: S3Client = s3Client(config)) {
    this.client = client;
    this.bucket = config.bucket;
  }

  async get(key: string): Promise<StoredObject | undefined> {
    try {
      const result = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      return { body: (await result.Body?.transformToString('utf8')) ?? '', etag: result.ETag ?? '' };
    } catch (error) {
      if (status(error) === 404) return undefined;
      throw error;
    }
  }

  async put(key: string, body: string, options: PutOptions = {}): Promise<{ etag: string }> {
    try {
      const result = await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: body,
          ContentType: options.contentType ?? 'application/json',
          ...(options.ifMatch ? { IfMatch: options.ifMatch } : {}),
          ...(options.ifNoneMatch ? { IfNoneMatch: options.ifNoneMatch } : {}),
        }),
      );
      return { etag: result.ETag ?? '' };
    } catch (error) {
      if (status(error) === 412 || status(error) === 409) throw new PreconditionFailed(key);
      throw error;
    }
  }

  async delete(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
  }

  async list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) }));
      for (const item of page.Contents ?? []) if (item.Key) keys.push(item.Key);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return keys;
  }
}
