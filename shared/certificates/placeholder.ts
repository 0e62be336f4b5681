/**
 * The self-signed certificate a TLS host gets before ACME issued its real one (as NixOS'
 * `security.acme` does with minica): nginx refuses a config whose `ssl_certificate` is missing,
 * so without it one new host would block the whole document, and port 80 could never answer
 * the very challenge that gets the real certificate.
 */

/** In the subject and issuer of every placeholder: how the agent tells one from an issued certificate. */
export const PLACEHOLDER_ORGANIZATION = 'Ringmaster placeholder';

/** How long a placeholder is valid: nginx serves an expired one all the same; browsers trust none. */
export const PLACEHOLDER_VALIDITY_DAYS = 90;

/** The distinguished name of a host's placeholder (RFC 4514 text, as @peculiar/x509 takes it). */
export function placeholderName(host: string): string {
  return `CN=${host}, O=${PLACEHOLDER_ORGANIZATION}`;
}

/** An issuer name (RFC 4514 text) that is a placeholder's. */
export function isPlaceholderIssuer(issuer: string): boolean {
  return issuer.includes(`O=${PLACEHOLDER_ORGANIZATION}`);
}
