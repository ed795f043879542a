import { createHash } from 'node:crypto';
import type { CorrelationConfig } from './config';
import { SERVICE_LABELS, type ServiceClass } from './ports';
import type { RoleSource } from './roles';
import {
  addEvidence,
  addUnkept,
  countRepeat,
  emptyEvidence,
  signalFamilies,
  type EvidenceData,
  type EvidenceInput,
  type Rule,
} from './evidence';

export const INCIDENT_STATUSES = ['open', 'containing', 'contained', 'released', 'closed'] as const;
export type IncidentStatus = (typeof INCIDENT_STATUSES)[number];
export const SEVERITIES = ['low', 'medium', 'high', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

export type Position = 'root' | 'pivot' | 'target';

export interface IncidentEntity {
  key: string;
  kind: string;
  name?: string;
  ip?: string;
  role: string;
  roleSource: RoleSource;
  position: Position;
}

/** One hop of the attack path. */
export interface PathEdge {
  from: string;
  to: string;
  ports: number[];
  services: ServiceClass[];
  denied: number;
  /** Permitted connections on a remote-administration service from a campaign member. */
  allowed: number;
  anomalies: string[];
  firstSeen: number;
  lastSeen: number;
}

/** DESIGN.md section 2: one per campaign, updated as evidence arrives. */
export interface Incident {
  id: string;
  status: IncidentStatus;
  severity: Severity;
  score: number;
  confidence: number;
  root: string;
  entities: IncidentEntity[];
  path: { nodes: string[]; edges: PathEdge[]; edgesDropped: number };
  techniques: string[];
  evidence: EvidenceData;
  counters: { denied: number; allowed: number; anomalies: number; entitiesDropped: number };
  windowStart: number;
  firstSeen: number;
  lastSeen: number;
  /** Incremented on every published change; lets consumers drop stale versions. */
  version: number;
  summary: string;
}

/** The whole mutable state of a campaign: plain data, so a snapshot is a copy of it. */
export interface CampaignData {
  root: string;
  start: number;
  id: string | null;
  status: IncidentStatus;
  quiet: boolean;
  score: number;
  firstSeen: number;
  lastSeen: number;
  version: number;
  /** Material signature of the last published version. */
  emitted: string;
  evidence: EvidenceData;
  edges: PathEdge[];
  edgesDropped: number;
  entities: IncidentEntity[];
  entitiesDropped: number;
  techniques: string[];
  denied: number;
  allowed: number;
  anomalies: number;
}

const MAX_EDGE_PORTS = 16;
const MAX_EDGE_ANOMALIES = 8;

/** `inc-` + 20 hex of sha256(root | window bucket): a valid BullMQ job id (no ':', not all digits). */
export function incidentId(root: string, windowStart: number, bucketMs: number): string {
  const bucket = Math.floor(windowStart / bucketMs) * bucketMs;
  return 'inc-' + createHash('sha256').update(`${root}|${bucket}`).digest('hex').slice(0, 20);
}

export function severityOf(score: number, t: CorrelationConfig['thresholds']): Severity {
  if (score >= t.critical) return 'critical';
  if (score >= t.high) return 'high';
  if (score >= t.medium) return 'medium';
  return 'low';
}

/**
 * Confidence 0..1: the score read as a probability (1 - e^(-score/10)), and every independent
 * signal family beyond the first (fan-out, RPC chain, propagation, anomalies, ...) removes a
 * quarter of the remaining doubt.
 */
export function confidenceOf(score: number, families: number): number {
  const p = 1 - Math.exp(-score / 10);
  const c = 1 - (1 - p) * Math.pow(0.75, Math.max(0, families - 1));
  return Math.round(c * 1000) / 1000;
}

const round = (n: number) => Math.round(n * 1000) / 1000;

export class Campaign {
  constructor(readonly d: CampaignData) {}

  static start(root: string, at: number): Campaign {
    return new Campaign({
      root,
      start: at,
      id: null,
      status: 'open',
      quiet: false,
      score: 0,
      firstSeen: at,
      lastSeen: at,
      version: 0,
      emitted: '',
      evidence: emptyEvidence(),
      edges: [],
      edgesDropped: 0,
      entities: [],
      entitiesDropped: 0,
      techniques: [],
      denied: 0,
      allowed: 0,
      anomalies: 0,
    });
  }

  /** Open or still accepting evidence (not quiet, not closed). */
  get live(): boolean {
    return !this.d.quiet && this.d.status !== 'closed';
  }

  seen(at: number): void {
    if (at > this.d.lastSeen) this.d.lastSeen = at;
    if (at < this.d.firstSeen) this.d.firstSeen = at;
  }

  addEvidence(input: EvidenceInput, at: number, cap: number, count = 1): void {
    addEvidence(this.d.evidence, input, at, cap, count);
    if (input.rule === 'anomaly') this.d.anomalies += count;
    this.seen(at);
  }

  /**
   * Fold into an evidence item of the same rule and subject if there is one (true), so the caller
   * renders a reason only for evidence that is new. Its techniques were taken when it was new.
   */
  foldEvidence(p: Omit<EvidenceInput, 'reason'>, count: number, at: number): boolean {
    const ev = this.d.evidence;
    const item = ev.items.find(
      (i) => i.rule === p.rule && i.src === p.src && i.dst === p.dst && i.port === p.port && i.anomaly === p.anomaly,
    );
    if (item === undefined) return false;
    const tally = ev.byRule[p.rule] ?? (ev.byRule[p.rule] = { count: 0, weight: 0 });
    ev.total += count;
    tally.count += count;
    tally.weight += p.weight;
    item.count += count;
    item.weight += p.weight;
    if (at > item.lastSeen) item.lastSeen = at;
    if (p.rule === 'anomaly') this.d.anomalies += count;
    this.seen(at);
    return true;
  }

  repeat(src: string, dst: string, port: number, at: number, n = 1): void {
    countRepeat(this.d.evidence, 'admin_port', src, dst, port, at, n);
    this.seen(at);
  }

  addUnkept(rule: Rule, count: number, weight: number): void {
    addUnkept(this.d.evidence, rule, count, weight);
  }

  findEdge(from: string, to: string): PathEdge | undefined {
    return this.d.edges.find((e) => e.from === from && e.to === to);
  }

  /** Record one connection on an edge; true when the edge is new. */
  touchEdge(
    from: string,
    to: string,
    port: number,
    service: ServiceClass,
    denied: boolean,
    at: number,
    cap: number,
    n = 1,
  ): boolean {
    if (denied) this.d.denied += n;
    else this.d.allowed += n;
    const edge = this.findEdge(from, to);
    if (edge) {
      if (denied) edge.denied += n;
      else edge.allowed += n;
      if (!edge.ports.includes(port) && edge.ports.length < MAX_EDGE_PORTS) insertSorted(edge.ports, port);
      if (!edge.services.includes(service)) insertSorted(edge.services, service);
      edge.firstSeen = Math.min(edge.firstSeen, at);
      edge.lastSeen = Math.max(edge.lastSeen, at);
      return false;
    }
    if (this.d.edges.length >= cap) {
      this.d.edgesDropped += 1;
      return false;
    }
    const fresh: PathEdge = {
      from,
      to,
      ports: [port],
      services: [service],
      denied: denied ? n : 0,
      allowed: denied ? 0 : n,
      anomalies: [],
      firstSeen: at,
      lastSeen: at,
    };
    this.d.edges.push(fresh);
    return true;
  }

  /** Attach an anomaly kind to the edges into the entity, else the edges out of it. */
  annotateAnomaly(key: string, kind: string): void {
    let edges = this.d.edges.filter((e) => e.to === key);
    if (edges.length === 0) edges = this.d.edges.filter((e) => e.from === key);
    for (const e of edges) {
      if (!e.anomalies.includes(kind) && e.anomalies.length < MAX_EDGE_ANOMALIES) insertSorted(e.anomalies, kind);
    }
  }

  /** Add or update an entity; a target that later acts as a source becomes a pivot. */
  noteEntity(entity: Omit<IncidentEntity, 'position'>, position: Position, cap: number): void {
    const existing = this.d.entities.find((e) => e.key === entity.key);
    if (existing) {
      Object.assign(existing, { ...entity, position: mergePosition(existing.position, position) });
      return;
    }
    if (this.d.entities.length >= cap) {
      this.d.entitiesDropped += 1;
      return;
    }
    this.d.entities.push({ ...entity, position });
  }

  addTechniques(list: readonly string[]): void {
    for (const t of list) if (!this.d.techniques.includes(t)) insertSorted(this.d.techniques, t);
  }

  /**
   * What, if it changed, is worth publishing: severity, the score band (a band per `scoreBand`
   * ratio of growth), the path while it is small and then at each doubling, the techniques, and
   * the entities likewise. Status is set from outside, so it is not in here.
   */
  signature(t: CorrelationConfig['thresholds']): string {
    const d = this.d;
    const band = d.score > 0 ? Math.floor(Math.log(d.score) / Math.log(t.scoreBand)) : 0;
    return `${severityOf(d.score, t)}|${band}|${bucket(d.edges.length)}|${d.techniques.join(',')}|${bucket(d.entities.length)}`;
  }

  view(config: CorrelationConfig): Incident {
    const d = copyCampaign(this.d);
    const families = signalFamilies(d.evidence);
    for (const item of d.evidence.items) item.weight = round(item.weight);
    for (const tally of Object.values(d.evidence.byRule)) tally.weight = round(tally.weight);
    return {
      id: d.id ?? '',
      status: d.status,
      severity: severityOf(d.score, config.thresholds),
      score: round(d.score),
      confidence: confidenceOf(d.score, families),
      root: d.root,
      entities: d.entities,
      path: { nodes: pathNodes(d.root, d.edges), edges: d.edges, edgesDropped: d.edgesDropped },
      techniques: d.techniques,
      evidence: d.evidence,
      counters: { denied: d.denied, allowed: d.allowed, anomalies: d.anomalies, entitiesDropped: d.entitiesDropped },
      windowStart: d.start,
      firstSeen: d.firstSeen,
      lastSeen: d.lastSeen,
      version: d.version,
      summary: summarize(d, config),
    };
  }
}

/** A deep copy of campaign data (the shape is known: cheaper than structuredClone). */
export function copyCampaign(d: CampaignData): CampaignData {
  const ev = d.evidence;
  const byRule: EvidenceData['byRule'] = {};
  for (const [rule, tally] of Object.entries(ev.byRule)) byRule[rule as Rule] = { ...tally };
  return {
    ...d,
    evidence: { items: ev.items.map((i) => ({ ...i })), total: ev.total, dropped: ev.dropped, byRule },
    edges: d.edges.map((e) => ({ ...e, ports: [...e.ports], services: [...e.services], anomalies: [...e.anomalies] })),
    entities: d.entities.map((e) => ({ ...e })),
    techniques: [...d.techniques],
  };
}

const SIGNATURE_PARTS = ['severity', 'score', 'path', 'techniques', 'entities'] as const;

/** Which material parts differ between two signatures. */
export function materialChanges(before: string, after: string): string[] {
  const a = before.split('|');
  const b = after.split('|');
  return SIGNATURE_PARTS.filter((_, i) => a[i] !== b[i]);
}

/** Exact up to 8, then powers of two: a scan of 60 hosts is not 60 updates. */
function bucket(n: number): number {
  return n <= 8 ? n : 1 << Math.floor(Math.log2(n));
}

function mergePosition(a: Position, b: Position): Position {
  if (a === b) return a;
  if (a === 'root' || b === 'root') return 'root';
  return 'pivot';
}

function insertSorted<T extends string | number>(list: T[], value: T): void {
  let i = list.length;
  while (i > 0 && (list[i - 1] as T) > value) i -= 1;
  list.splice(i, 0, value);
}

/** Breadth-first from the root along the edges, in the order they were seen. */
export function pathNodes(root: string, edges: readonly PathEdge[]): string[] {
  const nodes = [root];
  for (let i = 0; i < nodes.length; i++) {
    for (const e of edges) if (e.from === nodes[i] && !nodes.includes(e.to)) nodes.push(e.to);
  }
  for (const e of edges) {
    if (!nodes.includes(e.from)) nodes.push(e.from);
    if (!nodes.includes(e.to)) nodes.push(e.to);
  }
  return nodes;
}

function displayName(d: CampaignData, key: string): string {
  const e = d.entities.find((x) => x.key === key);
  if (!e) return key;
  const base = e.name ?? e.ip ?? key;
  const role = e.role !== 'unknown' ? e.role : undefined;
  const extra = [e.name && e.ip ? e.ip : undefined, role].filter(Boolean).join(', ');
  return extra ? `${base} (${extra})` : base;
}

function listed(names: string[], max = 3): string {
  if (names.length <= max) return names.join(', ');
  return `${names.slice(0, max).join(', ')} and ${names.length - max} more`;
}

/** One plain-language sentence for analysts. */
export function summarize(d: CampaignData, config: CorrelationConfig): string {
  const services = [...new Set(d.edges.flatMap((e) => e.services))].filter((s) => s !== 'other');
  const targets = [...new Set(d.edges.map((e) => e.to))].filter((k) => k !== d.root);
  const pivots = d.entities.filter((e) => e.position === 'pivot').map((e) => displayName(d, e.key));
  const what = services.length ? services.map((s) => SERVICE_LABELS[s]).join('/') : 'connections';
  const sessions = d.evidence.byRule.admin_session?.count ?? 0;
  const verb = d.denied === 0 && sessions > 0 ? 'opened' : 'attempted';
  const parts = [
    `${displayName(d, d.root)} ${verb} ${what} against ${targets.length} host${targets.length === 1 ? '' : 's'}` +
      (targets.length ? ` (${listed(targets.map((k) => displayName(d, k)))})` : ''),
  ];
  if (d.denied > 0 || sessions === 0) parts.push(`${d.denied} denied connection${d.denied === 1 ? '' : 's'}`);
  if (sessions > 0) parts.push(`${sessions} permitted admin session${sessions === 1 ? '' : 's'} to peers that do not serve them`);
  if (d.evidence.byRule.fan_out) parts.push('fanning out like a scan');
  if (pivots.length) parts.push(`then moved on from ${listed(pivots)}`);
  if (d.anomalies) parts.push(`${d.anomalies} corroborating anomal${d.anomalies === 1 ? 'y' : 'ies'}`);
  const sev = severityOf(d.score, config.thresholds);
  return `${parts.join('; ')}; ${sev} severity, score ${d.score.toFixed(1)} (${d.techniques.join(', ') || 'no technique'}).`;
}
