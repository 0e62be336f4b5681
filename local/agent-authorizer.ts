/**
 * Local mode's check of a call an agent makes about itself (routes with `auth: 'agent'`): a
 * SigV4 signature by that VM's own key (shared/agent-identity.ts), over the body too (the signed
 * `x-amz-content-sha256` must be the body's hash). Another VM's key is 403, anything else 401;
 * in AWS the same route is IAM-authorized and the agent policy opens only the VM's own path.
 */
import { createHash } from 'node:crypto';
import { verifySigV4 } from '../adapters/sigv4-verifier.ts';
import { agentOfAccessKey, agentSecretFor } from '../shared/agent-identity.ts';
import { type AgentAuthorizer, header, HttpProblem } from '../functions/shared/http.ts';

export function agentRequestAuthorizer(masterKey: string): AgentAuthorizer {
  return async (event) => {
    const resourceGroup = event.pathParameters?.rg ?? '';
    const vm = event.pathParameters?.vm ?? '';
    const body = Buffer.from(event.body ?? '', event.isBase64Encoded ? 'base64' : 'utf8');
    if (header(event, 'x-amz-content-sha256') !== createHash('sha256').update(body).digest('hex')) {
      throw new HttpProblem(401, 'Unauthorized', 'the body is not the one signed (x-amz-content-sha256 must be its SHA-256)');
    }
    let forAnother = false;
    const verdict = await verifySigV4(
      { method: event.requestContext.http.method, path: event.rawPath, query: Object.fromEntries(new URLSearchParams(event.rawQueryString)), headers: event.headers },
      (accessKeyId) => {
        const secret = agentSecretFor(masterKey, accessKeyId, resourceGroup, vm);
        if (secret === undefined && agentOfAccessKey(accessKeyId)) forAnother = true;
        return secret;
      },
    );
    if (forAnother) throw new HttpProblem(403, 'Forbidden', "an agent speaks only for its own VM");
    if (!verdict.ok) throw new HttpProblem(401, 'Unauthorized', verdict.message);
  };
}
