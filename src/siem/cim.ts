import type { Incident } from '../correlate/incident';
import type { PolicyGapFinding } from '../correlate/policy-gap';
import { isLateral } from '../correlate/ports';
import {
  SEVERITY_NUMBER,
  entityAddress,
  entityIp,
  iso,
  ipOfKey,
  ledgerTime,
  parties,
  readDeadLetter,
  targetText,
  technique,
  unique,
  validIp,
  type DeadLetterLike,
  type LedgerRecordLike,
} from './inputs';

/**
 * Cordon's records as Splunk HEC events, with the fields the Common Information Model requires of
 * the data model each one is tagged for (connectors/splunk/eventtypes.conf, tags.conf): incidents
 * for Intrusion Detection and Alerts, policy-gap findings for Network Traffic (denied traffic, not
 * an attack), ledger records for Change. Pure: the sender (splunk-hec.ts) does the I/O.
 *
 * Cordon keeps no source ports (it counts attempts per destination port), so `src_port`, which the
 * network models require, is 0; and network telemetry names no user, so `user` of an incident
 * is `unknown`.
 */

/** The HEC JSON envelope (`/services/collector/event`). */
export interface HecEvent {
  /** Epoch seconds, milliseconds as the fraction. */
  time: number;
  host?: string;
  source?: string;
  sourcetype?: string;
  index?: string;
  event: Record<string, unknown> | string;
  /** Index-time fields: string or string-array values only (HEC refuses anything else with code 15). */
  fields?: Record<string, string | string[]>;
}

export interface HecMeta {
  index?: string;
  /** The HEC host field; also CIM `dvc`, the device that reported the event. */
  host?: string;
  source: string;
  sourcetypes: { incident: string; ledger: string; deadLetter: string; finding: string };
}

export const VENDOR_PRODUCT = 'Cordon';
/** Cordon keeps no source ports: what the network models' `src_port` gets. */
export const NO_PORT = 0;
export const UNKNOWN = 'unknown';

function dvc(meta: HecMeta): string {
  return meta.host ?? 'cordon';
}

/** Epoch milliseconds as HEC's `time`: seconds with a millisecond fraction. */
export function hecTime(ms: number): number {
  return Math.round(ms) / 1000;
}

function parseTime(at: string | number): number {
  const ms = typeof at === 'number' ? at : Date.parse(at);
  return Number.isNaN(ms) ? 0 : ms;
}

function envelope(meta: HecMeta, sourcetype: string, ms: number, event: Record<string, unknown>, fields: Record<string, string | string[]>): HecEvent {
  const e: HecEvent = { time: hecTime(ms), source: meta.source, sourcetype, event, fields };
  if (meta.host !== undefined) e.host = meta.host;
  if (meta.index !== undefined) e.index = meta.index;
  return e;
}

function defined<T extends Record<string, unknown>>(o: T): T {
  for (const k of Object.keys(o)) if (o[k] === undefined) delete o[k];
  return o;
}

/**
 * An incident as a CIM intrusion-detection alert. `action` is what happened to the attack traffic:
 * `blocked` while every attempt was denied, `allowed` once any permitted connection on a remote
 * administration service is part of the campaign. Containment is `status`, not `action`.
 */
export function incidentToCim(incident: Incident, meta: HecMeta): HecEvent {
  const p = parties(incident);
  const techniques = incident.techniques.map(technique);
  const event = defined({
    type: 'alert',
    app: 'cordon',
    vendor_product: VENDOR_PRODUCT,
    ids_type: 'network',
    id: incident.id,
    signature: 'Cordon lateral movement',
    signature_id: 'cordon:lateral_movement',
    category: unique(['lateral_movement', ...p.rules]),
    severity: incident.severity,
    severity_id: SEVERITY_NUMBER[incident.severity],
    action: incident.counters.allowed > 0 ? 'allowed' : 'blocked',
    status: incident.status,
    dvc: dvc(meta),
    user: UNKNOWN,
    src: p.root ? entityAddress(p.root) : entityAddress({ key: incident.root }),
    src_ip: p.root ? entityIp(p.root) : undefined,
    src_port: NO_PORT,
    dest: unique(p.targets.map(entityAddress)),
    dest_ip: unique(p.targets.map(entityIp).filter(validIp)),
    dest_port: p.ports,
    transport: incidentTransport(incident),
    subject: `Cordon ${incident.severity} incident ${incident.id}`,
    description: incident.summary,
    mitre_technique_id: incident.techniques,
    mitre_technique: techniques.map((t) => t.name ?? t.id),
    mitre_tactic: unique(techniques.map((t) => t.tactic?.name).filter((x): x is string => !!x)),
    annotations: { mitre_attack: { mitre_technique_id: incident.techniques } },
    risk_score: incident.score,
    confidence: incident.confidence,
    version: incident.version,
    first_seen: iso(incident.firstSeen),
    last_seen: iso(incident.lastSeen),
    entities: incident.entities.map((e) => defined({ key: e.key, kind: e.kind, name: e.name, ip: e.ip, role: e.role, position: e.position })),
    path: { nodes: incident.path.nodes, edges: incident.path.edges, edges_dropped: incident.path.edgesDropped },
    evidence: { total: incident.evidence.total, dropped: incident.evidence.dropped, by_rule: incident.evidence.byRule },
    counters: incident.counters,
  });
  return envelope(meta, meta.sourcetypes.incident, incident.lastSeen, event, {
    cordon_kind: 'incident',
    cordon_incident_id: incident.id,
    cordon_severity: incident.severity,
  });
}

/** Every remote-administration service Cordon classifies (ports.ts) is a TCP service. */
function incidentTransport(incident: Incident): string {
  const services = incident.path.edges.flatMap((e) => e.services);
  return services.length > 0 && services.every(isLateral) ? 'tcp' : UNKNOWN;
}

/** The Change data model's `action` of each ledger action (CIM: created, deleted, modified, started, stopped, read). */
const CHANGE_ACTIONS: Readonly<Record<string, 'created' | 'deleted' | 'modified' | 'started' | 'stopped' | 'read'>> = {
  incident_raised: 'created',
  incident_updated: 'modified',
  playbook_started: 'started',
  playbook_step: 'modified',
  playbook_changed: 'modified',
  approval_requested: 'created',
  approval_given: 'modified',
  approval_refused: 'modified',
  approval_timed_out: 'modified',
  approval_escalated: 'modified',
  quarantine_applied: 'created',
  quarantine_extended: 'modified',
  quarantine_released: 'deleted',
  quarantine_expired: 'deleted',
  // the attempt was a creation; `status=failure` says it did not happen
  quarantine_failed: 'created',
  drift_detected: 'read',
  dry_run: 'read',
  circuit_breaker_opened: 'stopped',
  circuit_breaker_closed: 'started',
  rebuild: 'modified',
};

/** What a ledger action changes, as the Change model's `change_type`. */
function changeType(action: string): string {
  const family = action.split(/[._:-]/)[0] ?? action;
  return { quarantine: 'containment', drift: 'containment', dry: 'playbook', circuit: 'circuit_breaker' }[family] ?? family;
}

/** A ledger action that records an attempt that did not happen (`quarantine_failed`). */
export function changeFailed(action: string): boolean {
  return /(^|[._:-])failed$/.test(action);
}

const CREATED = new Set(['apply', 'applied', 'quarantine', 'quarantined', 'create', 'created', 'open', 'opened', 'contain', 'contained']);
const DELETED = new Set(['release', 'released', 'expire', 'expired', 'remove', 'removed', 'delete', 'deleted', 'revert', 'reverted']);

/**
 * Ledger actions as the Change data model's `action`: the table for the ledger's own actions,
 * else the last verb decides (`quarantine.release` is a deletion).
 */
export function changeAction(action: string): 'created' | 'deleted' | 'modified' | 'started' | 'stopped' | 'read' {
  const known = CHANGE_ACTIONS[action];
  if (known) return known;
  const words = action.toLowerCase().split(/[._:-]+/).reverse();
  for (const w of words) {
    if (DELETED.has(w)) return 'deleted';
    if (CREATED.has(w)) return 'created';
  }
  return 'modified';
}

/** The lease a `quarantine_*` record carries in after/before, read loosely (the ledger owns the schema). */
interface LeaseView {
  labels?: Record<string, unknown>;
  ref?: { kind?: string; name?: string; namespace?: string; ip?: string };
}

function leaseOf(v: unknown): LeaseView | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as LeaseView) : undefined;
}

/** Change `object_attrs`: the labels a quarantine set or removed, else the fields the record's payload holds. */
function objectAttrs(record: LedgerRecordLike): string[] {
  const after = leaseOf(record.after);
  const before = leaseOf(record.before);
  const labels = Object.keys({ ...(before?.labels ?? {}), ...(after?.labels ?? {}) });
  if (labels.length > 0) return labels.sort();
  const keys = Object.keys({ ...(before ?? {}), ...(after ?? {}) });
  return keys.length > 0 ? keys.sort() : [UNKNOWN];
}

/**
 * A ledger record as a CIM change event: who (`user`) did what (`command`, `action`) to which
 * workload (`object`, `object_id` = its entity key), whether it happened (`status`, with the
 * reason as `result`), reported by this Cordon (`dvc`, also `src`: Cordon makes the change).
 */
export function ledgerToCim(record: LedgerRecordLike, meta: HecMeta): HecEvent {
  const target = targetText(record.target);
  const lease = leaseOf(record.after) ?? leaseOf(record.before);
  const ref = lease?.ref;
  const colon = target.indexOf(':');
  const event = defined({
    vendor_product: VENDOR_PRODUCT,
    app: 'cordon',
    change_type: changeType(record.action),
    action: changeAction(record.action),
    command: record.action,
    object: ref?.name ? (ref.namespace ? `${ref.namespace}/${ref.name}` : ref.name) : entityAddress({ key: target }),
    object_id: target,
    object_category: ref?.kind ?? (colon > 0 ? target.slice(0, colon) : 'workload'),
    object_attrs: objectAttrs(record),
    dest: validIp(ref?.ip) ? ref.ip : (ipOfKey(target) ?? entityAddress({ key: target })),
    dvc: dvc(meta),
    src: dvc(meta),
    user: record.actor,
    user_type: record.actor.slice(0, Math.max(0, record.actor.indexOf(':'))) || undefined,
    status: changeFailed(record.action) ? 'failure' : 'success',
    result: record.reason,
    seq: record.seq,
    hash: record.hash,
    prev_hash: record.prevHash,
    at: ledgerTime(record.at),
    incident_id: record.incidentId,
    approval_id: record.approvalId,
    before: record.before ?? null,
    after: record.after ?? null,
  });
  const fields: Record<string, string | string[]> = { cordon_kind: 'ledger', cordon_seq: String(record.seq) };
  if (record.incidentId) fields.cordon_incident_id = record.incidentId;
  return envelope(meta, meta.sourcetypes.ledger, parseTime(record.at), event, fields);
}

/** A dead letter: the refused bytes (text, or base64), the reason, and where the record came from. */
export function deadLetterToCim(letter: DeadLetterLike, meta: HecMeta, opts: { maxOriginalBytes: number; now: number }): HecEvent {
  const v = readDeadLetter(letter, opts.maxOriginalBytes);
  const event = defined({
    vendor_product: VENDOR_PRODUCT,
    app: 'cordon',
    id: v.id,
    reason: v.reason,
    reason_class: v.reasonClass,
    source_topic: v.topic,
    source_partition: v.partition,
    source_offset: v.offset,
    source_timestamp: v.timestamp !== undefined ? iso(v.timestamp) : undefined,
    format: v.format,
    key: v.key,
    original: v.original,
    original_encoding: v.encoding,
    original_bytes: v.bytes,
    truncated: v.truncated,
    sha256: v.sha256,
  });
  const at = v.at !== undefined ? Date.parse(v.at) : opts.now;
  return envelope(meta, meta.sourcetypes.deadLetter, at, event, { cordon_kind: 'dead_letter', cordon_reason: v.reasonClass });
}

function ipVersion(ip: string | undefined): 'ipv4' | 'ipv6' | undefined {
  return ip === undefined ? undefined : ip.includes(':') ? 'ipv6' : 'ipv4';
}

/**
 * A policy-gap finding as CIM Network Traffic (`action=blocked`): traffic a policy keeps denying,
 * a missing allow rule rather than an attack, so not Intrusion Detection.
 */
export function findingToCim(f: PolicyGapFinding, meta: HecMeta): HecEvent {
  const srcIp = entityIp(f.src);
  const dstIp = entityIp(f.dst);
  const icmp = f.protocol === 'icmp' || f.protocol === 'icmpv6';
  const event = defined({
    app: f.service === 'other' ? UNKNOWN : f.service,
    vendor_product: VENDOR_PRODUCT,
    id: f.id,
    signature: 'Cordon policy gap',
    signature_id: 'cordon:policy_gap',
    category: ['policy_gap'],
    severity: f.severity,
    severity_id: SEVERITY_NUMBER[f.severity],
    action: 'blocked',
    dvc: dvc(meta),
    src: entityAddress(f.src),
    src_ip: srcIp,
    src_port: NO_PORT,
    dest: entityAddress(f.dst),
    dest_ip: dstIp,
    dest_port: f.port,
    // CIM: transport tcp, udp or icmp (ICMPv6 too, with protocol_version ipv6); protocol the layer 3
    transport: icmp ? 'icmp' : f.protocol,
    protocol: srcIp || dstIp ? (icmp ? 'icmp' : 'ip') : undefined,
    protocol_version: ipVersion(dstIp ?? srcIp),
    rule: f.policy?.name,
    service: f.service,
    attempts: f.attempts,
    count: f.attempts,
    first_seen: iso(f.firstSeen),
    last_seen: iso(f.lastSeen),
    policy_id: f.policy?.id,
    policy_name: f.policy?.name,
    description: f.summary,
  });
  return envelope(meta, meta.sourcetypes.finding, f.lastSeen, event, { cordon_kind: 'finding' });
}
