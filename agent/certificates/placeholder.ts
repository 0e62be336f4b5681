/**
 * Puts a self-signed placeholder certificate (and its key, root only) where nginx reads a TLS
 * host's files, for each host that has none yet: run before nginx validates a document, so
 * `nginx -t` passes on a VM with nothing prepared. Made with @peculiar/x509 over Node's
 * WebCrypto (no openssl process, nothing to install on the VM).
 */
import { webcrypto } from 'node:crypto';
import { PemConverter, SubjectAlternativeNameExtension, X509CertificateGenerator } from '@peculiar/x509';
import { PLACEHOLDER_VALIDITY_DAYS, placeholderName } from '../../shared/certificates/placeholder.ts';
import type { CertificateSpec } from '../../shared/schema/document.ts';
import { onDiskWithoutLinks, readIfExists, writeAtomically } from '../files.ts';

const ECDSA_P256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export interface KeyAndCertificate {
  /** PKCS #8 PEM. */
  readonly key: string;
  readonly certificate: string;
}

/** A fresh P-256 key and a self-signed certificate for `host`, valid from `now`. */
export async function placeholderCertificate(host: string, now: Date): Promise<KeyAndCertificate> {
  const keys = (await webcrypto.subtle.generateKey(ECDSA_P256, true, ['sign', 'verify'])) as CryptoKeyPair;
  const certificate = await X509CertificateGenerator.createSelfSigned({
    name: placeholderName(host),
    keys,
    signingAlgorithm: ECDSA_P256,
    // A minute back: a clock a little behind on the client still takes it as valid.
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + PLACEHOLDER_VALIDITY_DAYS * 86_400_000),
    extensions: [new SubjectAlternativeNameExtension([{ type: 'dns', value: host }])],
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { key: `${PemConverter.encode(pkcs8, 'PRIVATE KEY')}\n`, certificate: `${certificate.toString('pem')}\n` };
}

/**
 * Installs a key and certificate: the key first (0600), then the certificate (0644), each
 * atomically. nginx reads them only when it is (re)loaded, which the agent does after both.
 */
export async function installKeyAndCertificate(root: string, spec: CertificateSpec, pair: KeyAndCertificate): Promise<void> {
  const keyFile = await onDiskWithoutLinks(root, spec.keyFile);
  const certificateFile = await onDiskWithoutLinks(root, spec.certificateFile);
  await writeAtomically(keyFile, pair.key, 0o600);
  await writeAtomically(certificateFile, pair.certificate, 0o644);
}

/**
 * Gives every host without both files a placeholder; hosts that have them (a placeholder from
 * before, or an issued certificate) are left alone. Returns the hosts that got one.
 */
export async function placePlaceholders(root: string, certificates: readonly CertificateSpec[], now: Date): Promise<string[]> {
  const placed: string[] = [];
  for (const spec of certificates) {
    const [key, certificate] = await Promise.all([readIfExists(await onDiskWithoutLinks(root, spec.keyFile)), readIfExists(await onDiskWithoutLinks(root, spec.certificateFile))]);
    if (key && certificate && key.length > 0 && certificate.length > 0) continue;
    await installKeyAndCertificate(root, spec, await placeholderCertificate(spec.host, now));
    placed.push(spec.host);
  }
  return placed;
}
