import { z } from 'zod';
import { cidrContains, parseCidr, type Cidr } from '../correlate/cidr';
import { WORKLOAD_KINDS } from '../events';
import { compileGlob } from '../glob';
import type { IncidentEntityView } from './incident-schema';

/**
 * Entity selectors: which incident entities a playbook rule is about. Every field given must
 * match (AND); a list field matches when any of its values does (OR). Names are globs (`*`, `?`),
 * case-insensitive, on the entity name or its id, as in the correlation engine's selectors.
 */

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

// Kubernetes label syntax: an optional DNS-subdomain prefix and '/', a name of at most 63.
const LABEL_KEY = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/;

export const LabelKey = z
  .string()
  .max(317)
  .regex(LABEL_KEY, { error: 'is not a valid label key (Kubernetes syntax: [prefix/]name, name at most 63 of [A-Za-z0-9-_.])' })
  .refine((k) => !FORBIDDEN_KEYS.has(k), { error: 'is a forbidden key (prototype pollution)' });
export const LabelValue = z
  .string()
  .regex(LABEL_VALUE, { error: 'is not a valid label value (at most 63 of [A-Za-z0-9-_.], alphanumeric at both ends)' });
export const LabelMap = z
  .record(LabelKey, LabelValue)
  .refine((m) => Object.keys(m).length > 0, { error: 'needs at least one label' });

const Word = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[A-Za-z0-9*?][A-Za-z0-9._*?/-]*$/, { error: 'expected letters, digits and . _ - / (globs may use * and ?)' });

export const ENTITY_KINDS = [...WORKLOAD_KINDS, 'ip'] as const;

const selectorFields = {
  roles: z
    .array(z.string().min(1).max(63).regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, { error: 'expected a role name such as domain-controller' }))
    .min(1)
    .optional()
    .describe('any of these roles (as the correlation engine resolved them: label, inventory, observed behaviour), e.g. [domain-controller, server]'),
  kinds: z
    .array(z.enum(ENTITY_KINDS))
    .min(1)
    .optional()
    .describe(`any of these entity kinds: ${ENTITY_KINDS.join(', ')} (ip: known only by address)`),
  names: z
    .array(Word)
    .min(1)
    .optional()
    .describe('any of these names: case-insensitive globs (* and ?) on the entity name or its id'),
  namespaces: z
    .array(Word)
    .min(1)
    .optional()
    .describe('any of these Kubernetes namespaces (exact)'),
  labels: LabelMap.optional().describe(
    'every one of these workload labels, with exactly this value; an entity whose labels the incident does not carry never matches a label selector',
  ),
  cidrs: z
    .array(z.string().refine((c) => parseCidr(c) !== undefined, { error: 'is not a valid IPv4 or IPv6 CIDR block' }))
    .min(1)
    .optional()
    .describe('any of these address blocks, e.g. [10.0.0.0/8]'),
};
const FIELD_NAMES = Object.keys(selectorFields);
const hasCriterion = (s: Record<string, unknown>) => FIELD_NAMES.some((f) => s[f] !== undefined);
const NEEDS_A_FIELD = { error: `a selector needs at least one of ${FIELD_NAMES.join(', ')}` };

/** A selector for one entity (safety.protected): no `on`, it is applied to each target. */
export const EntitySelector = z
  .strictObject(selectorFields)
  .refine(hasCriterion, NEEDS_A_FIELD)
  .describe('selects entities: every field given must match, a list matches when any of its values does');
export type EntitySelector = z.output<typeof EntitySelector>;

export const ON = ['root', 'targets', 'any'] as const;
export type On = (typeof ON)[number];

/** A selector over an incident (match.entities, match.exclude): `on` says which of its entities. */
export const IncidentSelector = z
  .strictObject({
    on: z
      .enum(ON)
      .default('root')
      .describe('which entities of the incident: root (the source of the campaign; default), targets (every other entity: targets and pivots), any'),
    ...selectorFields,
  })
  .refine(hasCriterion, NEEDS_A_FIELD)
  .describe('holds when at least one of the incident entities named by `on` matches every field given');
export type IncidentSelector = z.output<typeof IncidentSelector>;

/** What a selector sees of an incident entity. */
export interface EntityFacts {
  key: string;
  kind: string;
  /** The key without the kind and namespace (`pod:shop/web-1` → `web-1`). */
  id: string;
  name?: string;
  namespace?: string;
  labels?: Readonly<Record<string, string>>;
  role: string;
  ip?: string;
  position: string;
}

const NAMESPACED_KINDS = new Set(['pod', 'service']);

/**
 * Facts of an incident entity. The engine's key is `kind:[namespace/]id`; incidents do not carry
 * the namespace as a field (yet), so for pods and services it is read from the key.
 */
export function factsOf(e: IncidentEntityView): EntityFacts {
  const colon = e.key.indexOf(':');
  let rest = colon >= 0 ? e.key.slice(colon + 1) : e.key;
  let namespace = e.namespace;
  const slash = rest.indexOf('/');
  if (slash > 0 && NAMESPACED_KINDS.has(e.kind)) {
    namespace ??= rest.slice(0, slash);
    rest = rest.slice(slash + 1);
  }
  return {
    key: e.key,
    kind: e.kind,
    id: rest,
    role: e.role,
    position: e.position,
    ...(e.name !== undefined && { name: e.name }),
    ...(namespace !== undefined && { namespace }),
    ...(e.labels !== undefined && { labels: e.labels }),
    ...(e.ip !== undefined && { ip: e.ip }),
  };
}

export type EntityMatcher = (e: EntityFacts) => boolean;

type SelectorCriteria = EntitySelector | IncidentSelector;

/** Compile the criteria of a selector (globs and CIDRs parsed once) into a predicate. */
export function compileSelector(s: SelectorCriteria): EntityMatcher {
  const names = s.names?.map(compileGlob);
  const cidrs = s.cidrs?.map((c) => parseCidr(c) as Cidr);
  const labels = s.labels === undefined ? undefined : Object.entries(s.labels);
  return (e) => {
    if (s.roles && !s.roles.includes(e.role)) return false;
    if (s.kinds && !(s.kinds as readonly string[]).includes(e.kind)) return false;
    if (s.namespaces && !(e.namespace !== undefined && s.namespaces.includes(e.namespace))) return false;
    if (names && !names.some((r) => (e.name !== undefined && r.test(e.name)) || r.test(e.id))) return false;
    if (labels && !(e.labels !== undefined && labels.every(([k, v]) => Object.hasOwn(e.labels!, k) && e.labels![k] === v))) {
      return false;
    }
    if (cidrs && !(e.ip !== undefined && cidrs.some((c) => cidrContains(c, e.ip as string)))) return false;
    return true;
  };
}

/** `roles: domain-controller, labels: app.kubernetes.io/part-of=cordon`: a selector as read in a reason. */
export function describeSelector(s: SelectorCriteria): string {
  const parts: string[] = [];
  if ('on' in s && s.on !== undefined) parts.push(`on ${s.on}`);
  if (s.roles) parts.push(`roles ${s.roles.join('|')}`);
  if (s.kinds) parts.push(`kinds ${s.kinds.join('|')}`);
  if (s.names) parts.push(`names ${s.names.join('|')}`);
  if (s.namespaces) parts.push(`namespaces ${s.namespaces.join('|')}`);
  if (s.labels) parts.push(`labels ${Object.entries(s.labels).map(([k, v]) => `${k}=${v}`).join(',')}`);
  if (s.cidrs) parts.push(`cidrs ${s.cidrs.join('|')}`);
  return parts.join('; ');
}

/** A readable name of an entity: `WORKSTATION5 (host:workstation5.corp, 172.18.39.5)`. */
export function displayEntity(e: EntityFacts): string {
  const extra = [e.key, e.key === `ip:${e.ip}` ? undefined : e.ip].filter((x): x is string => x !== undefined && x !== e.name);
  return e.name ? `${e.name} (${extra.join(', ')})` : extra.join(', ');
}
