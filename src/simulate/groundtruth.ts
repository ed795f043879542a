import { z } from 'zod';
import { ATTACK_KINDS } from './config';
import type { Entity } from './topology';

/**
 * What really happened in a scenario: the injected attacks (root, victims, path, time window,
 * techniques), the benign traps (policy-gap pairs, allowlisted scanners and pollers) and the
 * engine configuration that describes the enterprise (allowlist selectors, role inventory).
 * Written as ground-truth.json next to the telemetry; read back with zod.
 */

export const EntityRef = z.object({
  key: z.string(),
  ip: z.string(),
  name: z.string(),
  /** Short host name (NetBIOS) or pod name: what a normalizer shows as the workload name. */
  short: z.string(),
  kind: z.enum(['host', 'pod', 'node', 'ip']),
  role: z.string(),
  namespace: z.string().optional(),
  observer: z.string(),
});
export type EntityRef = z.infer<typeof EntityRef>;

export const HopTruth = z.object({
  from: EntityRef,
  to: EntityRef,
  ports: z.array(z.number().int()),
  denied: z.number().int(),
  allowed: z.number().int(),
  first: z.number(),
  last: z.number(),
  /** This edge gave the attacker the next foothold. */
  foothold: z.boolean(),
});
export type HopTruth = z.infer<typeof HopTruth>;

export const AttackTruth = z.object({
  id: z.string(),
  kind: z.enum(ATTACK_KINDS),
  pace: z.enum(['fast', 'slow']),
  /** Number of lateral hops (1 = single hop; 2+ = propagation A→B→C). */
  hops: z.number().int(),
  anomalies: z.boolean(),
  root: EntityRef,
  /** The root and every pivot the attacker reached. */
  compromised: z.array(EntityRef),
  victims: z.array(EntityRef),
  path: z.array(HopTruth),
  start: z.number(),
  end: z.number(),
  techniques: z.array(z.string()),
  deniedAttempts: z.number().int(),
  allowedAttempts: z.number().int(),
  formats: z.array(z.string()),
  note: z.string().optional(),
});
export type AttackTruth = z.infer<typeof AttackTruth>;

export const PolicyGapTruth = z.object({
  src: EntityRef,
  dst: EntityRef,
  port: z.number().int(),
  proto: z.string(),
  why: z.string(),
});
export type PolicyGapTruth = z.infer<typeof PolicyGapTruth>;

export const AllowlistedTruth = z.object({ entity: EntityRef, purpose: z.string() });

/** A correlate Selector (src/correlate/selectors.ts), as plain JSON. */
export const SelectorJson = z.object({
  labels: z.record(z.string(), z.string()).optional(),
  name: z.string().optional(),
  namespace: z.string().optional(),
  kind: z.string().optional(),
  cidr: z.union([z.string(), z.array(z.string())]).optional(),
});
export type SelectorJson = z.infer<typeof SelectorJson>;

export const GroundTruth = z.object({
  scenario: z.string(),
  seed: z.number().int(),
  start: z.number(),
  end: z.number(),
  attacks: z.array(AttackTruth),
  policyGaps: z.array(PolicyGapTruth),
  allowlisted: z.array(AllowlistedTruth),
  /** What the correlation engine's config should say about this enterprise. */
  engineConfig: z.object({
    allowlist: z.array(SelectorJson),
    roles: z.object({
      inventory: z.array(z.object({ selector: SelectorJson, role: z.string() })),
      /** The observers whose workload labels the enterprise trusts: its own cluster sensors. */
      trustedLabelSources: z.array(z.string()),
    }),
  }),
  /** Filled in by the writer once the stream has been produced. */
  stats: z
    .object({
      records: z.number().int(),
      byFormat: z.record(z.string(), z.number().int()),
      expected: z.record(z.string(), z.record(z.string(), z.number().int())),
      byTag: z.record(z.string(), z.number().int()),
    })
    .optional(),
});
export type GroundTruth = z.infer<typeof GroundTruth>;

export function entityRef(e: Entity): EntityRef {
  const kind = e.role === 'pod' ? 'pod' : e.role === 'node' ? 'node' : e.role === 'external' || e.role === 'broadcast' ? 'ip' : 'host';
  const ref: EntityRef = { key: e.key, ip: e.ip, name: e.name, short: e.short, kind, role: e.role, observer: e.observer };
  if (e.namespace) ref.namespace = e.namespace;
  return ref;
}

/** Technique ids as an analyst would label each kind of attack. */
export const KIND_TECHNIQUES: Readonly<Record<(typeof ATTACK_KINDS)[number], readonly string[]>> = {
  smb: ['T1021.002', 'T1569.002'],
  wmi: ['T1021.003', 'T1047'],
  winrm: ['T1021.006'],
  rdp: ['T1021.001'],
  ssh: ['T1021.004'],
  kubelet: ['T1609', 'T1613'],
  etcd: ['T1552.007'],
  pod_pivot: ['T1046', 'T1210'],
  discovery: ['T1046'],
  dc: ['T1021.006', 'T1021.001', 'T1210'],
};
