import { z } from 'zod';
import { unknownRoleProblem } from '../roles.ts';
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

const roleList = (role: z.ZodType<string>) =>
  z
    .array(role)
    .default([])
    .refine((roles) => new Set(roles).size === roles.length, 'must not name a role twice');

export const vmSchema = z.strictObject({
  name: dnsLabel,
  roles: roleList(roleName),
  cpu: z.number().int('must be a whole number').min(1, 'must be at least 1').max(1024),
  memoryMiB: z.number().int('must be a whole number of MiB').min(1, 'must be at least 1 MiB'),
  disks: z.array(diskSchema).default([]),
  srvAddresses: z.array(ipAddress).default([]),
  publicAddresses: z.array(ipAddress).default([]),
  /** The VM's public DNS name; the k3s server's goes into TLS SANs, kubeconfigs and the dashboard vhost. */
  fqdn: hostName.optional(),
  maintenance: maintenanceSchema.default({ state: 'none', draining: false }),
});

/**
 * A VM as the portal or a user describes it: no misspelt Kubernetes role (`k3s-agnet`). Checked
 * at the input only, so a state stored before the check keeps loading.
 */
export const vmInputSchema = vmSchema.extend({
  roles: roleList(
    roleName.superRefine((role, ctx) => {
      const problem = unknownRoleProblem(role);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    }),
  ),
});

export type Vm = z.output<typeof vmSchema>;
export type VmInput = z.input<typeof vmSchema>;
export type Disk = z.output<typeof diskSchema>;
