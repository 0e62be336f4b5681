/** Collects what one VM must have; the result is sorted so equal input gives equal bytes. */
import { compareText } from '../compare.ts';
import { sha256Hex } from '../hash.ts';
import type { CertificateSpec, DirectorySpec, FileSpec, ServiceSpec } from '../schema/document.ts';

type FileInput = Omit<FileSpec, 'owner' | 'group' | 'secret' | 'sha256'> & Partial<Pick<FileSpec, 'owner' | 'group' | 'secret' | 'sha256'>>;

export class DocumentParts {
  readonly files: FileSpec[] = [];
  readonly directories: DirectorySpec[] = [];
  readonly services: ServiceSpec[] = [];
  readonly certificates: CertificateSpec[] = [];

  file(spec: FileInput): this {
    const { path, mode, content, owner = 'root', group = 'root', secret = false } = spec;
    const sha256 = spec.sha256 ?? `sha256:${sha256Hex(content)}`;
    this.files.push({ path, mode, owner, group, secret, sha256, content });
    return this;
  }

  directory(path: string, mode = '0755', owner = 'root', group = 'root'): this {
    if (!this.directories.some((d) => d.path === path)) this.directories.push({ path, mode, owner, group });
    return this;
  }

  service(spec: ServiceSpec): this {
    this.services.push(spec);
    return this;
  }

  /** A host that needs a TLS certificate (the agent makes it: the document carries no key). */
  certificate(spec: CertificateSpec): this {
    if (!this.certificates.some((c) => c.host === spec.host)) this.certificates.push(spec);
    return this;
  }

  sorted(): { directories: DirectorySpec[]; files: FileSpec[]; services: ServiceSpec[]; certificates?: CertificateSpec[] } {
    const byPath = <T extends { path: string }>(a: T, b: T) => compareText(a.path, b.path);
    return {
      directories: [...this.directories].sort(byPath),
      files: [...this.files].sort(byPath),
      // In the order added: a service may depend on one before it (the datastore before k3s).
      services: [...this.services],
      // Absent rather than empty: documents of VMs without TLS hosts keep their hash.
      ...(this.certificates.length > 0 ? { certificates: [...this.certificates].sort((a, b) => compareText(a.host, b.host)) } : {}),
    };
  }
}
