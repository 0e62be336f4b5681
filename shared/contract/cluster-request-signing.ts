/**
 * Calls from a cluster to the control plane (its endpoint changes, the kubeconfigs its server
 * issued) are signed with the cluster's own key (`secrets.webhookKey`): HMAC-SHA256 over
 * `<unix seconds>.<raw body>`, sent as `X-Ringmaster-Timestamp` and
 * `X-Ringmaster-Signature: v1=<hex>`. The timestamp in the signed text makes an old
 * request useless after the tolerance window; within it, replays are caught by id.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'x-ringmaster-signature';
export const TIMESTAMP_HEADER = 'x-ringmaster-timestamp';
export const SIGNATURE_TOLERANCE_SECONDS = 300;
/** The forms of the two headers, for checks here and for the OpenAPI document. */
export const TIMESTAMP_PATTERN = /^\d{1,12}$/;
export const SIGNATURE_PATTERN = /^v1=[0-9a-f]{64}$/;

export function signClusterRequest(key: string, timestamp: number, body: string): string {
  return `v1=${createHmac('sha256', key).update(`${timestamp}.${body}`).digest('hex')}`;
}

/** The headers a signed call carries (with its JSON content type). */
export function clusterRequestHeaders(key: string, timestamp: number, body: string): Record<string, string> {
  return { 'content-type': 'application/json', [TIMESTAMP_HEADER]: String(timestamp), [SIGNATURE_HEADER]: signClusterRequest(key, timestamp, body) };
}

export type SignatureCheck = { ok: true } | { ok: false; reason: string };

export function verifyClusterRequest(key: string, timestampHeader: string | undefined, signatureHeader: string | undefined, body: string, nowSeconds: number): SignatureCheck {
  if (!timestampHeader || !TIMESTAMP_PATTERN.test(timestampHeader)) return { ok: false, reason: `${TIMESTAMP_HEADER} must be the unix time in seconds` };
  if (!signatureHeader || !SIGNATURE_PATTERN.test(signatureHeader)) return { ok: false, reason: `${SIGNATURE_HEADER} must be "v1=" and 64 hex digits` };
  const timestamp = Number(timestampHeader);
  if (Math.abs(nowSeconds - timestamp) > SIGNATURE_TOLERANCE_SECONDS) {
    return { ok: false, reason: `${TIMESTAMP_HEADER} is more than ${SIGNATURE_TOLERANCE_SECONDS} s away from the control plane's clock` };
  }
  const expected = Buffer.from(signClusterRequest(key, timestamp, body));
  const given = Buffer.from(signatureHeader);
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) return { ok: false, reason: 'the signature does not match the body' };
  return { ok: true };
}

/**
 * The queued event id of a signed cluster call: derived from its signature, so a replay is
 * deduplicated by the queue even where the receiving function's memory does not reach.
 */
export function clusterRequestEventId(signature: string): string {
  return `wh-${createHash('sha256').update(signature).digest('hex')}`;
}
