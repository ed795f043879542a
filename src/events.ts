import { z } from 'zod';

/**
 * The internal event contracts (DESIGN.md section 2). Every normalizer produces these;
 * everything past the ingest edge trusts them.
 */

// C0/C1 controls, soft hyphen, Arabic letter mark (a bidi control), Mongolian vowel separator,
// zero-width and bidi marks, line/paragraph separators, bidi embeddings/overrides/isolates,
// word joiners, BOM, interlinear annotation controls, and Unicode tag characters (U+E0000..E007F).
const CONTROL_OR_INVISIBLE =
  /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]|\udb40[\udc00-\udc7f]/;
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** An identifier or display name: bounded, printable, no bidi overrides or zero-width tricks. */
export const Name = z
  .string()
  .min(1)
  .max(256)
  .refine((s) => !CONTROL_OR_INVISIBLE.test(s), {
    message: 'contains control, zero-width or bidirectional-override characters',
  });

const LabelKey = z
  .string()
  .min(1)
  .max(317)
  .refine((k) => !FORBIDDEN_KEYS.has(k), { message: 'is a forbidden key (prototype pollution)' })
  .refine((s) => !CONTROL_OR_INVISIBLE.test(s), { message: 'contains control or invisible characters' });
const LabelValue = z.string().max(256);

export const Labels = z.record(LabelKey, LabelValue);
export type Labels = z.infer<typeof Labels>;

export const WORKLOAD_KINDS = ['pod', 'vm', 'host', 'service', 'node', 'external'] as const;
export type WorkloadKind = (typeof WORKLOAD_KINDS)[number];

export const WorkloadRef = z.object({
  kind: z.enum(WORKLOAD_KINDS),
  id: Name,
  name: Name,
  namespace: Name.optional(),
  labels: Labels.default({}),
});
export type WorkloadRef = z.infer<typeof WorkloadRef>;

export const Ip = z.union([z.ipv4(), z.ipv6()], { error: 'is not a valid IPv4 or IPv6 address' });
export const Port = z.number().int().min(0).max(65535);

export const Endpoint = z
  .object({ ip: Ip.optional(), port: Port.optional(), workload: WorkloadRef.optional() })
  .refine((e) => e.ip !== undefined || e.workload !== undefined, {
    message: 'needs an ip or a workload',
  });
export type Endpoint = z.infer<typeof Endpoint>;

export const PROTOCOLS = ['tcp', 'udp', 'icmp', 'icmpv6', 'sctp', 'other'] as const;
export type Protocol = (typeof PROTOCOLS)[number];

/** Epoch milliseconds between 2000-01-01 and 2100-01-01; freshness is checked at ingest. */
export const EventTime = z
  .number()
  .int()
  .min(946684800000, { message: 'is before the year 2000' })
  .max(4102444800000, { message: 'is after the year 2100' });

export const Observer = z.object({ type: Name, name: Name });

/** Zeek's conn_state vocabulary: how far a connection got (SF: established and closed normally). */
export const CONN_STATES = ['S0', 'S1', 'S2', 'S3', 'SF', 'REJ', 'RSTO', 'RSTR', 'RSTOS0', 'RSTRH', 'SH', 'SHR', 'OTH'] as const;
export type ConnState = (typeof CONN_STATES)[number];

/** An executable's file name as a host agent logged it: lower-case, no directory, printable ASCII. */
export const PROCESS_NAME = /^[a-z0-9 !#$%&'()+,.;=@[\]^_`{}~-]{1,128}$/;
export const ProcessName = z.string().regex(PROCESS_NAME, { message: 'expected a lower-case file name without a path' });

/** Protocols a sensor recognised in the payload (Zeek's `service`: "dce_rpc,smb"). */
export const APP_PROTOCOLS = /^[a-z0-9_-]{1,32}(,[a-z0-9_-]{1,32}){0,7}$/;
export const AppProtocols = z.string().regex(APP_PROTOCOLS, { message: 'expected comma-separated protocol names' });

/**
 * What the observer saw beyond the addresses and ports. Hints, all optional and bounded: they can
 * only add to the evidence against a flow's source (signals.ts), never excuse anyone.
 */
const flowHints = {
  connState: z.enum(CONN_STATES).optional(),
  appProtocols: AppProtocols.optional(),
  /** As the observing host saw it: inbound is a record of its own accepting side. */
  direction: z.enum(['inbound', 'outbound']).optional(),
  /** The observing host's local process (WFP Application, Sysmon Image). */
  process: ProcessName.optional(),
};

const flowShape = {
  id: Name,
  time: EventTime,
  src: Endpoint,
  dst: Endpoint,
  protocol: z.enum(PROTOCOLS),
  dstPort: Port,
  policy: z.object({ id: Name, name: Name }).optional(),
  observer: Observer,
  ...flowHints,
};

export const DeniedFlow = z.object({ ...flowShape, action: z.literal('denied') });
export type DeniedFlow = z.infer<typeof DeniedFlow>;

/** A permitted flow: kept for impact previews and baselines, never counted as a denial. */
export const AllowedFlow = z.object({ ...flowShape, action: z.literal('allowed') });
export type AllowedFlow = z.infer<typeof AllowedFlow>;

export const ANOMALY_KINDS = [
  'new_edge',
  'rare_port',
  'auth_burst',
  'credential_use',
  'process_spawn',
  'siem_alert',
] as const;
export type AnomalyKind = (typeof ANOMALY_KINDS)[number];

export const IpOnly = z.object({ ip: Ip });
export const AnomalyEntity = z.union([WorkloadRef, IpOnly]);
export type AnomalyEntity = z.infer<typeof AnomalyEntity>;

export const Anomaly = z.object({
  id: Name,
  time: EventTime,
  entity: AnomalyEntity,
  kind: z.enum(ANOMALY_KINDS),
  score: z.number().min(0).max(1),
  detector: Name,
  detail: z.record(LabelKey, z.unknown()).optional(),
});
export type Anomaly = z.infer<typeof Anomaly>;

export type Flow = DeniedFlow | AllowedFlow;
export type CordonEvent = Flow | Anomaly;

export function isFlow(e: CordonEvent): e is Flow {
  return 'action' in e;
}

export function isDenied(e: CordonEvent): e is DeniedFlow {
  return 'action' in e && e.action === 'denied';
}

/**
 * Identity first: a workload is keyed by its id, an address only when nothing better is known.
 * A pod that comes back with a new IP keeps its key; a new pod on an old IP gets its own.
 */
export function entityKey(e: { ip?: string; workload?: WorkloadRef } | WorkloadRef | { ip: string }): string {
  if ('kind' in e && 'id' in e) return `${e.kind}:${e.namespace ? e.namespace + '/' : ''}${e.id}`;
  if ('workload' in e && e.workload) return entityKey(e.workload);
  if ('ip' in e && e.ip) return `ip:${e.ip}`;
  return 'unknown';
}

/** The entity an event is about: the source of a flow, the subject of an anomaly. */
export function subjectKey(e: CordonEvent): string {
  return isFlow(e) ? entityKey(e.src) : entityKey(e.entity);
}
