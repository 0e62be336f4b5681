/**
 * haproxy bind addresses as the spec writes them: "127.0.0.1:8080", "192.0.124.96:443",
 * "[::1]:8443", "*:80" or ":80". Parsed once here so conflicts can be checked on values,
 * not on strings.
 */
import { z } from 'zod';
import { ipAddress } from './primitives.ts';

export interface BindAddress {
  /** `undefined` means every address of the VM (`*`, `:port`, `0.0.0.0`, `::`). */
  readonly address: string | undefined;
  readonly port: number;
  readonly text: string;
}

const WILDCARDS = new Set(['', '*', '0.0.0.0', '::']);

export function parseBind(text: string): BindAddress | string {
  const bracketed = /^\[([^\]]+)\]:(\d+)$/.exec(text);
  const plain = /^([^:\s]*):(\d+)$/.exec(text);
  const match = bracketed ?? plain;
  if (!match) return 'must be "ADDRESS:PORT", e.g. "127.0.0.1:8080" or "[::1]:8080"';
  const [, host = '', portText = ''] = match;
  const port = Number(portText);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return `port ${portText} must be between 1 and 65535`;
  if (WILDCARDS.has(host)) return { address: undefined, port, text };
  if (!ipAddress.safeParse(host).success) return `"${host}" must be an IP address or "*"`;
  return { address: host, port, text };
}

export const bindText = z.string().superRefine((value, ctx) => {
  const parsed = parseBind(value);
  if (typeof parsed === 'string') ctx.addIssue({ code: 'custom', message: parsed });
});

/** Two binds collide when they share a port and an address, or either listens on every address. */
export function bindsCollide(a: BindAddress, b: BindAddress): boolean {
  if (a.port !== b.port) return false;
  return a.address === undefined || b.address === undefined || a.address === b.address;
}
