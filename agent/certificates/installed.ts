/** What a host's files on disk hold: nothing, a placeholder, or an issued certificate (read with @peculiar/x509). */
import { SubjectAlternativeNameExtension, X509Certificate } from '@peculiar/x509';
import { type InstalledCertificate, installedKind } from '../../shared/certificates/renewal.ts';
import type { CertificateSpec } from '../../shared/schema/document.ts';
import { onDisk, readIfExists } from '../files.ts';

const FIRST_PEM = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/;

/** The leaf (first) certificate of a PEM chain: its issuer, validity and DNS names. */
export function leafCertificate(chain: string): { issuer: string; notBefore: Date; notAfter: Date; names: string[] } | undefined {
  const pem = FIRST_PEM.exec(chain)?.[0];
  if (!pem) return undefined;
  const certificate = new X509Certificate(pem);
  const san = certificate.getExtension(SubjectAlternativeNameExtension);
  const names = (san?.names.items ?? []).filter((name) => name.type === 'dns').map((name) => name.value);
  return { issuer: certificate.issuer, notBefore: certificate.notBefore, notAfter: certificate.notAfter, names };
}

export async function readInstalled(root: string, spec: CertificateSpec): Promise<InstalledCertificate> {
  const [chain, key] = await Promise.all([readIfExists(onDisk(root, spec.certificateFile)), readIfExists(onDisk(root, spec.keyFile))]);
  if (!chain || !key || key.length === 0) return { kind: 'missing' };
  let leaf: ReturnType<typeof leafCertificate>;
  try {
    leaf = leafCertificate(chain.toString('utf8'));
  } catch {
    // Not a certificate nginx could load either: as good as none, a new one replaces it.
    return { kind: 'missing' };
  }
  if (!leaf) return { kind: 'missing' };
  if (installedKind(leaf.issuer) === 'placeholder') return { kind: 'placeholder', notAfter: leaf.notAfter };
  return { kind: 'issued', notBefore: leaf.notBefore, notAfter: leaf.notAfter, names: leaf.names };
}
