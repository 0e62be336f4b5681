/**
 * One structured logger for every function (Powertools). It is given ids, types and counts,
 * never payloads: payloads may carry secrets.
 */
import { Logger } from '@aws-lambda-powertools/logger';

export function createLogger(serviceName: string): Logger {
  return new Logger({ serviceName, logLevel: (process.env.RINGMASTER_LOG_LEVEL ?? process.env.POWERTOOLS_LOG_LEVEL ?? 'INFO') as 'INFO' });
}
