/**
 * The local control plane's secrets, made once and kept in the data folder (mode 0600): the
 * API token, the S3 key pair agents use, and the master key cluster secrets derive from.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { z } from 'zod';

export const localCredentialsSchema = z.strictObject({
  apiToken: z.string().min(32),
  accessKeyId: z.string().min(16),
  secretAccessKey: z.string().min(32),
  masterKey: z.string().min(32),
});

export type LocalCredentials = z.output<typeof localCredentialsSchema>;

export function loadOrCreateCredentials(path: string): LocalCredentials {
  if (existsSync(path)) {
    let value: unknown;
    try {
      value = JSON.parse(readFileSync(path, 'utf8'));
    } catch {
      value = undefined;
    }
    const parsed = localCredentialsSchema.safeParse(value);
    if (!parsed.success) throw new Error(`${path} is not a valid credentials file; move it away to start with new credentials`);
    return parsed.data;
  }
  const credentials: LocalCredentials = {
    apiToken: randomBytes(24).toString('base64url'),
    accessKeyId: `RM${randomBytes(9).toString('hex').toUpperCase()}`,
    secretAccessKey: randomBytes(30).toString('base64url'),
    masterKey: randomBytes(32).toString('hex'),
  };
  writeFileSync(path, `${JSON.stringify(credentials, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  return credentials;
}
