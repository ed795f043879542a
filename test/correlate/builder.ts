import type { Anomaly, AnomalyKind, CordonEvent, DeniedFlow, AllowedFlow, Protocol, WorkloadRef } from '../../src/events';
import { CorrelationEngine, type Change } from '../../src/correlate/engine';
import type { CorrelationConfigInput } from '../../src/correlate/config';
import type { Incident } from '../../src/correlate/incident';
import type { PolicyGapFinding } from '../../src/correlate/policy-gap';

/** Hand-built events for the correlation tests. */

export const T0 = Date.UTC(2024, 2, 1, 9, 0, 0);
export const SEC = 1000;
export const MIN = 60 * SEC;
export const HOUR = 60 * MIN;

export interface Party {
  ip?: string;
  workload?: WorkloadRef;
}

export function workload(
  kind: WorkloadRef['kind'],
  name: string,
  opts: { role?: string; namespace?: string; labels?: Record<string, string>; id?: string } = {},
): WorkloadRef {
  const labels = { ...(opts.labels ?? {}), ...(opts.role ? { 'cordon.io/role': opts.role } : {}) };
  const ref: WorkloadRef = { kind, id: opts.id ?? name, name, labels };
  if (opts.namespace) ref.namespace = opts.namespace;
  return ref;
}

/** A host with an address and (optionally) a role label. */
export function host(name: string, ip: string, role?: string): Party {
  return { ip, workload: workload('host', name, role ? { role } : {}) };
}

export function pod(name: string, ip: string, opts: { role?: string; namespace?: string; labels?: Record<string, string>; id?: string } = {}): Party {
  return { ip, workload: workload('pod', name, { namespace: 'default', ...opts }) };
}

export const ip = (address: string): Party => ({ ip: address });

let seq = 0;
const nextId = () => `ev-${++seq}`;

interface FlowOpts {
  protocol?: Protocol;
  srcPort?: number;
  policy?: { id: string; name: string };
}

function flow(src: Party, dst: Party, dstPort: number, time: number, opts: FlowOpts) {
  return {
    id: nextId(),
    time,
    src: { ...src, port: opts.srcPort ?? 50000 },
    dst: { ...dst, port: dstPort },
    protocol: opts.protocol ?? ('tcp' as Protocol),
    dstPort,
    observer: { type: 'test', name: 'builder' },
    ...(opts.policy ? { policy: opts.policy } : {}),
  };
}

export function denied(src: Party, dst: Party, dstPort: number, time: number, opts: FlowOpts = {}): DeniedFlow {
  return { ...flow(src, dst, dstPort, time, opts), action: 'denied' };
}

export function allowed(src: Party, dst: Party, dstPort: number, time: number, opts: FlowOpts = {}): AllowedFlow {
  return { ...flow(src, dst, dstPort, time, opts), action: 'allowed' };
}

export function anomaly(subject: Party, kind: AnomalyKind, score: number, time: number): Anomaly {
  const entity = subject.workload ?? { ip: subject.ip as string };
  return { id: nextId(), time, entity, kind, score, detector: 'test-detector' };
}

export interface Run {
  engine: CorrelationEngine;
  changes: Change[];
  opened: Incident[];
  updated: Incident[];
  gaps: PolicyGapFinding[];
  /** Final state of every incident the engine holds. */
  incidents: Incident[];
}

/** The builder's observer and detector: tests state roles by label, so their labels are trusted unless a test says otherwise. */
export const BUILDER_SOURCES = ['test', 'test-detector'];

export function trustingBuilder(config: CorrelationConfigInput = {}): CorrelationConfigInput {
  if (config.roles?.trustedLabelSources !== undefined) return config;
  return { ...config, roles: { ...config.roles, trustedLabelSources: BUILDER_SOURCES } };
}

/** Feed events in the given order into a (new or given) engine and sort the output by kind. */
export function run(events: readonly CordonEvent[], config: CorrelationConfigInput | CorrelationEngine = {}): Run {
  const engine = config instanceof CorrelationEngine ? config : new CorrelationEngine(trustingBuilder(config));
  const changes: Change[] = [];
  for (const e of events) changes.push(...engine.ingest(e));
  return {
    engine,
    changes,
    opened: changes.flatMap((c) => (c.type === 'incident_opened' ? [c.incident] : [])),
    updated: changes.flatMap((c) => (c.type === 'incident_updated' ? [c.incident] : [])),
    gaps: changes.flatMap((c) => (c.type === 'policy_gap' ? [c.finding] : [])),
    incidents: engine.listIncidents(),
  };
}

/** Entity keys as the engine builds them. */
export const keyOf = (p: Party): string =>
  p.workload ? `${p.workload.kind}:${p.workload.namespace ? p.workload.namespace + '/' : ''}${p.workload.id}` : `ip:${p.ip}`;

/** Seeded PRNG (mulberry32) for generated streams. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
