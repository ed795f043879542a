import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import type { IHeaders } from '../kafka';
import type { Incident, IncidentEntity, Severity } from '../correlate/incident';
import type { Rule } from '../correlate/evidence';
import type { PolicyGapFinding } from '../correlate/policy-gap';
import { DLQ_HEADERS, reasonClass } from '../ingest/dead-letter';

/**
 * What the SIEM connectors read, and the readings of it that both the ECS (Elasticsearch) and the
 * CIM (Splunk) mappings share. Pure: no I/O, no clock.
 */

/**
 * A ledger record (DESIGN.md section 2), structurally: the ledger module owns the real type; the
 * SIEM side needs only these fields and must not break when the ledger adds more.
 */
export interface LedgerRecordLike {
  seq: number;
  prevHash: string;
  hash: string;
  /** ISO 8601 string or epoch milliseconds. */
  at: string | number;
  actor: string;
  action: string;
  target: unknown;
  before: unknown;
  after: unknown;
  reason: string;
  incidentId?: string;
  approvalId?: string;
}

/** A record read back from the dead-letter topic (a kafkajs KafkaMessage has this shape). */
export interface DeadLetterLike {
  key: Buffer | null;
  value: Buffer | null;
  headers?: IHeaders;
}

/** What the SIEM connectors take: the four kinds of Cordon record an analyst looks at. */
export type SiemDoc =
  | { kind: 'incident'; incident: Incident }
  | { kind: 'ledger'; record: LedgerRecordLike }
  | { kind: 'dead_letter'; letter: DeadLetterLike }
  | { kind: 'finding'; finding: PolicyGapFinding };

/** A dead letter, decoded: where the record came from, why it was refused, and its bytes as text. */
export interface DeadLetterView {
  /** `<topic>-<partition>-<offset>` of the original record: the document id, stable across replays. */
  id: string;
  reason: string;
  reasonClass: string;
  topic?: string;
  partition?: number;
  offset?: string;
  /** The original record's Kafka timestamp, epoch ms. */
  timestamp?: number;
  format?: string;
  /** When the dead letter was written, ISO 8601. */
  at?: string;
  /** The original bytes: UTF-8 text when they are text, base64 otherwise, cut at `maxBytes`. */
  original: string;
  encoding: 'utf8' | 'base64';
  bytes: number;
  truncated: boolean;
  sha256: string;
  key?: string;
}

/** Severity as a number, the scale Elastic's detection rules use (low 21 .. critical 99). */
export const SEVERITY_NUMBER: Readonly<Record<Severity, number>> = { low: 21, medium: 47, high: 73, critical: 99 };

/** The ATT&CK techniques Cordon's rules emit (src/correlate/ports.ts, roles.ts, scoring.ts), named. */
export const ATTACK_TECHNIQUES: Readonly<Record<string, { name: string; tactic: keyof typeof ATTACK_TACTICS }>> = {
  T1021: { name: 'Remote Services', tactic: 'TA0008' },
  'T1021.001': { name: 'Remote Desktop Protocol', tactic: 'TA0008' },
  'T1021.002': { name: 'SMB/Windows Admin Shares', tactic: 'TA0008' },
  'T1021.003': { name: 'Distributed Component Object Model', tactic: 'TA0008' },
  'T1021.004': { name: 'SSH', tactic: 'TA0008' },
  'T1021.005': { name: 'VNC', tactic: 'TA0008' },
  'T1021.006': { name: 'Windows Remote Management', tactic: 'TA0008' },
  T1046: { name: 'Network Service Discovery', tactic: 'TA0007' },
  T1047: { name: 'Windows Management Instrumentation', tactic: 'TA0002' },
  T1210: { name: 'Exploitation of Remote Services', tactic: 'TA0008' },
  'T1552.007': { name: 'Container API', tactic: 'TA0006' },
  'T1569.002': { name: 'Service Execution', tactic: 'TA0002' },
  T1570: { name: 'Lateral Tool Transfer', tactic: 'TA0008' },
  T1609: { name: 'Container Administration Command', tactic: 'TA0002' },
  T1613: { name: 'Container and Resource Discovery', tactic: 'TA0007' },
};

export const ATTACK_TACTICS = {
  TA0002: 'Execution',
  TA0006: 'Credential Access',
  TA0007: 'Discovery',
  TA0008: 'Lateral Movement',
} as const;

export const ATTACK_URL = 'https://attack.mitre.org/techniques/';

export interface TechniqueView {
  id: string;
  name?: string;
  /** The parent technique of a sub-technique (`T1021` for `T1021.002`). */
  parent?: string;
  tactic?: { id: string; name: string };
  reference: string;
}

export function technique(id: string): TechniqueView {
  const known = ATTACK_TECHNIQUES[id];
  const parent = id.includes('.') ? id.slice(0, id.indexOf('.')) : undefined;
  const tacticId = known?.tactic ?? (parent ? ATTACK_TECHNIQUES[parent]?.tactic : undefined);
  return {
    id,
    name: known?.name,
    parent,
    tactic: tacticId ? { id: tacticId, name: ATTACK_TACTICS[tacticId] } : undefined,
    reference: ATTACK_URL + id.replace('.', '/'),
  };
}

/** The parts of an incident an analyst looks at first: who started it, who it hit, on which ports. */
export interface IncidentParties {
  root?: IncidentEntity;
  /** Every entity other than the root that the campaign touched (targets and pivots). */
  targets: IncidentEntity[];
  ips: string[];
  hosts: string[];
  targetIps: string[];
  ports: number[];
  /** Evidence rules that fired, the heaviest first. */
  rules: Rule[];
}

export function parties(incident: Incident): IncidentParties {
  const root = incident.entities.find((e) => e.key === incident.root) ?? incident.entities.find((e) => e.position === 'root');
  const targets = incident.entities.filter((e) => e !== root);
  const ips = unique(incident.entities.map((e) => e.ip).filter(validIp));
  const hosts = unique(incident.entities.map((e) => e.name).filter((n): n is string => typeof n === 'string' && n.length > 0));
  const targetIps = unique(targets.map((e) => e.ip).filter(validIp));
  const ports = unique(incident.path.edges.flatMap((e) => e.ports)).sort((a, b) => a - b);
  const rules = (Object.entries(incident.evidence.byRule) as [Rule, { count: number; weight: number }][])
    .sort((a, b) => b[1].weight - a[1].weight || a[0].localeCompare(b[0]))
    .map(([rule]) => rule);
  return { root, targets, ips, hosts, targetIps, ports, rules };
}

export function validIp(ip: string | undefined): ip is string {
  return typeof ip === 'string' && isIP(ip) !== 0;
}

/** Entity keys of the form `ip:<address>` carry an address. */
export function ipOfKey(key: string): string | undefined {
  const ip = key.startsWith('ip:') ? key.slice(3) : undefined;
  return validIp(ip) ? ip : undefined;
}

/**
 * An entity as one printable address (ECS `*.address`, CIM `src`/`dest`): its name, else its address, else its key without the kind
 * (`pod:shop/cart-7f9c` -> `shop/cart-7f9c`); never the internal `ip:10.0.0.5` form.
 */
export function entityAddress(e: { key: string; name?: string; ip?: string }): string {
  if (e.name) return e.name;
  if (validIp(e.ip)) return e.ip;
  const fromKey = ipOfKey(e.key);
  if (fromKey) return fromKey;
  const colon = e.key.indexOf(':');
  return colon > 0 && colon < e.key.length - 1 ? e.key.slice(colon + 1) : e.key;
}

export function entityIp(e: { key: string; ip?: string }): string | undefined {
  return validIp(e.ip) ? e.ip : ipOfKey(e.key);
}

export function unique<T>(values: readonly T[]): T[] {
  return [...new Set(values)];
}

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** A ledger timestamp as ES and Splunk take it: epoch ms become ISO; strings pass as they are. */
export function ledgerTime(at: string | number): string {
  return typeof at === 'number' ? iso(at) : at;
}

/** A ledger target as a keyword: entity keys pass through, anything structured becomes canonical JSON. */
export function targetText(target: unknown): string {
  return typeof target === 'string' ? target : JSON.stringify(target);
}

function headerText(headers: IHeaders | undefined, name: string): string | undefined {
  const v = headers?.[name];
  const first = Array.isArray(v) ? v[0] : v;
  if (first === undefined) return undefined;
  return Buffer.isBuffer(first) ? first.toString('utf8') : String(first);
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });
// Text, for this purpose: valid UTF-8 without NUL or other C0 controls except tab, CR and LF.
const BINARY_CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f]/;

/** Bytes as text if they are text, else base64; cut to `maxBytes` of the original. */
export function bytesAsText(bytes: Buffer, maxBytes: number): { text: string; encoding: 'utf8' | 'base64'; truncated: boolean } {
  const truncated = bytes.length > maxBytes;
  let text: string | undefined;
  try {
    const decoded = UTF8.decode(bytes);
    if (!BINARY_CONTROL.test(decoded)) text = decoded;
  } catch {
    text = undefined;
  }
  if (text !== undefined) {
    // cut at a character boundary at or below maxBytes
    let cut = text;
    if (truncated) {
      cut = Buffer.from(text, 'utf8').subarray(0, maxBytes).toString('utf8');
      if (cut.endsWith('\ufffd')) cut = cut.slice(0, -1);
    }
    return { text: cut, encoding: 'utf8', truncated };
  }
  return { text: bytes.subarray(0, maxBytes).toString('base64'), encoding: 'base64', truncated };
}

/** Reads a dead letter's own headers (src/ingest/dead-letter.ts) and its original bytes. */
export function readDeadLetter(letter: DeadLetterLike, maxBytes: number): DeadLetterView {
  const h = letter.headers;
  const value = letter.value ?? Buffer.alloc(0);
  const reason = headerText(h, DLQ_HEADERS.reason) ?? 'unknown reason (no cordon-dlq-reason header)';
  const topic = headerText(h, DLQ_HEADERS.topic);
  const partitionText = headerText(h, DLQ_HEADERS.partition);
  const partition = partitionText !== undefined && /^\d+$/.test(partitionText) ? Number(partitionText) : undefined;
  const offset = headerText(h, DLQ_HEADERS.offset);
  const tsText = headerText(h, DLQ_HEADERS.timestamp);
  const timestamp = tsText !== undefined && /^\d+$/.test(tsText) ? Number(tsText) : undefined;
  const at = headerText(h, DLQ_HEADERS.at);
  const sha256 = createHash('sha256').update(value).digest('hex');
  const id =
    topic !== undefined && partition !== undefined && offset !== undefined && /^\d+$/.test(offset)
      ? `${topic}-${partition}-${offset}`
      : `dlq-${sha256.slice(0, 32)}`;
  const original = bytesAsText(value, maxBytes);
  const key = letter.key ? bytesAsText(letter.key, 1024).text : undefined;
  return {
    id,
    reason,
    reasonClass: reasonClass(reason),
    topic,
    partition,
    offset,
    timestamp,
    format: headerText(h, DLQ_HEADERS.format),
    at: at !== undefined && !Number.isNaN(Date.parse(at)) ? at : undefined,
    original: original.text,
    encoding: original.encoding,
    bytes: value.length,
    truncated: original.truncated,
    sha256,
    key,
  };
}
