/**
 * WAITS IN REAL TIME (about 11 minutes): a sudo-srv user's ~/.kube/config is renewed at two
 * thirds of its lifetime, and the token it replaced keeps working until its own expiry and is
 * refused after it, by the real kube-apiserver, with the real kubectl run as a real Unix user.
 *
 * Why real time: Kubernetes issues no token shorter than 10 minutes (TokenRequest refuses
 * expirationSeconds < 600), and the kube-apiserver is a Go binary whose clock a test cannot move
 * (Go reads time without libc, so libfaketime does not reach it; --service-account-max-token-expiration
 * cannot go below 1 h). The agent's clock is not moved either: moving it renews at once, but the
 * apiserver then gives the new token the same real 10 minutes as the old one, and both die
 * together. So this file is kept out of the normal jest run (jest.config.js) and scripts/test.sh
 * runs it in the background beside the rest of the suite.
 *
 * What "expired" means to the apiserver (k8s.io/kubernetes v1.37.2, the version tests build):
 * - pkg/serviceaccount/claims.go validates a service account token's claims with go-jose's
 *   `Claims.Validate`, which allows `jwt.DefaultLeeway`, 1 minute, past `exp`
 *   (gopkg.in/go-jose/go-jose.v2 v2.6.3, jwt/validation.go);
 * - pkg/kubeapiserver/options/authentication.go caches a successful token authentication for
 *   10 s (TokenSuccessCacheTTL; apiserver pkg/authentication/token/cache), not bounded by `exp`.
 * So an expired token is refused after exp + 60 s, and at the latest at exp + 70 s.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ServerTasks } from '../agent/kubernetes/server-tasks.ts';
import { clusterSchema, KUBECONFIG_TTL_MIN_HOURS } from '../shared/schema/cluster.ts';
import { type KubeApiServer, startKubeApiServer } from './helpers/kube-apiserver.ts';
import { kubernetesTasks, LoginServer } from './helpers/login-server.ts';

/** go-jose's jwt.DefaultLeeway, which the apiserver's service account token validation uses. */
const LEEWAY_MS = 60_000;
/** How long the apiserver keeps a successful token authentication (TokenSuccessCacheTTL). */
const TOKEN_CACHE_MS = 10_000;
/** The poll interval, one kubectl run and a busy 2-core machine. */
const MARGIN_MS = 15_000;
/** The agent's rounds here; `ringmaster agent` runs them every 60 s. */
const ROUND_EVERY_MS = 10_000;

const server = new LoginServer('ringmaster-expiry-');
const alice = `rmt-exp-${process.pid.toString(36)}`;
// The copy a user kept of their kubeconfig (a shell or a tool still holding the old token).
const keptCopy = join(server.homeOf(alice), 'kept.kubeconfig');

let kube: KubeApiServer;
let tasks: ServerTasks;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const tokenOf = (kubeconfig: string) => /token: (\S+)/.exec(kubeconfig)![1]!;
const claimsOf = (kubeconfig: string) => JSON.parse(Buffer.from(tokenOf(kubeconfig).split('.')[1]!, 'base64url').toString('utf8')) as { exp: number; iat: number };
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

interface KubectlTry {
  readonly startedAt: number;
  readonly endedAt: number;
  readonly accepted: boolean;
  readonly stderr: string;
}

/** `kubectl get namespaces` as alice with the kubeconfig at `path`, and when it ran. */
async function kubectlAsAlice(path: string): Promise<KubectlTry> {
  const startedAt = Date.now();
  const outcome = await server.asUser(alice, `kubectl --kubeconfig '${path}' get namespaces -o name`).then(
    ({ stdout }) => ({ accepted: stdout.includes('namespace/default'), stderr: '' }),
    (error: { stderr?: string }) => ({ accepted: false, stderr: error.stderr ?? '' }),
  );
  return { startedAt, endedAt: Date.now(), ...outcome };
}

beforeAll(async () => {
  kube = await startKubeApiServer();
  server.installPrograms(kube);
  await server.addUser(alice);
  tasks = server.serverTasks(kube);
}, 180_000);

afterAll(async () => {
  await tasks?.stop();
  await kube?.stop();
  await server.remove();
});

describe('a sudo-srv user\'s kubeconfig with the shortest lifetime (10 min), in real time against a real kube-apiserver', () => {
  // The shortest lifetime the cluster settings accept: what the portal could configure.
  const ttlHours = clusterSchema.parse({ kubeconfigTtlHours: KUBECONFIG_TTL_MIN_HOURS }).kubeconfigTtlHours;
  let first: string;
  let renewsAt: number; // as the agent reports it
  let renewed: string;

  test('the first round writes ~/.kube/config with a 10-minute token that kubectl uses', async () => {
    const report = await tasks.update(kubernetesTasks(kube, [alice], ttlHours));
    expect(report?.errors).toEqual([]);
    first = readFileSync(server.kubeconfigOf(alice), 'utf8');
    expect(claimsOf(first).exp - claimsOf(first).iat).toBe(600);
    renewsAt = Date.parse(report!.homeKubeconfigs![0]!.renewsAt);
    // Two thirds of the lifetime: 6 min 40 s after issuing (the claims are whole seconds).
    expect(Math.abs(renewsAt - (claimsOf(first).iat + 400) * 1000)).toBeLessThan(2000);
    await server.asUser(alice, `cp ~/.kube/config '${keptCopy}'`);
    expect((await kubectlAsAlice(server.kubeconfigOf(alice))).accepted).toBe(true);
  }, 60_000);

  test('at two thirds of the lifetime (6 min 40 s) the file holds a new token; the old one still works, and so does the new', async () => {
    const giveUpAt = renewsAt + ROUND_EVERY_MS + MARGIN_MS;
    let renewedAt: number | undefined;
    while (renewedAt === undefined && Date.now() < giveUpAt) {
      await sleep(ROUND_EVERY_MS);
      const report = await tasks.round();
      expect(report.errors).toEqual([]);
      const now = readFileSync(server.kubeconfigOf(alice), 'utf8');
      if (now !== first) {
        renewedAt = Date.now();
        renewed = now;
      }
    }
    if (renewedAt === undefined) throw new Error(`not renewed by ${seconds(giveUpAt - renewsAt)} after the renewal time`);
    // Not early; not late either, or the loop above would have given up.
    expect(renewedAt).toBeGreaterThanOrEqual(renewsAt);
    expect(tokenOf(renewed)).not.toBe(tokenOf(first));
    expect(claimsOf(renewed).exp - claimsOf(renewed).iat).toBe(600);
    // Right after renewal, nobody is cut off: the copy with the old token works, and the new file.
    expect(await kubectlAsAlice(keptCopy)).toMatchObject({ accepted: true });
    expect(await kubectlAsAlice(server.kubeconfigOf(alice))).toMatchObject({ accepted: true });
    console.log(`renewed ${seconds(renewedAt - claimsOf(first).iat * 1000)} after the first token was issued (renewal time: ${seconds(renewsAt - claimsOf(first).iat * 1000)})`);
  }, 9 * 60_000);

  test('the old token is refused (401) after its expiry and its leeway, not before; the new one keeps working', async () => {
    const expiresAt = claimsOf(first).exp * 1000;
    const latestRefusal = expiresAt + LEEWAY_MS + TOKEN_CACHE_MS + MARGIN_MS;
    const giveUpAt = latestRefusal + 60_000;
    const tries: KubectlTry[] = [];
    let refused: KubectlTry | undefined;
    while (refused === undefined && Date.now() < giveUpAt) {
      const attempt = await kubectlAsAlice(keptCopy);
      tries.push(attempt);
      if (!attempt.accepted) refused = attempt;
      // Every 10 s, and every 2 s near the end of the leeway, so the moment is measured to 2 s.
      else await sleep(Date.now() < expiresAt + LEEWAY_MS - 10_000 ? 10_000 : 2_000);
    }
    if (refused === undefined) throw new Error(`the old token still works ${seconds(Date.now() - expiresAt)} after its expiry`);
    // A 401, which kubectl reports as Unauthorized: the token is no longer accepted (not a 403, not a network error).
    expect(refused.stderr).toMatch(/\(Unauthorized\)/);
    // Never before exp: every try that ended before it was accepted; and not within the leeway either.
    expect(tries.filter((attempt) => attempt.endedAt < expiresAt).every((attempt) => attempt.accepted)).toBe(true);
    expect(refused.endedAt).toBeGreaterThanOrEqual(expiresAt);
    expect(refused.endedAt).toBeGreaterThan(expiresAt + LEEWAY_MS);
    expect(refused.startedAt).toBeLessThanOrEqual(latestRefusal);
    const lastAccepted = tries.filter((attempt) => attempt.accepted).at(-1)!;
    console.log(
      `old token: exp at ${new Date(expiresAt).toISOString()}; last accepted ${seconds(lastAccepted.startedAt - expiresAt)} after exp, ` +
        `refused (401) ${seconds(refused.startedAt - expiresAt)} after exp (${seconds(refused.startedAt - claimsOf(first).iat * 1000)} after it was issued; ` +
        `expected between ${seconds(LEEWAY_MS)} and ${seconds(LEEWAY_MS + TOKEN_CACHE_MS)} plus polling)`,
    );
    // The file's new token outlives the old one: alice, logged in, still works.
    expect(claimsOf(renewed).exp * 1000).toBeGreaterThan(Date.now());
    expect(await kubectlAsAlice(server.kubeconfigOf(alice))).toMatchObject({ accepted: true });
  }, 8 * 60_000);
});
