/**
 * Calls from a cluster to the control plane (its `cluster` routes), signed with the
 * cluster's key the way the control plane checks them (shared/contract/cluster-request-signing.ts).
 */
import { clusterRequestHeaders } from '../../shared/contract/cluster-request-signing.ts';

export interface SignedRequest {
  readonly url: string;
  readonly body: string;
  readonly headers: Record<string, string>;
  /** Unix seconds the signature was made at: the control plane refuses it 5 minutes later. */
  readonly signedAt: number;
}

export interface PostResult {
  readonly status: number;
  readonly text: string;
}

export function signRequest(url: string, key: string, body: string, nowMs = Date.now()): SignedRequest {
  const signedAt = Math.floor(nowMs / 1000);
  return {
    url,
    body,
    signedAt,
    headers: clusterRequestHeaders(key, signedAt, body),
  };
}

/** Sends a signed request once; a network failure or timeout throws. */
export async function postSigned(request: SignedRequest, timeoutMs = 10_000): Promise<PostResult> {
  const response = await fetch(request.url, { method: 'POST', headers: request.headers, body: request.body, signal: AbortSignal.timeout(timeoutMs) });
  return { status: response.status, text: (await response.text()).slice(0, 2000) };
}

/**
 * 2xx is delivered, and so is 409: the control plane already accepted these exact bytes
 * (an earlier attempt whose answer was lost). Other 4xx will not pass by retrying the same
 * bytes, except 401 from clock skew or a key being rotated: the caller re-signs and retries.
 */
export function delivered(status: number): boolean {
  return (status >= 200 && status < 300) || status === 409;
}
