/**
 * `flyingcircus.kubernetes.frontend.<name>` from the spec's "Configuration reference", with the
 * option names exactly as the spec writes them, plus the platform's `servicePort`,
 * `sslBackend` and `extraPodTemplateOptions`, and the scenario-1 nginx virtual host.
 */
import { z } from 'zod';
import { bindText } from './bind.ts';
import { configLineFragment, dnsLabel, hostName, port, serviceName } from './primitives.ts';

/** A prefix location as the spec writes it (`locations."/"`): no spaces or nginx syntax. */
const locationPath = z
  .string()
  .regex(/^\/[^\s{};'"\\$]*$/, 'must be a path starting with "/" without spaces, quotes, "$", "{", "}" or ";"');

/** No "$": nginx would expand variables in it (a request could pick the upstream). */
const proxyPass = z
  .string()
  .regex(/^https?:\/\/[^\s{};'"\\$]+$/, 'must be an http:// or https:// URL without spaces, quotes, "$", "{", "}" or ";"');

export const locationSchema = z.strictObject({
  proxyPass: proxyPass.optional(),
});

export const virtualHostSchema = z.strictObject({
  forceSSL: z.boolean().default(false),
  /** Defaults to `"/"` passing to the frontend's first bind, which is what scenario 1 writes out by hand. */
  locations: z.record(locationPath, locationSchema).optional(),
});

export const frontendName = z
  .string()
  .max(63, 'must be at most 63 characters')
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'must be letters, digits, "_", "." and "-", starting with a letter or digit');

const frontendObject = z.strictObject({
  binds: z.array(bindText).min(1, 'must name at least one address').optional(),
  /** Scenario 1 of the spec writes `bind`; it means the same as `binds`. */
  bind: z.array(bindText).min(1, 'must name at least one address').optional(),
  serviceName: serviceName.optional(),
  namespace: dnsLabel.default('default'),
  mode: z.enum(['http', 'tcp'], { error: 'must be "http" or "tcp"' }).default('http'),
  haproxyExtraConfig: configLineFragment.default(''),
  extraPodTemplateOptions: configLineFragment.default(''),
  lbServicePort: port.optional(),
  servicePort: port.optional(),
  podPort: port.optional(),
  maxExpectedPods: z.number().int('must be a whole number').min(1, 'must be at least 1').max(1000, 'must be at most 1000').default(10),
  sslBackend: z.boolean().default(false),
  virtualHosts: z.record(hostName, virtualHostSchema).default({}),
});

export const frontendSchema = frontendObject.superRefine((frontend, ctx) => {
  if (frontend.bind && frontend.binds) {
    ctx.addIssue({ code: 'custom', path: ['bind'], message: 'give either "bind" or "binds", not both' });
  }
});

export type FrontendInput = z.input<typeof frontendSchema>;
type ParsedFrontend = z.output<typeof frontendSchema>;

/** A frontend with every default resolved: what the renderers work with. */
export interface Frontend extends Omit<ParsedFrontend, 'bind' | 'binds' | 'serviceName'> {
  readonly name: string;
  readonly serviceName: string;
  /** Explicit binds, or `127.0.0.1:<port>` like the platform's implementation. */
  readonly binds: readonly string[];
}

export function resolveFrontend(name: string, parsed: ParsedFrontend): Frontend {
  const { bind, binds, serviceName: explicitServiceName, ...rest } = parsed;
  const defaultPort = parsed.lbServicePort ?? parsed.servicePort ?? parsed.podPort;
  return {
    ...rest,
    name,
    serviceName: explicitServiceName ?? name,
    binds: binds ?? bind ?? (defaultPort === undefined ? [] : [`127.0.0.1:${defaultPort}`]),
  };
}
