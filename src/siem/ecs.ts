import type { Incident } from '../correlate/incident';
import type { PolicyGapFinding } from '../correlate/policy-gap';
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
 * Cordon's documents in the Elastic Common Schema, and the index templates that map them.
 * Pure: the writer (elasticsearch.ts) does the I/O. Field names and types follow ECS 8.x (the
 * types as in elastic/ecs generated/elasticsearch/composable/component/*.json); what ECS has no
 * name for lives under `cordon.*`, in snake_case like ECS itself.
 *
 * Each kind is written to a concrete index (`<prefix>-incidents`, ...) that its template gives an
 * alias in Elastic's naming scheme, `logs-<dataset>-<namespace>` (`logs-cordon.incident-default`),
 * so the `logs-*` pattern of Elastic Security's default data view and of its External Alerts rule
 * reads Cordon's alerts with no setup. An alias rather than a data stream: incidents and findings
 * are replaced by newer versions under one `_id`, which a data stream does not allow.
 *
 * The mappings are `dynamic: strict`: a document with a field the template does not know is
 * refused (and lands in the writer's `failed` list) instead of silently growing the mapping.
 * Free-form parts (a ledger record's before/after, the attack path edges, evidence items) are
 * kept in `_source` but not indexed (`enabled: false`).
 */

export const ECS_VERSION = '8.11.0';
/** Bumped whenever a mapping below changes; stored as the template's `version`. */
export const TEMPLATE_VERSION = 2;

export const DOC_KINDS = ['incident', 'ledger', 'dead_letter', 'finding'] as const;
export type DocKind = (typeof DOC_KINDS)[number];

/** `event.dataset` of each kind: the dataset part of its `logs-<dataset>-<namespace>` alias. */
export const DATASETS: Readonly<Record<DocKind, string>> = {
  incident: 'cordon.incident',
  ledger: 'cordon.ledger',
  dead_letter: 'cordon.dlq',
  finding: 'cordon.finding',
};

/** Elastic's data stream naming scheme; the namespace is `default` unless configured. */
export function aliasName(kind: DocKind, namespace = 'default'): string {
  return `logs-${DATASETS[kind]}-${namespace}`;
}

/** Index (and template) name of each kind under a prefix: `cordon-incidents`, `cordon-ledger`, ... */
export function indexName(prefix: string, kind: DocKind): string {
  const suffix = { incident: 'incidents', ledger: 'ledger', dead_letter: 'dlq', finding: 'findings' }[kind];
  return `${prefix}-${suffix}`;
}

/** One document ready for the bulk API: which index, which id, and how it may overwrite. */
export interface EsAction {
  kind: DocKind;
  id: string;
  /**
   * `index` with an external version overwrites only with a higher version (incidents, findings);
   * `create` never overwrites (ledger records, dead letters): a replay answers 409, which is success.
   */
  op: 'index' | 'create';
  version?: number;
  doc: Record<string, unknown>;
}

// ---------------------------------------------------------------- mappings

const keyword = { type: 'keyword', ignore_above: 1024 } as const;
const text = { type: 'text' } as const;
/** What ECS maps `message` and `error.message` as; `text` where the cluster lacks the mapper-extras module. */
type MessageType = 'match_only_text' | 'text';
const long = { type: 'long' } as const;
const float = { type: 'float' } as const;
const date = { type: 'date' } as const;
const ip = { type: 'ip' } as const;
const bool = { type: 'boolean' } as const;
const stored = { type: 'object', enabled: false } as const;
/** ECS `event.original`: kept, never indexed. */
const original = { type: 'keyword', index: false, doc_values: false } as const;
const obj = (properties: Record<string, unknown>) => ({ type: 'object', properties });

const ecsBase = (message: MessageType) => ({
  '@timestamp': date,
  message: { type: message },
  tags: keyword,
  ecs: obj({ version: keyword }),
  event: obj({
    kind: keyword,
    category: keyword,
    type: keyword,
    action: keyword,
    id: keyword,
    dataset: keyword,
    module: keyword,
    provider: keyword,
    severity: long,
    risk_score: float,
    risk_score_norm: float,
    start: date,
    end: date,
    created: date,
    sequence: long,
    reason: keyword,
    outcome: keyword,
    reference: keyword,
    ingested: date,
    original,
  }),
  observer: obj({ vendor: keyword, product: keyword, type: keyword, name: keyword }),
  related: obj({ ip, hosts: keyword, user: keyword, hash: keyword }),
});

const endpoint = obj({ ip, address: keyword, domain: keyword, port: long });

const threat = obj({
  framework: keyword,
  technique: obj({
    id: keyword,
    name: keyword,
    reference: keyword,
    subtechnique: obj({ id: keyword, name: keyword, reference: keyword }),
  }),
  tactic: obj({ id: keyword, name: keyword, reference: keyword }),
});

const rule = obj({ name: keyword, id: keyword, ruleset: keyword, category: keyword });

const entity = obj({
  key: keyword,
  kind: keyword,
  name: keyword,
  ip,
  role: keyword,
  role_source: keyword,
  position: keyword,
});

const mappings = (message: MessageType): Record<DocKind, Record<string, unknown>> => ({
  incident: {
    ...ecsBase(message),
    rule,
    threat,
    source: endpoint,
    destination: endpoint,
    host: obj({ name: keyword, ip }),
    cordon: obj({
      incident: obj({
        id: keyword,
        status: keyword,
        severity: keyword,
        score: float,
        confidence: float,
        root: keyword,
        version: long,
        window_start: date,
        first_seen: date,
        last_seen: date,
        summary: text,
        techniques: keyword,
        ports: long,
        targets: keyword,
        entities: entity,
        counters: obj({ denied: long, allowed: long, anomalies: long, entities_dropped: long }),
        evidence: obj({ total: long, dropped: long, rules: keyword, by_rule: stored, items: stored }),
        path: obj({ nodes: keyword, edges: stored, edges_dropped: long }),
      }),
    }),
  },
  ledger: {
    ...ecsBase(message),
    cordon: obj({
      ledger: obj({
        seq: long,
        hash: keyword,
        prev_hash: keyword,
        actor: keyword,
        action: keyword,
        target: keyword,
        reason: text,
        incident_id: keyword,
        approval_id: keyword,
        before: stored,
        after: stored,
      }),
    }),
  },
  dead_letter: {
    ...ecsBase(message),
    error: obj({ message: { type: message }, type: keyword }),
    cordon: obj({
      source: obj({
        topic: keyword,
        partition: long,
        offset: long,
        timestamp: date,
        format: keyword,
        key: keyword,
        encoding: keyword,
        bytes: long,
        truncated: bool,
        sha256: keyword,
      }),
    }),
  },
  finding: {
    ...ecsBase(message),
    rule,
    source: endpoint,
    destination: endpoint,
    network: obj({ transport: keyword }),
    cordon: obj({
      finding: obj({
        id: keyword,
        type: keyword,
        service: keyword,
        attempts: long,
        first_seen: date,
        last_seen: date,
        policy: obj({ id: keyword, name: keyword }),
        src_key: keyword,
        dst_key: keyword,
        summary: text,
      }),
    }),
  },
});

export interface TemplateOptions {
  numberOfShards?: number;
  numberOfReplicas?: number;
  /** The namespace of the `logs-<dataset>-<namespace>` aliases. */
  namespace?: string;
  /** False on a cluster without the mapper-extras module (no `match_only_text`): messages map as `text`. */
  matchOnlyText?: boolean;
}

/** The composable index template of one kind (core API `PUT _index_template/<name>`). */
export function indexTemplate(prefix: string, kind: DocKind, opts: TemplateOptions = {}) {
  const name = indexName(prefix, kind);
  const message: MessageType = opts.matchOnlyText === false ? 'text' : 'match_only_text';
  return {
    name,
    index_patterns: [name, `${name}-*`],
    // above the built-in templates (priority 100 for logs-*-*, metrics-*-*), below anything an operator adds on purpose
    priority: 200,
    version: TEMPLATE_VERSION,
    _meta: { managed_by: 'cordon', description: `Cordon ${kind.replace('_', ' ')} documents (ECS ${ECS_VERSION})` },
    template: {
      settings: {
        number_of_shards: opts.numberOfShards ?? 1,
        number_of_replicas: opts.numberOfReplicas ?? 0,
      },
      aliases: { [aliasName(kind, opts.namespace)]: {} },
      mappings: {
        dynamic: 'strict',
        _meta: { ecs_version: ECS_VERSION, template_version: TEMPLATE_VERSION },
        properties: mappings(message)[kind],
      },
    },
  };
}
export type IndexTemplate = ReturnType<typeof indexTemplate>;

export function indexTemplates(prefix: string, opts: TemplateOptions = {}): IndexTemplate[] {
  return DOC_KINDS.map((kind) => indexTemplate(prefix, kind, opts));
}

// ---------------------------------------------------------------- documents

const OBSERVER = { vendor: 'Cordon', product: 'cordon', type: 'ids' } as const;

/** What an incident's status means as an ECS event.action. */
const STATUS_ACTION: Record<Incident['status'], string> = {
  open: 'lateral-movement-detected',
  containing: 'containment-started',
  contained: 'containment-applied',
  released: 'containment-released',
  closed: 'incident-closed',
};

/** Drops undefined members (ES would store `null`s otherwise) and empty arrays. */
function compact<T extends Record<string, unknown>>(o: T): T {
  for (const k of Object.keys(o)) {
    const v = o[k];
    if (v === undefined || (Array.isArray(v) && v.length === 0)) delete o[k];
  }
  return o;
}

function threatOf(techniques: readonly string[]) {
  if (techniques.length === 0) return undefined;
  const views = techniques.map(technique);
  // ECS: threat.technique.* is the technique, threat.technique.subtechnique.* the sub-technique.
  const parents = unique(views.map((t) => t.parent ?? t.id));
  const subs = views.filter((t) => t.parent);
  const tactics = unique(views.map((t) => t.tactic?.id).filter((x): x is string => x !== undefined));
  return compact({
    framework: 'MITRE ATT&CK',
    technique: compact({
      id: parents,
      name: parents.map((id) => technique(id).name ?? id),
      reference: parents.map((id) => technique(id).reference),
      subtechnique: subs.length
        ? { id: subs.map((t) => t.id), name: subs.map((t) => t.name ?? t.id), reference: subs.map((t) => t.reference) }
        : undefined,
    }),
    tactic: tactics.length
      ? {
          id: tactics,
          name: tactics.map((id) => views.find((t) => t.tactic?.id === id)!.tactic!.name),
          reference: tactics.map((id) => `https://attack.mitre.org/tactics/${id}/`),
        }
      : undefined,
  });
}

/** Elastic's risk score bands (Kibana: low 0-21, medium 22-47, high 48-73, critical 74-100). */
const RISK_BANDS: Readonly<Record<Incident['severity'], readonly [number, number]>> = {
  low: [0, 21],
  medium: [22, 47],
  high: [48, 73],
  critical: [74, 100],
};

/**
 * `event.risk_score`, bounded 0-100 as Kibana requires: inside the band of the incident's
 * severity (so the alert's risk and severity agree), placed in it by the confidence (0..1).
 */
export function riskScore(severity: Incident['severity'], confidence: number): number {
  const [lo, hi] = RISK_BANDS[severity];
  const c = Number.isFinite(confidence) ? Math.min(1, Math.max(0, confidence)) : 0;
  return Math.round(lo + c * (hi - lo));
}

/**
 * The one destination ECS `destination.*` holds: the target of the busiest hop (most attempts,
 * the first such hop on a tie) and its most attempted port. Every target and port of the
 * campaign stays in `related.*` and `cordon.incident.{targets,ports}`.
 */
export function primaryDestination(incident: Incident): { entity?: Incident['entities'][number]; port?: number } {
  const edges = incident.path.edges;
  if (edges.length === 0) return { entity: parties(incident).targets[0] };
  const busiest = edges.reduce((best, e) => (e.denied + e.allowed > best.denied + best.allowed ? e : best), edges[0]!);
  const entity = incident.entities.find((e) => e.key === busiest.to);
  const byPort = incident.evidence.items.filter((i) => i.dst === busiest.to && i.port !== undefined && busiest.ports.includes(i.port));
  const top = byPort.reduce<(typeof byPort)[number] | undefined>((best, i) => (!best || i.count > best.count ? i : best), undefined);
  return { entity, port: top?.port ?? [...busiest.ports].sort((a, b) => a - b)[0] };
}

/** An incident as an ECS alert; `_id` is the incident id, and a newer version replaces an older one. */
export function incidentToEcs(incident: Incident): EsAction {
  const p = parties(incident);
  const dest = primaryDestination(incident);
  const risk = riskScore(incident.severity, incident.confidence);
  const doc = compact({
    '@timestamp': iso(incident.lastSeen),
    message: incident.summary,
    ecs: { version: ECS_VERSION },
    event: compact({
      kind: 'alert',
      category: ['intrusion_detection', 'network'],
      type: ['info', 'denied'],
      action: STATUS_ACTION[incident.status],
      id: incident.id,
      dataset: DATASETS.incident,
      module: 'cordon',
      severity: SEVERITY_NUMBER[incident.severity],
      risk_score: risk,
      risk_score_norm: risk,
      start: iso(incident.firstSeen),
      end: iso(incident.lastSeen),
    }),
    observer: OBSERVER,
    rule: { name: 'Cordon lateral movement', id: 'cordon:lateral_movement', ruleset: 'cordon', category: 'lateral_movement' },
    threat: threatOf(incident.techniques),
    source: p.root ? compact({ ip: entityIp(p.root), address: entityAddress(p.root) }) : undefined,
    destination: dest.entity ? compact({ ip: entityIp(dest.entity), address: entityAddress(dest.entity), port: dest.port }) : undefined,
    host: p.root ? compact({ name: entityAddress(p.root), ip: entityIp(p.root) }) : undefined,
    related: compact({ ip: p.ips, hosts: p.hosts }),
    cordon: {
      incident: compact({
        id: incident.id,
        status: incident.status,
        severity: incident.severity,
        score: incident.score,
        confidence: incident.confidence,
        root: incident.root,
        version: incident.version,
        window_start: iso(incident.windowStart),
        first_seen: iso(incident.firstSeen),
        last_seen: iso(incident.lastSeen),
        summary: incident.summary,
        techniques: incident.techniques,
        ports: p.ports,
        targets: unique(p.targets.map(entityAddress)),
        entities: incident.entities.map((e) =>
          compact({
            key: e.key,
            kind: e.kind,
            name: e.name,
            ip: validIp(e.ip) ? e.ip : undefined,
            role: e.role,
            role_source: e.roleSource,
            position: e.position,
          }),
        ),
        counters: {
          denied: incident.counters.denied,
          allowed: incident.counters.allowed,
          anomalies: incident.counters.anomalies,
          entities_dropped: incident.counters.entitiesDropped,
        },
        evidence: {
          total: incident.evidence.total,
          dropped: incident.evidence.dropped,
          rules: p.rules,
          by_rule: incident.evidence.byRule,
          items: incident.evidence.items,
        },
        path: { nodes: incident.path.nodes, edges: incident.path.edges, edges_dropped: incident.path.edgesDropped },
      }),
    },
  });
  return { kind: 'incident', id: incident.id, op: 'index', version: incident.version, doc };
}

/** A ledger record as an ECS change event; `_id` is its sequence number, written once. */
export function ledgerToEcs(record: LedgerRecordLike): EsAction {
  const target = targetText(record.target);
  const targetIp = ipOfKey(target);
  const doc = compact({
    '@timestamp': ledgerTime(record.at),
    message: `${record.actor} ${record.action} ${target}: ${record.reason}`,
    ecs: { version: ECS_VERSION },
    event: compact({
      kind: 'event',
      category: ['configuration'],
      type: ['change'],
      action: record.action,
      id: record.hash,
      dataset: DATASETS.ledger,
      module: 'cordon',
      sequence: record.seq,
      reason: record.reason,
    }),
    observer: OBSERVER,
    related: compact({ user: [record.actor], ip: targetIp ? [targetIp] : [], hash: [record.hash] }),
    cordon: {
      ledger: compact({
        seq: record.seq,
        hash: record.hash,
        prev_hash: record.prevHash,
        actor: record.actor,
        action: record.action,
        target,
        reason: record.reason,
        incident_id: record.incidentId,
        approval_id: record.approvalId,
        before: record.before ?? null,
        after: record.after ?? null,
      }),
    },
  });
  return { kind: 'ledger', id: String(record.seq), op: 'create', doc };
}

/**
 * A dead letter as an ECS pipeline error: `event.original` holds the refused bytes (text, or base64
 * when they are not text), `error.message` the reason; `_id` is the original record's coordinates.
 * `now` stamps letters that carry no `cordon-dlq-at` header.
 */
export function deadLetterToEcs(letter: DeadLetterLike, opts: { maxOriginalBytes: number; now: number }): EsAction {
  const v = readDeadLetter(letter, opts.maxOriginalBytes);
  const doc = compact({
    '@timestamp': v.at ?? iso(opts.now),
    message: v.reason,
    ecs: { version: ECS_VERSION },
    event: compact({
      kind: 'pipeline_error',
      dataset: DATASETS.dead_letter,
      module: 'cordon',
      id: v.id,
      created: v.at,
      original: v.original,
      reason: v.reasonClass,
    }),
    observer: OBSERVER,
    error: { message: v.reason, type: v.reasonClass },
    related: { hash: [v.sha256] },
    cordon: {
      source: compact({
        topic: v.topic,
        partition: v.partition,
        offset: v.offset,
        timestamp: v.timestamp !== undefined ? iso(v.timestamp) : undefined,
        format: v.format,
        key: v.key,
        encoding: v.encoding,
        bytes: v.bytes,
        truncated: v.truncated,
        sha256: v.sha256,
      }),
    },
  });
  return { kind: 'dead_letter', id: v.id, op: 'create', doc };
}

/** ECS `network.transport`: the IANA keyword of the protocol (`ipv6-icmp`, not `icmpv6`). */
const ECS_TRANSPORT: Readonly<Record<PolicyGapFinding['protocol'], string | undefined>> = {
  tcp: 'tcp',
  udp: 'udp',
  icmp: 'icmp',
  icmpv6: 'ipv6-icmp',
  sctp: 'sctp',
  other: undefined,
};

/** A policy-gap finding (low severity, not an incident); a later report replaces an earlier one. */
export function findingToEcs(f: PolicyGapFinding): EsAction {
  const doc = compact({
    '@timestamp': iso(f.lastSeen),
    message: f.summary,
    ecs: { version: ECS_VERSION },
    event: compact({
      kind: 'alert',
      category: ['network'],
      type: ['denied'],
      action: 'policy-gap',
      id: f.id,
      dataset: DATASETS.finding,
      module: 'cordon',
      severity: SEVERITY_NUMBER[f.severity],
      start: iso(f.firstSeen),
      end: iso(f.lastSeen),
    }),
    observer: OBSERVER,
    rule: { name: 'Cordon policy gap', id: 'cordon:policy_gap', ruleset: 'cordon', category: 'policy_gap' },
    source: compact({ ip: entityIp(f.src), address: entityAddress(f.src) }),
    destination: compact({ ip: entityIp(f.dst), address: entityAddress(f.dst), port: f.port }),
    network: compact({ transport: ECS_TRANSPORT[f.protocol] }),
    related: compact({
      ip: unique([entityIp(f.src), entityIp(f.dst)].filter(validIp)),
      hosts: unique([f.src.name, f.dst.name].filter((n): n is string => !!n)),
    }),
    cordon: {
      finding: compact({
        id: f.id,
        type: f.type,
        service: f.service,
        attempts: f.attempts,
        first_seen: iso(f.firstSeen),
        last_seen: iso(f.lastSeen),
        policy: f.policy,
        src_key: f.src.key,
        dst_key: f.dst.key,
        summary: f.summary,
      }),
    },
  });
  // the last report is the newest: its lastSeen orders the versions
  return { kind: 'finding', id: f.id, op: 'index', version: f.lastSeen, doc };
}

/** `event.ingested`: when the document reaches Elasticsearch (the writer stamps it at each bulk). */
export function withIngested(doc: Record<string, unknown>, now: number): Record<string, unknown> {
  const event = (doc.event && typeof doc.event === 'object' ? doc.event : {}) as Record<string, unknown>;
  return { ...doc, event: { ...event, ingested: iso(now) } };
}
