/**
 * The k3s datastore on the server's own PostgreSQL ("k3s-server ... provides the Kubernetes
 * control plane with a PostgreSQL database"). Its password is a cluster secret of its own
 * (every node has the token, only the server may know this), in the server's document only.
 */
export const DATASTORE_ROLE = 'kubernetes';
export const DATASTORE_DATABASE = 'kubernetes';

export function localDatastoreEndpoint(password: string): string {
  return `postgres://${DATASTORE_ROLE}:${password}@127.0.0.1:5432/${DATASTORE_DATABASE}?sslmode=disable`;
}

/** Idempotent: creates role and database when missing and (re)sets the password. */
export function renderDatastoreInit(password: string): string {
  return [
    '-- Managed by Ringmaster: prepares the k3s datastore; safe to run again.',
    `SELECT 'CREATE ROLE ${DATASTORE_ROLE} LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${DATASTORE_ROLE}')\\gexec`,
    `ALTER ROLE ${DATASTORE_ROLE} WITH LOGIN PASSWORD '${password}';`,
    `SELECT 'CREATE DATABASE ${DATASTORE_DATABASE} OWNER ${DATASTORE_ROLE}' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '${DATASTORE_DATABASE}')\\gexec`,
    '',
  ].join('\n');
}

/**
 * Runs the init SQL as the database superuser, reading it from standard input: the file is
 * root's (0600 in a 0700 folder), so the agent opens it and postgres never needs to.
 */
export function datastoreInitCommand(): string[] {
  return ['runuser', '-u', 'postgres', '--', 'psql', '-X', '-v', 'ON_ERROR_STOP=1', '-q', '-f', '-'];
}
