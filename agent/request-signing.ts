/**
 * Calls an agent makes to the control plane's API, signed with the VM's own key (SigV4, as it
 * signs its reads of the store): the push channel's stream and a canary's report. A body's hash
 * is signed with it, so the body cannot be swapped under the signature.
 */
import { createHash } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentity, Provider } from '@smithy/types';
import { NodeSha256 } from '../adapters/sigv4-verifier.ts';

export interface AgentSigningOptions {
  /** The VM's own key (what it reads its document with). */
  readonly credentials: AwsCredentialIdentity | Provider<AwsCredentialIdentity>;
  readonly region: string | Provider<string>;
}

export interface AgentRequest {
  readonly method: 'GET' | 'POST';
  readonly url: string;
  /** What AWS checks the signature for (`execute-api` for an API Gateway route). */
  readonly service: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
}

/** The request's headers with its signature (and, with a body, its signed SHA-256). */
export async function signedHeaders(request: AgentRequest, options: AgentSigningOptions): Promise<Record<string, string>> {
  const target = new URL(request.url);
  const signer = new SignatureV4({ credentials: options.credentials, region: options.region, service: request.service, sha256: NodeSha256, uriEscapePath: false, applyChecksum: false });
  const signed = await signer.sign({
    method: request.method,
    protocol: target.protocol,
    hostname: target.hostname,
    ...(target.port ? { port: Number(target.port) } : {}),
    path: target.pathname,
    headers: { host: target.host, ...request.headers, ...(request.body === undefined ? {} : { 'x-amz-content-sha256': createHash('sha256').update(request.body).digest('hex') }) },
    ...(request.body === undefined ? {} : { body: request.body }),
  });
  return signed.headers as Record<string, string>;
}
