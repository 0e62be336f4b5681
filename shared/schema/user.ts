import { z } from 'zod';

export const SUDO_SRV = 'sudo-srv';

/** A login name (at most 32 characters), as user names appear in store keys too. */
export const USER_NAME_PATTERN = /^[a-z_][a-z0-9_-]{0,31}$/;

export const userSchema = z.strictObject({
  name: z
    .string()
    .max(32, 'must be at most 32 characters')
    .regex(USER_NAME_PATTERN, 'must be a login name: lower-case letters, digits, "_" and "-"'),
  permissions: z.array(z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'must be a permission name such as "sudo-srv"')).default([]),
});

export type User = z.output<typeof userSchema>;
