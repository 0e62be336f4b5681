/**
 * The checks every call from a cluster passes (after the router checked its path and body):
 * a known resource group, a fresh signature by that group's key over the exact body, and no
 * replay. The queued event id is derived from the signature, so a replay is never applied
 * twice even where this function's memory of signatures does not reach.
 */
import { clusterRequestEventId, SIGNATURE_HEADER, SIGNATURE_TOLERANCE_SECONDS, TIMESTAMP_HEADER, verifyClusterRequest } from '../../shared/contract/cluster-request-signing.ts';
import { header, type HttpEvent, HttpProblem, type JsonBody } from '../shared/http.ts';

export interface ClusterKeyLookup {
  /** The group's key, or undefined for a group that does not exist (yet). */
  readonly clusterKey: (resourceGroup: string) => Promise<string | undefined>;
  readonly now?: () => number;
}

/** Signatures seen within the tolerance window: a second one is a replay. */
class SeenSignatures {
  readonly #seen = new Map<string, number>();
  has(signature: string, now: number): boolean {
    for (const [key, until] of this.#seen) if (until < now) this.#seen.delete(key);
    return this.#seen.has(signature);
  }
  add(signature: string, now: number): void {
    this.#seen.set(signature, now + SIGNATURE_TOLERANCE_SECONDS * 2 * 1000);
  }
}

/** A cluster call that passed the checks. */
export interface VerifiedClusterRequest {
  readonly resourceGroup: string;
  /** The queued event's id. */
  readonly id: string;
  /** The signed timestamp as an ISO time: when the cluster sent it. */
  readonly sentAt: string;
  readonly signature: string;
}

export function clusterRequestVerifier(deps: ClusterKeyLookup) {
  const seen = new SeenSignatures();
  const now = deps.now ?? Date.now;
  return {
    /** Throws the 401 or 409 a failed check answers. */
    async verify(resourceGroup: string, event: HttpEvent, body: JsonBody): Promise<VerifiedClusterRequest> {
      const key = await deps.clusterKey(resourceGroup);
      // Unknown group and wrong signature answer alike: the caller learns nothing about which groups exist.
      if (!key) throw new HttpProblem(401, 'Unauthorized', 'the signature cannot be verified');
      const signature = header(event, SIGNATURE_HEADER);
      const timestamp = header(event, TIMESTAMP_HEADER);
      const check = verifyClusterRequest(key, timestamp, signature, body.raw, Math.floor(now() / 1000));
      if (!check.ok) throw new HttpProblem(401, 'Unauthorized', check.reason);
      if (seen.has(signature!, now())) throw new HttpProblem(409, 'Conflict', 'this exact request was already accepted (replay)');
      return { resourceGroup, id: clusterRequestEventId(signature!), sentAt: new Date(Number(timestamp) * 1000).toISOString(), signature: signature! };
    },
    /** Call once the request is accepted: the same bytes again are a replay. */
    accepted(request: VerifiedClusterRequest): void {
      seen.add(request.signature, now());
    },
  };
}
