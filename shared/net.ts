/** CIDR arithmetic for the network findings; ipaddr.js does the parsing. */
import ipaddr from 'ipaddr.js';

export interface Network {
  readonly text: string;
  readonly address: ipaddr.IPv4 | ipaddr.IPv6;
  readonly prefix: number;
  readonly bits: 32 | 128;
}

export function parseNetwork(text: string): Network {
  const [address, prefix] = ipaddr.parseCIDR(text);
  return { text, address, prefix, bits: address.kind() === 'ipv4' ? 32 : 128 };
}

export type Address = ipaddr.IPv4 | ipaddr.IPv6;

/** `undefined` for text that is no IP address. */
export function parseAddress(text: string): Address | undefined {
  return ipaddr.isValid(text) ? ipaddr.process(text) : undefined;
}

export function contains(network: Network, address: Address): boolean {
  return address.kind() === network.address.kind() && address.match(network.address, network.prefix);
}

/** Two networks overlap exactly when one contains the other's first address. */
export function overlaps(a: Network, b: Network): boolean {
  if (a.address.kind() !== b.address.kind()) return false;
  const shorter = Math.min(a.prefix, b.prefix);
  return a.address.match(b.address, shorter);
}

/** How many node subnets of `/maskSize` a cluster network holds (capped: only small counts matter). */
export function subnetCount(network: Network, maskSize: number): number {
  if (maskSize < network.prefix) return 0;
  return 2 ** Math.min(maskSize - network.prefix, 30);
}

export function isLoopback(addressText: string): boolean {
  return ipaddr.isValid(addressText) && ipaddr.process(addressText).range() === 'loopback';
}
