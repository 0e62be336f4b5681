/**
 * One ACME order over HTTP-01, with acme-client (RFC 8555): the account (found again by its key,
 * made on first use), the order, the challenge written where nginx serves
 * `/.well-known/acme-challenge/` from, and the certificate. Loaded only on VMs with TLS hosts.
 */
import { mkdir, rm } from 'node:fs/promises';
import { Agent as HttpsAgent, get } from 'node:https';
import { join } from 'node:path';
import { axios as acmeHttp, Client, crypto as acmeCrypto } from 'acme-client';
import type { KeyAndCertificate } from './placeholder.ts';
import { onDiskWithoutLinks, writeAtomically } from '../files.ts';

export interface OrderRequest {
  readonly host: string;
  readonly directoryUrl: string;
  readonly email?: string | undefined;
  /** The account's key (PEM): the same key finds the same account again (RFC 8555 §7.3.1). */
  readonly accountKey: string;
  /** Folder nginx serves `/.well-known/acme-challenge/` below (as the document names it). */
  readonly webroot: string;
  /** Prefix of every path on disk ("/" on a VM). */
  readonly root: string;
  /** The agent stops: no request starts after it. */
  readonly signal?: AbortSignal | undefined;
}

export interface AcmeHttpOptions {
  /** Extra CA certificates (PEM) the directory's HTTPS is checked against (a private ACME server; Pebble in tests). NODE_EXTRA_CA_CERTS works too. */
  readonly trustedCertificates?: string;
  /**
   * How often acme-client repeats a request that got no answer, a 429 or a 5xx, and its first
   * delay (seconds, growing linearly). A few: the agent's own backoff (minutes to a day) is the
   * real retry, and a round must not hang for a minute on a server that is down.
   */
  readonly requestAttempts?: number;
  readonly requestDelaySeconds?: number;
}

/** The HTTPS agent every request to the ACME server goes through (it carries the extra CA certificates). */
let httpsAgent: HttpsAgent | undefined;

/** Sets acme-client's HTTP client (one per process, as the agent has one ACME configuration). */
export function configureAcmeHttp(options: AcmeHttpOptions): void {
  const defaults = acmeHttp.defaults as typeof acmeHttp.defaults & { acmeSettings: { retryMaxAttempts: number; retryDefaultDelay: number } };
  defaults.acmeSettings.retryMaxAttempts = options.requestAttempts ?? 2;
  defaults.acmeSettings.retryDefaultDelay = options.requestDelaySeconds ?? 2;
  httpsAgent = options.trustedCertificates ? new HttpsAgent({ ca: options.trustedCertificates }) : undefined;
  if (httpsAgent) defaults.httpsAgent = httpsAgent;
}

/**
 * Reads the directory once with Node's own HTTPS, so an unreachable server fails with its real
 * reason (ECONNREFUSED, a name that does not resolve, a certificate not trusted): acme-client
 * 5.4.0 turns every request that got no answer into "Cannot read properties of undefined
 * (reading 'config')" (publishlab/node-acme-client#101, open).
 */
function reachDirectory(directoryUrl: string, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const request = get(directoryUrl, { ...(httpsAgent ? { agent: httpsAgent } : {}), ...(signal ? { signal } : {}), headers: { 'user-agent': 'ringmaster-agent' }, timeout: 30_000 }, (response) => {
      response.resume();
      const status = response.statusCode ?? 0;
      if (status >= 200 && status < 300) resolve();
      else reject(new Error(`the directory answered HTTP ${status}`));
    });
    request.on('timeout', () => request.destroy(new Error('the directory did not answer within 30 s')));
    request.on('error', (error: NodeJS.ErrnoException) => reject(new Error(`the directory cannot be reached: ${error.code ? `${error.code} ` : ''}${error.message}`)));
  });
}

/** acme-client's error for a request that got no answer (see reachDirectory), said plainly. */
function plainError(error: unknown): Error {
  const message = (error as Error).message ?? String(error);
  if (error instanceof TypeError && message.includes("reading 'config'")) return new Error('the ACME server stopped answering during the order');
  return error instanceof Error ? error : new Error(message);
}

export function newAccountKey(): Promise<string> {
  return acmeCrypto.createPrivateEcdsaKey('P-256').then((key) => key.toString());
}

/** The issued certificate's validity and names, as acme-client reads them. */
export function certificateInfo(pem: string): { notBefore: Date; notAfter: Date; names: string[]; issuer: string } {
  const info = acmeCrypto.readCertificateInfo(pem);
  const names = [...new Set([info.domains.commonName, ...info.domains.altNames].filter((name): name is string => Boolean(name)))];
  return { notBefore: info.notBefore, notAfter: info.notAfter, names, issuer: info.issuer.commonName ?? '' };
}

/** Orders a certificate for one host; throws with the ACME server's problem (or the network error) as the message. */
export async function orderCertificate(request: OrderRequest): Promise<KeyAndCertificate> {
  await reachDirectory(request.directoryUrl, request.signal);
  request.signal?.throwIfAborted();
  try {
    return await order(request);
  } catch (error) {
    throw plainError(error);
  }
}

async function order(request: OrderRequest): Promise<KeyAndCertificate> {
  const { host } = request;
  const key = await acmeCrypto.createPrivateEcdsaKey('P-256');
  const [, csr] = await acmeCrypto.createCsr({ commonName: host, altNames: [host] }, key);
  // Polls a pending authorization after 1 s, then 2, 4 … 30 s: validations take seconds.
  const client = new Client({ directoryUrl: request.directoryUrl, accountKey: request.accountKey, backoffMin: 1000, backoffMax: 30_000, backoffAttempts: 10 });
  const challengeDir = await onDiskWithoutLinks(request.root, join(request.webroot, '.well-known/acme-challenge'));
  const challengeFile = (token: string) => {
    // The token is the server's: only base64url characters may name a file (RFC 8555 §8.1).
    if (!/^[A-Za-z0-9_-]+$/.test(token)) throw new Error(`the ACME server sent a challenge token that is not base64url: ${JSON.stringify(token.slice(0, 80))}`);
    return join(challengeDir, token);
  };
  const certificate = await client.auto({
    csr,
    ...(request.email ? { email: request.email } : {}),
    // Configuring a directory is agreeing to its terms (the README says so).
    termsOfServiceAgreed: true,
    challengePriority: ['http-01'],
    // The CA's own validation is the check that counts; a VM asking itself through its public
    // address fails behind NAT without hairpinning, and would only delay the order.
    skipChallengeVerification: true,
    challengeCreateFn: async (_authz, challenge, keyAuthorization) => {
      if (challenge.type !== 'http-01') throw new Error(`only http-01 challenges are answered, not ${challenge.type}`);
      await mkdir(challengeDir, { recursive: true, mode: 0o755 });
      // Read by nginx's workers (not root): world-readable, as a challenge is public anyway.
      await writeAtomically(challengeFile(challenge.token), keyAuthorization, 0o644);
    },
    challengeRemoveFn: async (_authz, challenge) => {
      if (challenge.type === 'http-01') await rm(challengeFile(challenge.token), { force: true });
    },
  });
  return { key: key.toString(), certificate: certificate.endsWith('\n') ? certificate : `${certificate}\n` };
}
