/**
 * Small, reusable field schemas. Every input from outside passes through these, so each
 * carries a message that says what was expected, not just that something was wrong.
 */
import { z } from 'zod';

/** A DNS-1123 label's form (length aside): store keys and access keys are built of such names. */
export const DNS_LABEL_PATTERN = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

/** A DNS-1123 label: VM names, resource groups and Kubernetes namespaces share it. */
export const dnsLabel = z
  .string()
  .min(1, 'must not be empty')
  .max(63, 'must be at most 63 characters')
  .regex(DNS_LABEL_PATTERN, 'must be lower-case letters, digits and "-", starting and ending with a letter or digit');

/** A Kubernetes Service name (DNS-1035 label: starts with a letter). */
export const serviceName = z
  .string()
  .max(63, 'must be at most 63 characters')
  .regex(/^[a-z]([a-z0-9-]*[a-z0-9])?$/, 'must be a DNS-1035 label: lower-case letters, digits and "-", starting with a letter');

/** A fully qualified or relative host name, as nginx `server_name` and TLS SANs take it. */
export const hostName = z
  .string()
  .max(253, 'must be at most 253 characters')
  .regex(
    /^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/,
    'must be a host name such as "myapp.example.com"',
  );

export const port = z
  .number({ error: 'must be a port number' })
  .int('must be a whole number')
  .min(1, 'must be between 1 and 65535')
  .max(65535, 'must be between 1 and 65535');

export const ipAddress = z.union([z.ipv4(), z.ipv6()], { error: 'must be an IPv4 or IPv6 address' });
export const ipv4Cidr = z.cidrv4({ error: 'must be an IPv4 network in CIDR notation, e.g. "10.42.0.0/16"' });
export const ipv6Cidr = z.cidrv6({ error: 'must be an IPv6 network in CIDR notation, e.g. "fd42::/56"' });
export const anyCidr = z.union([z.cidrv4(), z.cidrv6()], { error: 'must be a network in CIDR notation, e.g. "10.8.0.0/24"' });

/**
 * A fragment that is pasted into a generated config line (haproxy server options) and into
 * runtime-API commands (`add server`). It must stay on its line and in its command: no
 * newline (new sections), no ";" (chains socket commands), no quotes or backslash (an
 * unbalanced one breaks the whole file), no "#".
 */
export const configLineFragment = z
  .string()
  .max(1024, 'must be at most 1024 characters')
  .regex(/^[^\u0000-\u001f\u007f#;"'\\]*$/, 'must be a single line without control characters, "#", ";", quotes or backslashes');

/** A secret value that ends up in a file: no whitespace so it survives any file format. */
export const secretValue = z
  .string()
  .min(16, 'must be at least 16 characters')
  .max(512, 'must be at most 512 characters')
  .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces');

/**
 * Text from a VM or an API answer kept to `max` characters: longer text is cut (and marked
 * with "…") rather than refused, so a long error never costs the whole report. The limit is
 * written once, here in the schema, and every writer and reader of the text gets it.
 */
export const boundedText = (max: number) => z.string().overwrite((text) => (text.length > max ? `${text.slice(0, max - 1)}…` : text)).max(max);

/** A list kept to its first `max` items, for the same reason. */
export const boundedList = <T extends z.ZodType>(item: T, max: number) => z.array(item).overwrite((items) => items.slice(0, max)).max(max);

/** A k3s cluster CA's hash: "the SHA256 sum of the PEM-formatted certificate, as stored on disk" (k3s docs, `k3s token`), in hex. */
export const caHash = z.string().regex(/^[0-9a-f]{64}$/, 'must be the SHA-256 of the server CA certificate file (64 lowercase hex digits)');
