/**
 * Server-side checking of AWS Signature Version 4 (header form), for the embedded S3
 * endpoint: s3rver 3.7.1 looks at the access key id but never checks the signature. The
 * signature is recomputed with the SDK's own signer (@smithy/signature-v4) over the headers
 * the client signed, and compared in constant time.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';

/** node:crypto in the shape the signer wants (a Hash, or an HMAC when given a secret). */
export class NodeSha256 {
  readonly #hash;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.#hash = secret === undefined ? createHash('sha256') : createHmac('sha256', typeof secret === 'string' ? secret : Buffer.from(secret as ArrayBuffer));
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.#hash.update(typeof data === 'string' ? data : Buffer.from(ArrayBuffer.isView(data) ? data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) : data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.#hash.digest());
  }
}

export interface SignedRequest {
  readonly method: string;
  /** The path as sent, still percent-encoded. */
  readonly path: string;
  readonly query: Record<string, string | string[]>;
  readonly headers: Record<string, string | string[] | undefined>;
}

export type Verdict = { ok: true; accessKeyId: string } | { ok: false; code: 'AccessDenied' | 'InvalidAccessKeyId' | 'SignatureDoesNotMatch' | 'RequestTimeTooSkewed'; message: string };

const AUTHORIZATION = /^AWS4-HMAC-SHA256 Credential=([^/,\s]+)\/(\d{8})\/([^/,\s]+)\/([^/,\s]+)\/aws4_request,\s*SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})$/;
const MAX_SKEW_MS = 15 * 60 * 1000;

function header(headers: SignedRequest['headers'], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(',') : value;
}

export async function verifySigV4(request: SignedRequest, secretOf: (accessKeyId: string) => string | undefined, now = Date.now()): Promise<Verdict> {
  const match = AUTHORIZATION.exec(header(request.headers, 'authorization') ?? '');
  if (!match) return { ok: false, code: 'AccessDenied', message: 'sign the request with AWS Signature Version 4 in the Authorization header' };
  const [, accessKeyId, , region, service, signedHeaderList, signature] = match as unknown as [string, string, string, string, string, string, string];
  const secretAccessKey = secretOf(accessKeyId);
  if (secretAccessKey === undefined) return { ok: false, code: 'InvalidAccessKeyId', message: 'The AWS Access Key Id you provided does not exist in our records.' };
  const amzDate = header(request.headers, 'x-amz-date') ?? '';
  const stamp = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate);
  if (!stamp) return { ok: false, code: 'AccessDenied', message: 'x-amz-date is missing or malformed' };
  const signingDate = new Date(Date.UTC(+stamp[1]!, +stamp[2]! - 1, +stamp[3]!, +stamp[4]!, +stamp[5]!, +stamp[6]!));
  if (Math.abs(now - signingDate.getTime()) > MAX_SKEW_MS) return { ok: false, code: 'RequestTimeTooSkewed', message: 'the request time is more than 15 minutes off' };

  const signedHeaders = signedHeaderList.split(';');
  const headers: Record<string, string> = {};
  for (const name of signedHeaders) {
    const value = header(request.headers, name);
    if (value === undefined) return { ok: false, code: 'SignatureDoesNotMatch', message: `the signed header ${name} is missing` };
    headers[name] = value;
  }
  const [hostname = '', port] = (headers.host ?? '').split(':');
  const signer = new SignatureV4({ credentials: { accessKeyId, secretAccessKey }, region, service, sha256: NodeSha256, uriEscapePath: false, applyChecksum: false });
  const signed = await signer.sign(
    { method: request.method, protocol: 'http:', hostname, ...(port ? { port: Number(port) } : {}), path: request.path, query: request.query, headers },
    { signingDate, signableHeaders: new Set(signedHeaders) },
  );
  const expected = /Signature=([0-9a-f]{64})/.exec(String(signed.headers.authorization ?? ''))?.[1] ?? '';
  const same = expected.length === signature.length && timingSafeEqual(Buffer.from(expected), Buffer.from(signature));
  return same ? { ok: true, accessKeyId } : { ok: false, code: 'SignatureDoesNotMatch', message: 'The request signature we calculated does not match the signature you provided.' };
}
