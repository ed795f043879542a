import { z } from 'zod';
import { WORKLOAD_KINDS } from '../events';
import { compileGlob } from '../glob';
import { cidrContains, parseCidr, type Cidr } from './cidr';

/**
 * A selector names a set of entities, by workload labels, by name (a glob, case-insensitive,
 * on the workload name or id), namespace, kind, or address block. Every field given must match.
 */
export const Selector = z
  .object({
    labels: z.record(z.string().min(1), z.string()).optional(),
    name: z.string().min(1).optional(),
    namespace: z.string().min(1).optional(),
    kind: z.enum([...WORKLOAD_KINDS, 'ip']).optional(),
    cidr: z
      .union([z.string(), z.array(z.string()).min(1)])
      .transform((v) => (Array.isArray(v) ? v : [v]))
      .refine((list) => list.every((c) => parseCidr(c) !== undefined), { message: 'is not a valid CIDR block' })
      .optional(),
  })
  .strict()
  .refine((s) => Object.values(s).some((v) => v !== undefined), { message: 'a selector needs at least one field' });
export type Selector = z.output<typeof Selector>;

/** What a selector can see of an entity. `kind` is `ip` for an entity known only by address. */
export interface EntityDescriptor {
  readonly kind: string;
  readonly id?: string;
  readonly name?: string;
  readonly namespace?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly ip?: string;
}

export type Matcher = (entity: EntityDescriptor) => boolean;

/** Compile a selector once (glob and CIDRs parsed) into a predicate. */
export function compileSelector(selector: Selector): Matcher {
  const name = selector.name === undefined ? undefined : compileGlob(selector.name);
  const cidrs: Cidr[] | undefined = selector.cidr?.map((c) => parseCidr(c) as Cidr);
  const labels = selector.labels === undefined ? undefined : Object.entries(selector.labels);
  return (e) => {
    if (selector.kind !== undefined && e.kind !== selector.kind) return false;
    if (selector.namespace !== undefined && e.namespace !== selector.namespace) return false;
    if (name && !((e.name !== undefined && name.test(e.name)) || (e.id !== undefined && name.test(e.id)))) return false;
    if (labels && !labels.every(([k, v]) => e.labels !== undefined && e.labels[k] === v)) return false;
    if (cidrs && !(e.ip !== undefined && cidrs.some((c) => cidrContains(c, e.ip as string)))) return false;
    return true;
  };
}

/** A list of selectors matches an entity when any one does. */
export function compileAny(selectors: readonly Selector[]): Matcher | undefined {
  if (selectors.length === 0) return undefined;
  const matchers = selectors.map(compileSelector);
  return (e) => matchers.some((m) => m(e));
}
