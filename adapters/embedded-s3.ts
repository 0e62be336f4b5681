/**
 * The embedded S3-compatible endpoint of the local control plane: s3rver on 127.0.0.1,
 * objects under a local folder (they survive restarts), requests signed with the
 * credentials we give it. s3rver knows only its built-in key pair; its account registry
 * (pinned s3rver 3.7.1) takes ours instead, so the printed credentials are the only ones.
 */
import { createRequire } from 'node:module';
import S3rver from 's3rver';

interface AccountRegistry {
  DUMMY_ACCOUNT: { createKeyPair(id: string, secret: string): void; revokeAccessKey(id: string): void };
}

const require = createRequire(import.meta.url);
const accounts = require('s3rver/lib/models/account') as AccountRegistry;

export interface EmbeddedS3Options {
  readonly directory: string;
  readonly port: number;
  readonly bucket: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

export interface EmbeddedS3 {
  readonly endpoint: string;
  close(): Promise<void>;
}

export async function startEmbeddedS3(options: EmbeddedS3Options): Promise<EmbeddedS3> {
  accounts.DUMMY_ACCOUNT.createKeyPair(options.accessKeyId, options.secretAccessKey);
  if (options.accessKeyId !== 'S3RVER') accounts.DUMMY_ACCOUNT.revokeAccessKey('S3RVER');
  const server = new S3rver({
    address: '127.0.0.1',
    port: options.port,
    silent: true,
    directory: options.directory,
    configureBuckets: [{ name: options.bucket, configs: [] }],
  });
  const address = await server.run();
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    close: async () => {
      await server.close();
    },
  };
}
