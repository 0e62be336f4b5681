import { z } from 'zod';
import { dnsLabel, hostName, ipAddress } from './primitives.ts';

export const diskSchema = z.strictObject({
  name: z.string().max(63).optional(),
  sizeGiB: z.number().int('must be a whole number of GiB').min(1, 'must be at least 1 GiB'),
  kind: z.enum(['ssd', 'hdd'], { error: 'must be "ssd" or "hdd"' }),
});

export const maintenanceSchema = z.strictObject({
  state: z.enum(['none', 'requested'], { error: 'must be "none" or "requested"' }).default('none'),
  /** When the portal asked for it: the earliest request goes first when several agents wait. */
  requestedAt: z.iso.datetime({ offset: true, error: 'must be an ISO 8601 date-time' }).optional(),
  /** Chosen for the drain: it stays chosen until its maintenance is finished, whatever arrives later. */
  draining: z.boolean().default(false),
});

const roleName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]*$/, 'must be a role name: lower-case letters, digits and "-"')
  .max(63);

export const vmSchema = z.strictObject({
  name: dnsLabel,
  roles: z
    .array(roleName)
    .default([])
    .refine((roles) => new Set(roles).size === roles.length, 'must not name a role twice'),
  cpu: z.number().int('must be a whole number').min(1, 'must be at least 1').max(1024),
  memoryMiB: z.number().int('must be a whole number of MiB').min(1, 'must be at least 1 MiB'),
  disks: z.array(diskSchema).default([]),
  srvAddresses: z.array(ipAddress).default([]),
  publicAddresses: z.array(ipAddress).default([]),
  /** The VM's public DNS name; the k3s server's goes into TLS SANs, kubeconfigs and the dashboard vhost. */
  fqdn: hostName.optional(),
  maintenance: maintenanceSchema.default({ state: 'none', draining: false }),
});

export type Vm = z.output<typeof vmSchema>;
export type VmInput = z.input<typeof vmSchema>;
export type Disk = z.output<typeof diskSchema>;
