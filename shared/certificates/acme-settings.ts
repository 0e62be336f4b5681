/**
 * Where VMs order their TLS certificates: the control plane's configuration (serve flags,
 * environment, CDK), carried in every document that has certificates. Let's Encrypt's
 * production directory unless told otherwise; its staging directory (untrusted certificates,
 * generous limits) by name; any other RFC 8555 server (Pebble in tests) by URL.
 */
import { z } from 'zod';

export const LETS_ENCRYPT_PRODUCTION = 'https://acme-v02.api.letsencrypt.org/directory';
export const LETS_ENCRYPT_STAGING = 'https://acme-staging-v02.api.letsencrypt.org/directory';

/** An ACME directory is served over HTTPS (RFC 8555 §6.1). */
export const acmeDirectoryUrl = z.url({ protocol: /^https$/, error: 'must be an https URL of an ACME directory, or "production" / "staging" (Let\'s Encrypt)' });

export const acmeSettingsSchema = z.strictObject({
  directoryUrl: acmeDirectoryUrl,
  /** The account's contact: Let's Encrypt writes there before a certificate expires unrenewed. */
  email: z.email({ error: 'must be an e-mail address' }).optional(),
});

export type AcmeSettings = z.output<typeof acmeSettingsSchema>;

export const DEFAULT_ACME: AcmeSettings = { directoryUrl: LETS_ENCRYPT_PRODUCTION };

/** `production` and `staging` name Let's Encrypt's directories; anything else must be a directory URL. */
export function acmeDirectoryOf(value: string): string {
  if (value === 'production') return LETS_ENCRYPT_PRODUCTION;
  if (value === 'staging') return LETS_ENCRYPT_STAGING;
  return value;
}

/**
 * The ACME settings from configuration text (flags, environment): the directory by name or URL,
 * the e-mail optional. Throws naming the field and the reason.
 */
export function parseAcmeSettings(input: { directory?: string | undefined; email?: string | undefined }, fields = { directory: 'acme directory', email: 'acme e-mail' }): AcmeSettings {
  const directoryUrl = acmeDirectoryOf(input.directory?.trim() || 'production');
  const parsed = acmeSettingsSchema.safeParse({ directoryUrl, ...(input.email?.trim() ? { email: input.email.trim() } : {}) });
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const field = issue.path[0] === 'email' ? fields.email : fields.directory;
  throw new AcmeSettingsError(`${field}: ${issue.message}`);
}

export class AcmeSettingsError extends Error {
  override readonly name = 'AcmeSettingsError';
}
