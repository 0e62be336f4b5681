/**
 * The embedded S3-compatible endpoint of the local control plane: s3rver on 127.0.0.1,
 * objects under a local folder (they survive restarts), requests signed with the
 * credentials we give it.
 *
 * Changes to s3rver's behaviour (pinned at 3.7.1), each covered by tests:
 * - it serves unsigned requests in full and, for signed ones, checks only that the access key
 *   id exists, never the signature. Here every request must carry a valid Signature Version 4
 *   from a known principal, and the principal must be allowed the request (an agent reads
 *   only its own document and writes only its own report); s3rver then serves it;
 * - it writes an object in place (truncate, then write, not even awaited), so a reader can
 *   see half a document and a crash can leave one behind. Writes here go to a temporary file
 *   that is fsynced and renamed over the object: after a crash the object is whole. The
 *   checksum file (the ETag) is removed first and written after;
 * - it ignores conditional writes; here `If-None-Match: *` and `If-Match` on PUT answer 412
 *   like S3 when they do not hold;
 * - it reads the size and the content through two opens of the path (a rename in between
 *   mixes versions) and leaves the file open when it answers 304 (a descriptor leaked per
 *   conditional poll). Reads here take the ETag first, then read the content through one
 *   descriptor and close it: a reader gets one version whole, and never old content under
 *   a new ETag (which would make an agent's conditional GET answer 304 for good);
 * - for listings, it writes the checksum file when it finds none, from the content it read:
 *   in the middle of a put, the old content's MD5 over the new one's. Here metadata is read
 *   the way GET reads, and never written.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import S3rver from 's3rver';
import { verifySigV4 } from './sigv4-verifier.ts';

interface StoredObjectInput {
  bucket: string;
  key: string;
  content: Buffer | Readable;
  metadata: Record<string, string>;
}

interface GetOptions {
  start?: number;
  end?: number;
}

interface FilesystemStore {
  getResourcePath(bucket: string, key: string, resource: string): string;
  putObject(object: StoredObjectInput): Promise<{ size: number; md5: string }>;
  getObject(bucket: string, key: string, options?: GetOptions): Promise<unknown>;
  getMetadata(bucket: string, key: string): Promise<Record<string, string | number>>;
}

type S3ObjectClass = new (bucket: string, key: string, content: Readable | null, metadata: Record<string, string | number>) => { range?: { start: number; end: number } };

const require = createRequire(import.meta.url);
const S3Object = require('s3rver/lib/models/object') as S3ObjectClass & { ALLOWED_METADATA: string[] };
const ALLOWED_METADATA = S3Object.ALLOWED_METADATA;

async function readIfExists(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

interface KoaContext {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  query: Record<string, string | string[]>;
  status: number;
  type: string;
  body: string;
}

function refuse(ctx: KoaContext, code: string, message: string, status = 403): void {
  ctx.status = status;
  ctx.type = 'application/xml';
  ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message.replace(/[<&>]/g, '')}</Message></Error>`;
}

/** The ETag s3rver would answer for an object: its MD5, from the checksum file or the content. */
async function currentEtag(store: FilesystemStore, bucket: string, key: string): Promise<string | undefined> {
  const objectPath = store.getResourcePath(bucket, key, 'object');
  const md5 = (await readIfExists(`${objectPath}.md5`))?.toString();
  if (md5) return JSON.stringify(md5);
  const content = await readIfExists(objectPath);
  return content ? JSON.stringify(createHash('md5').update(content).digest('hex')) : undefined;
}

/**
 * Conditional writes as S3 has them (s3rver ignores them): `If-None-Match: *` and `If-Match`
 * on PUT answer 412 when they do not hold. Writes of one key are serialized in this process,
 * so the check and the write are one step.
 */
function conditionalWrites(bucket: string, store: FilesystemStore) {
  const locks = new Map<string, Promise<void>>();
  return async (ctx: KoaContext, next: () => Promise<void>): Promise<void> => {
    const ifMatch = ctx.headers['if-match'];
    const ifNoneMatch = ctx.headers['if-none-match'];
    if (ctx.method !== 'PUT' || (ifMatch === undefined && ifNoneMatch === undefined)) return next();
    const [, , ...rest] = ctx.path.split('/');
    const key = decodeURIComponent(rest.join('/'));
    const previous = locks.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const chained = previous.then(() => mine);
    locks.set(key, chained);
    await previous;
    try {
      const etag = await currentEtag(store, bucket, key);
      const fails = (ifNoneMatch === '*' && etag !== undefined) || (typeof ifMatch === 'string' && ifMatch !== etag);
      if (fails) {
        ctx.status = 412;
        ctx.type = 'application/xml';
        ctx.body = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>PreconditionFailed</Code><Message>At least one of the preconditions you specified did not hold.</Message></Error>';
        return;
      }
      await next();
    } finally {
      release();
      if (locks.get(key) === chained) locks.delete(key);
    }
  };
}

/** Checks signature and permission; what passes is handed to s3rver as an anonymous request. */
function requireSignature(bucket: string, principalOf: EmbeddedS3Options['principal']) {
  return async (ctx: KoaContext, next: () => Promise<void>): Promise<void> => {
    if ('X-Amz-Algorithm' in ctx.query || 'Signature' in ctx.query) return refuse(ctx, 'AccessDenied', 'presigned URLs are not accepted: sign the request headers');
    let principal: Principal | undefined;
    const verdict = await verifySigV4({ method: ctx.method, path: ctx.path, query: ctx.query, headers: ctx.headers }, (id) => {
      principal = principalOf(id);
      return principal?.secretAccessKey;
    });
    if (!verdict.ok) return refuse(ctx, verdict.code, verdict.message);
    const [, pathBucket = '', ...rest] = ctx.path.split('/');
    let key: string | undefined;
    try {
      key = rest.length > 0 && rest.join('/') !== '' ? decodeURIComponent(rest.join('/')) : undefined;
    } catch {
      return refuse(ctx, 'AccessDenied', 'the object key is not valid percent-encoding');
    }
    // s3rver keeps objects as files named by their keys: a `.` or `..` segment (or a NUL) would
    // reach outside the bucket's folder. S3 keys never address anything outside their bucket.
    if (key !== undefined && (key.split('/').some((segment) => segment === '.' || segment === '..') || key.includes('\0'))) {
      return refuse(ctx, 'InvalidArgument', 'object keys with "." or ".." segments are not accepted', 400);
    }
    if (pathBucket !== bucket || !principal!.may(ctx.method, key)) return refuse(ctx, 'AccessDenied', 'Access Denied');
    delete ctx.headers.authorization;
    await next();
  };
}

/**
 * One version of an object, read without writing anything: its ETag first (the checksum file,
 * else the MD5 of what is read), then its content and time through one descriptor.
 */
async function readConsistently(store: FilesystemStore, bucket: string, key: string): Promise<{ content: Buffer; metadata: Record<string, string | number> } | null> {
  const objectPath = store.getResourcePath(bucket, key, 'object');
  const md5 = (await readIfExists(`${objectPath}.md5`))?.toString();
  let content: Buffer;
  let modified: Date;
  try {
    const file = await open(objectPath, 'r');
    try {
      [content, modified] = [await file.readFile(), (await file.stat()).mtime];
    } finally {
      await file.close();
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  const stored = JSON.parse((await readIfExists(store.getResourcePath(bucket, key, 'metadata.json')))?.toString() ?? '{}') as Record<string, string>;
  return {
    content,
    metadata: {
      ...stored,
      etag: JSON.stringify(md5 ?? createHash('md5').update(content).digest('hex')),
      'last-modified': modified.toUTCString(),
      'content-length': content.length,
    },
  };
}

/**
 * Metadata for listings (and copies). s3rver's own writes the checksum file when it is missing,
 * from the content it read: a listing in the middle of a put (which removes the file first)
 * would write the old content's MD5 after the put wrote the new one, and the object would keep
 * an ETag of other content for good.
 */
function readOnlyMetadata(store: FilesystemStore): FilesystemStore['getMetadata'] {
  return async (bucket, key) => {
    const objectPath = store.getResourcePath(bucket, key, 'object');
    const md5 = (await readIfExists(`${objectPath}.md5`))?.toString();
    // The usual case, cheap (a listing of thousands of reports): the checksum and a stat.
    if (md5) {
      const [{ mtime, size }, stored] = await Promise.all([stat(objectPath), readIfExists(store.getResourcePath(bucket, key, 'metadata.json'))]);
      return { ...(JSON.parse(stored?.toString() ?? '{}') as Record<string, string>), etag: JSON.stringify(md5), 'last-modified': mtime.toUTCString(), 'content-length': size };
    }
    const object = await readConsistently(store, bucket, key);
    // s3rver's callers take ENOENT for "no such object".
    if (!object) throw Object.assign(new Error(`no object ${key}`), { code: 'ENOENT' });
    return object.metadata;
  };
}

function consistentGetObject(store: FilesystemStore): FilesystemStore['getObject'] {
  return async (bucket, key, options = {}) => {
    const read = await readConsistently(store, bucket, key);
    if (!read) return null;
    const { content, metadata } = read;
    const ranged = options.start !== undefined || options.end !== undefined;
    const last = Math.max(0, content.length - 1);
    const range = { start: options.start ?? 0, end: Math.min(options.end ?? Number.POSITIVE_INFINITY, last) };
    if (ranged && (range.start < 0 || range.end < range.start)) {
      const object = new S3Object(bucket, key, null, metadata);
      object.range = range;
      return object;
    }
    const object = new S3Object(bucket, key, Readable.from([content.subarray(range.start, range.end + 1)]), metadata);
    if (ranged) object.range = range;
    return object;
  };
}

async function writeFileAt(path: string, content: Buffer | string, durable: boolean): Promise<void> {
  const file = await open(path, 'w', 0o600);
  try {
    await file.writeFile(content);
    if (durable) await file.sync();
  } finally {
    await file.close();
  }
}

function atomicPutObject(store: FilesystemStore, tempDir: string): FilesystemStore['putObject'] {
  return async (object) => {
    const objectPath = store.getResourcePath(object.bucket, object.key, 'object');
    await mkdir(dirname(objectPath), { recursive: true });
    const chunks: Buffer[] = [];
    if (Buffer.isBuffer(object.content)) chunks.push(object.content);
    else for await (const chunk of object.content) chunks.push(Buffer.from(chunk as Buffer));
    const content = Buffer.concat(chunks);
    const md5 = createHash('md5').update(content).digest('hex');
    const metadata = Object.fromEntries(Object.entries(object.metadata).filter(([key]) => ALLOWED_METADATA.includes(key) || key.startsWith('x-amz-meta-')));

    const temp = (name: string) => join(tempDir, `${randomUUID()}.${name}`);
    const [contentTemp, md5Temp, metadataTemp] = [temp('object'), temp('md5'), temp('metadata.json')];
    // Only the content is fsynced: the checksum is recomputed from it when missing, and the
    // metadata holds nothing but the content type. Fewer fsyncs keep the queue's commits fast.
    await Promise.all([writeFileAt(contentTemp, content, true), writeFileAt(md5Temp, md5, false), writeFileAt(metadataTemp, JSON.stringify(metadata, null, 2), false)]);
    await rm(`${objectPath}.md5`, { force: true });
    await rename(metadataTemp, store.getResourcePath(object.bucket, object.key, 'metadata.json'));
    await rename(contentTemp, objectPath);
    await rename(md5Temp, `${objectPath}.md5`);
    return { size: content.length, md5 };
  };
}

/** Who may sign requests, and what each may do. */
export interface Principal {
  readonly secretAccessKey: string;
  /** `key` is the object key in the bucket (undefined for bucket-level requests such as a listing). */
  readonly may: (method: string, key: string | undefined) => boolean;
}

export interface EmbeddedS3Options {
  readonly directory: string;
  readonly port: number;
  readonly bucket: string;
  readonly principal: (accessKeyId: string) => Principal | undefined;
}

/** A principal allowed everything: the control plane itself, an operator. */
export function fullAccess(accessKeyId: string, secretAccessKey: string): EmbeddedS3Options['principal'] {
  return (id) => (id === accessKeyId ? { secretAccessKey, may: () => true } : undefined);
}

export interface EmbeddedS3 {
  readonly endpoint: string;
  /** Requests served, by HTTP method (PUT counts writes): for benchmarks and health. */
  readonly requests: Readonly<Record<string, number>>;
  close(): Promise<void>;
}

export async function startEmbeddedS3(options: EmbeddedS3Options): Promise<EmbeddedS3> {
  const server = new S3rver({
    address: '127.0.0.1',
    port: options.port,
    silent: true,
    directory: options.directory,
    configureBuckets: [{ name: options.bucket, configs: [] }],
  });
  // Temporary files live beside the object folder (same file system, so renames are atomic).
  const tempDir = `${options.directory.replace(/\/$/, '')}.tmp`;
  await rm(tempDir, { recursive: true, force: true });
  await mkdir(tempDir, { recursive: true, mode: 0o700 });
  // Koa composes its middleware when it starts listening: this one runs first.
  const requests: Record<string, number> = {};
  const count = async (ctx: { method: string }, next: () => Promise<void>) => {
    requests[ctx.method] = (requests[ctx.method] ?? 0) + 1;
    await next();
  };
  const store = (server as unknown as { store: FilesystemStore }).store;
  (server as unknown as { middleware: unknown[] }).middleware.unshift(count, requireSignature(options.bucket, options.principal), conditionalWrites(options.bucket, store));
  store.putObject = atomicPutObject(store, tempDir);
  store.getObject = consistentGetObject(store);
  store.getMetadata = readOnlyMetadata(store);
  const address = await server.run();
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    requests,
    close: async () => {
      await server.close();
    },
  };
}
