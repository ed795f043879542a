import type { Incident } from '../correlate/incident';
import type { PolicyGapFinding } from '../correlate/policy-gap';
import {
  SEVERITY_NUMBER,
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
 * Cordon's records as Splunk HEC events, with field names from the Common Information Model where
 * one fits: incidents and findings against the Intrusion Detection and Alerts data models
 * (`signature`, `signature_id`, `severity`, `src`, `dest`, `dest_port`, `action`, `category`,
 * `vendor_product`, ...), ledger records against the Change data model (`object`, `user`,
 * `command`, `status`, ...). Pure: the sender (splunk-hec.ts) does the I/O.
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
  host?: string;
  source: string;
  sourcetypes: { incident: string; ledger: string; deadLetter: string; finding: string };
}

export const VENDOR_PRODUCT = 'Cordon';

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
  const name = (e: { name?: string; ip?: string; key: string }) => e.name ?? e.ip ?? e.key;
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
    src: p.root ? name(p.root) : incident.root,
    src_ip: p.root && validIp(p.root.ip) ? p.root.ip : undefined,
    dest: unique(p.targets.map(name)),
    dest_ip: p.targetIps,
    dest_port: p.ports,
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

const CREATED = new Set(['apply', 'applied', 'quarantine', 'quarantined', 'create', 'created', 'open', 'opened', 'contain', 'contained']);
const DELETED = new Set(['release', 'released', 'expire', 'expired', 'remove', 'removed', 'delete', 'deleted', 'revert', 'reverted']);

/** Ledger actions as the Change data model's `action`: the last verb decides (`quarantine.release` is a deletion). */
export function changeAction(action: string): 'created' | 'deleted' | 'modified' {
  const words = action.toLowerCase().split(/[._:-]+/).reverse();
  for (const w of words) {
    if (DELETED.has(w)) return 'deleted';
    if (CREATED.has(w)) return 'created';
  }
  return 'modified';
}

/** A ledger record as a CIM change event: who (`user`) did what (`command`) to what (`object`). */
export function ledgerToCim(record: LedgerRecordLike, meta: HecMeta): HecEvent {
  const target = targetText(record.target);
  const event = defined({
    vendor_product: VENDOR_PRODUCT,
    app: 'cordon',
    change_type: 'containment',
    action: changeAction(record.action),
    command: record.action,
    object: target,
    object_category: target.includes(':') ? target.slice(0, target.indexOf(':')) : 'workload',
    dest: ipOfKey(target) ?? target,
    user: record.actor,
    status: 'success',
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

/** A policy-gap finding as a low-severity intrusion-detection event (`action` blocked: it was denied). */
export function findingToCim(f: PolicyGapFinding, meta: HecMeta): HecEvent {
  const event = defined({
    type: 'alert',
    app: 'cordon',
    vendor_product: VENDOR_PRODUCT,
    ids_type: 'network',
    id: f.id,
    signature: 'Cordon policy gap',
    signature_id: 'cordon:policy_gap',
    category: ['policy_gap'],
    severity: f.severity,
    severity_id: SEVERITY_NUMBER[f.severity],
    action: 'blocked',
    src: f.src.name ?? f.src.ip ?? f.src.key,
    src_ip: validIp(f.src.ip) ? f.src.ip : undefined,
    dest: f.dst.name ?? f.dst.ip ?? f.dst.key,
    dest_ip: validIp(f.dst.ip) ? f.dst.ip : undefined,
    dest_port: f.port,
    transport: f.protocol,
    service: f.service,
    attempts: f.attempts,
    first_seen: iso(f.firstSeen),
    last_seen: iso(f.lastSeen),
    policy_id: f.policy?.id,
    policy_name: f.policy?.name,
    description: f.summary,
  });
  return envelope(meta, meta.sourcetypes.finding, f.lastSeen, event, { cordon_kind: 'finding' });
}
