/**
 * The pure rules of the certificate loop (shared/certificates/): when a host is ordered or
 * renewed, how failures back off, what the status says; and what the control plane puts in a
 * document (which hosts, which ACME directory), and what the agent refuses.
 */
import fc from 'fast-check';
import { AcmeSettingsError, LETS_ENCRYPT_PRODUCTION, LETS_ENCRYPT_STAGING, parseAcmeSettings } from '../shared/certificates/acme-settings.ts';
import {
  certificateStatus,
  type HostRecord,
  mayTryNow,
  nextCheckAt,
  orderReason,
  recordFailure,
  recordIssued,
  recordOrderStarted,
  recordSuccess,
  recordWaitingForLimit,
  renewalAt,
  retryDelayMs,
  weeklyLimitUntil,
} from '../shared/certificates/renewal.ts';
import { computeDesiredState } from '../shared/desired-state.ts';
import { DEFAULT_LAYOUT } from '../shared/layout.ts';
import { beyondRoles } from '../shared/services.ts';
import { documentOf, example } from './helpers/fixtures.ts';

const DAY = 86_400_000;
const MINUTE = 60_000;
const T0 = new Date('2026-12-01T00:00:00Z');
const at = (ms: number) => new Date(T0.getTime() + ms);
const record: HostRecord = { host: 'myapp.example.com', certificateFile: '/var/lib/acme/myapp.example.com/fullchain.pem', keyFile: '/var/lib/acme/myapp.example.com/key.pem', failures: 0, orders: 0 };
const issued = (days: number, names = ['myapp.example.com']) => ({ kind: 'issued' as const, notBefore: T0, notAfter: at(days * DAY), names });

describe('when a host is ordered', () => {
  test('a 90-day certificate is renewed with 30 days left; a 6-day one with a third of its life left (2 days)', () => {
    expect(renewalAt(issued(90))).toEqual(at(60 * DAY));
    expect(renewalAt(issued(6))).toEqual(at(4 * DAY));
  });

  test('no certificate or a placeholder: ordered now; a valid certificate: never before it is due', () => {
    expect(orderReason({ kind: 'missing' }, record, LETS_ENCRYPT_PRODUCTION, T0)).toBe('no certificate');
    expect(orderReason({ kind: 'placeholder', notAfter: at(90 * DAY) }, record, LETS_ENCRYPT_PRODUCTION, T0)).toBe('a placeholder is installed');
    expect(orderReason(issued(90), record, LETS_ENCRYPT_PRODUCTION, at(59 * DAY))).toBeUndefined();
    expect(orderReason(issued(90), record, LETS_ENCRYPT_PRODUCTION, at(60 * DAY))).toMatch(/^due for renewal since 2027-01-30/);
  });

  test('a certificate for other names, or from another directory (staging → production), is replaced; one of unknown origin is kept', () => {
    expect(orderReason(issued(90, ['other.example.com']), record, LETS_ENCRYPT_PRODUCTION, T0)).toMatch(/is for other\.example\.com/);
    expect(orderReason(issued(90), { ...record, issuedBy: LETS_ENCRYPT_STAGING }, LETS_ENCRYPT_PRODUCTION, T0)).toMatch(/is from https:\/\/acme-staging/);
    expect(orderReason(issued(90), { ...record, issuedBy: LETS_ENCRYPT_PRODUCTION }, LETS_ENCRYPT_PRODUCTION, T0)).toBeUndefined();
    expect(orderReason(issued(90), record, LETS_ENCRYPT_PRODUCTION, T0)).toBeUndefined();
  });
});

describe('failures back off', () => {
  test('10 minutes, doubling, at most a day apart', () => {
    expect([1, 2, 3, 4, 5, 8, 9, 20].map((n) => retryDelayMs(n) / MINUTE)).toEqual([10, 20, 40, 80, 160, 1280, 1440, 1440]);
  });

  test("a host failing without end never tries more than three times in any hour (Let's Encrypt allows five failed validations)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 0, max: 3 * DAY }), (failures, from) => {
        // The times of the tries: the first at 0, each next one a backoff after the one before.
        const tries = [0];
        for (let n = 1; n < failures; n++) tries.push(tries.at(-1)! + retryDelayMs(n));
        return tries.filter((t) => t >= from && t < from + 60 * MINUTE).length <= 3;
      }),
    );
  });

  test('placeholder → failing (reason, next try) → not tried before it → valid; orders counted', () => {
    let state = recordOrderStarted(record, T0);
    state = recordFailure(state, 'the directory cannot be reached: ECONNREFUSED', T0);
    expect(state).toMatchObject({ failures: 1, orders: 1, nextTryAt: at(10 * MINUTE).toISOString() });
    expect(certificateStatus('myapp.example.com', { kind: 'placeholder', notAfter: at(90 * DAY) }, state, T0)).toEqual({
      host: 'myapp.example.com',
      state: 'failing',
      error: 'the directory cannot be reached: ECONNREFUSED',
      nextTryAt: at(10 * MINUTE).toISOString(),
      orders: 1,
    });
    expect(mayTryNow(state, at(9 * MINUTE))).toBe(false);
    expect(mayTryNow(state, at(10 * MINUTE))).toBe(true);
    state = recordSuccess(recordOrderStarted(state, at(10 * MINUTE)), LETS_ENCRYPT_PRODUCTION);
    expect(state).toEqual({ ...record, failures: 0, orders: 2, lastOrderAt: at(10 * MINUTE).toISOString(), issuedBy: LETS_ENCRYPT_PRODUCTION });
    expect(certificateStatus('myapp.example.com', issued(90), state, T0)).toEqual({ host: 'myapp.example.com', state: 'valid', notAfter: at(90 * DAY).toISOString(), renewAt: at(60 * DAY).toISOString(), orders: 2 });
  });

  test('a renewal failing while the certificate still holds is failing, with the notAfter users have until; an expired one is failing too', () => {
    const failing = recordFailure(record, 'rate limited', T0);
    expect(certificateStatus('myapp.example.com', issued(20), failing, T0)).toMatchObject({ state: 'failing', notAfter: at(20 * DAY).toISOString(), error: 'rate limited' });
    expect(certificateStatus('myapp.example.com', issued(20), record, at(21 * DAY))).toMatchObject({ state: 'failing', error: expect.stringMatching(/expired/) });
  });

  test("never a sixth certificate for the same host within a week (Let's Encrypt's duplicate limit), even if nginx refused the first five", () => {
    let state = record;
    for (const hours of [0, 1, 2, 3]) state = recordIssued(state, at(hours * 3_600_000));
    expect(weeklyLimitUntil(state, at(4 * 3_600_000))).toBeUndefined();
    state = recordIssued(state, at(4 * 3_600_000));
    expect(weeklyLimitUntil(state, at(5 * 3_600_000))).toEqual(at(7 * DAY));
    expect(certificateStatus('myapp.example.com', { kind: 'placeholder', notAfter: at(DAY) }, recordWaitingForLimit(state, at(7 * DAY)), at(5 * 3_600_000))).toMatchObject({
      state: 'failing',
      error: `5 certificates were issued for myapp.example.com this week (Let's Encrypt's limit for the same names); no order before ${at(7 * DAY).toISOString()}`,
      nextTryAt: at(7 * DAY).toISOString(),
    });
    // A week after the first, one slot is free again; older issuances are forgotten.
    expect(weeklyLimitUntil(state, at(7 * DAY))).toBeUndefined();
    expect(recordIssued(state, at(8 * DAY)).issued).toEqual([at(8 * DAY).toISOString()]);
  });

  test('a wildcard host is failing for good: HTTP-01 cannot get it', () => {
    expect(certificateStatus('*.example.com', { kind: 'placeholder', notAfter: at(DAY) }, undefined, T0)).toMatchObject({ state: 'failing', error: expect.stringMatching(/wildcard.*DNS-01/) });
  });

  test('the next check: a day and up to an hour of random delay, or a failing host\'s next try when sooner', () => {
    expect(nextCheckAt([record], T0, () => 0)).toEqual(at(DAY));
    expect(nextCheckAt([record], T0, () => 0.5)).toEqual(at(DAY + 30 * MINUTE));
    expect(nextCheckAt([record, recordFailure(record, 'x', T0)], T0, () => 0.5)).toEqual(at(10 * MINUTE));
  });
});

describe('configuration', () => {
  test('Let\'s Encrypt production by default, staging by name, any https directory by URL; errors name the field', () => {
    expect(parseAcmeSettings({})).toEqual({ directoryUrl: LETS_ENCRYPT_PRODUCTION });
    expect(parseAcmeSettings({ directory: 'staging', email: 'ops@example.com' })).toEqual({ directoryUrl: LETS_ENCRYPT_STAGING, email: 'ops@example.com' });
    expect(parseAcmeSettings({ directory: 'https://acme.internal/directory' })).toEqual({ directoryUrl: 'https://acme.internal/directory' });
    expect(() => parseAcmeSettings({ directory: 'http://acme.internal/directory' }, { directory: '--acme-directory', email: '--acme-email' })).toThrow(new AcmeSettingsError('--acme-directory: must be an https URL of an ACME directory, or "production" / "staging" (Let\'s Encrypt)'));
    expect(() => parseAcmeSettings({ email: 'not-an-address' }, { directory: 'RINGMASTER_ACME_DIRECTORY', email: 'RINGMASTER_ACME_EMAIL' })).toThrow('RINGMASTER_ACME_EMAIL: must be an e-mail address');
  });

  test('the document lists the forceSSL hosts (and the dashboard) with the files nginx reads, and the ACME settings; other VMs have none', () => {
    const state = computeDesiredState(example('scenario-1-http'), { acme: { directoryUrl: LETS_ENCRYPT_STAGING, email: 'ops@example.com' } });
    const web = documentOf(state.documents, 'web01');
    expect(web.certificates).toEqual([{ host: 'myapp.example.com', certificateFile: '/var/lib/acme/myapp.example.com/fullchain.pem', keyFile: '/var/lib/acme/myapp.example.com/key.pem' }]);
    expect(web.acme).toEqual({ directoryUrl: LETS_ENCRYPT_STAGING, email: 'ops@example.com', webroot: '/var/lib/acme/acme-challenge' });
    expect(documentOf(state.documents, 'kube01').certificates?.map((c) => c.host)).toEqual(['kube01.demo.example.com']);
    for (const vm of ['kube02', 'nfs01']) expect(documentOf(state.documents, vm)).not.toHaveProperty('certificates');
    // Without configuration: Let's Encrypt production, no contact.
    expect(documentOf(computeDesiredState(example('scenario-1-http')).documents, 'web01').acme).toEqual({ directoryUrl: LETS_ENCRYPT_PRODUCTION, webroot: '/var/lib/acme/acme-challenge' });
  });

  test('a signed document whose certificate files or webroot lie outside nginx\'s folders is refused whole', () => {
    const web = documentOf(computeDesiredState(example('scenario-1-http')).documents, 'web01');
    expect(beyondRoles(web, DEFAULT_LAYOUT)).toBeUndefined();
    expect(beyondRoles({ ...web, certificates: [{ certificateFile: '/var/lib/acme/x/fullchain.pem', keyFile: '/root/.ssh/authorized_keys' }] }, DEFAULT_LAYOUT)).toMatch(/writes \/root\/\.ssh\/authorized_keys, outside/);
    expect(beyondRoles({ ...web, acme: { ...web.acme!, webroot: '/etc/cron.d' } }, DEFAULT_LAYOUT)).toMatch(/writes \/etc\/cron\.d, outside/);
  });
});
