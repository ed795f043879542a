import { WORKLOAD_KINDS } from '../events';
import { PeriodicEdges, ServedMemory, decodePeriodic, decodeServed, encodePeriodic, encodeServed, type EncodedPeriodic, type EncodedServed } from './baseline';
import { RULES, type Rule } from './evidence';
import type { Campaign } from './incident';
import { UNKNOWN, type RoleInfo, type RoleSource } from './roles';
import { sameSubject, type Contribution } from './scoring';

/**
 * Per-entity state, kept small (the benchmark holds 100,000 of these under 1 KB each, all
 * included): a handful of small fields for every entity, two small fixed-capacity windows stored
 * as flat arrays, and a `Suspicion` record only for the few entities that carry risk or were hit
 * by a campaign. Nothing here holds an event or its objects: what selectors need from a workload
 * (role, allowlist) is computed when the entity is described and kept as a shared RoleInfo and a
 * flag bit.
 */

/** Recent (destination, port) pairs this entity was denied on: a fixed-capacity LRU. */
export const PAIR_PORT = 0;
export const PAIR_COUNT = 1;
export const PAIR_FIRST = 2;
export const PAIR_LAST = 3;
export const PAIR_GAP_AT = 4; // when a policy gap was last reported for the pair (0: never)
export const PAIR_STRIDE = 5;

export class PairTable {
  /** Destination keys (the strings the entity table holds). Arrays grow to exact size. */
  dst: string[] = [];
  /** PAIR_STRIDE numbers per pair (unboxed doubles). */
  num: number[] = [];
  /** Fan-out: start of the current window (or run), and new pairs counted in it. */
  fanOutStart = 0;
  fanOutCount = 0;

  find(dst: string, port: number): number {
    const { dst: d, num } = this;
    for (let i = 0; i < d.length; i++) if (d[i] === dst && num[i * PAIR_STRIDE] === port) return i;
    return -1;
  }

  get(i: number, field: number): number {
    return this.num[i * PAIR_STRIDE + field] as number;
  }

  set(i: number, field: number, value: number): void {
    this.num[i * PAIR_STRIDE + field] = value;
  }

  /**
   * Record an attempt. Returns the pair's slot when it was known (a repeat), or `~slot` (negative)
   * when it is new, or was forgotten (unseen for `ttl`, or pushed out of the LRU).
   */
  hit(dst: string, port: number, at: number, ttl: number, cap: number): number {
    const i = this.find(dst, port);
    if (i >= 0 && at - this.get(i, PAIR_LAST) <= ttl) {
      this.set(i, PAIR_COUNT, this.get(i, PAIR_COUNT) + 1);
      if (at > this.get(i, PAIR_LAST)) this.set(i, PAIR_LAST, at);
      return i;
    }
    let slot = i;
    if (slot < 0 && this.dst.length < cap) {
      slot = this.dst.length;
      this.dst = this.dst.concat(dst); // exact size: no growth slack per entity
      this.num = this.num.concat(port, 1, at, at, 0);
      return ~slot;
    }
    if (slot < 0) slot = this.leastRecent();
    this.dst[slot] = dst;
    const base = slot * PAIR_STRIDE;
    this.num[base + PAIR_PORT] = port;
    this.num[base + PAIR_COUNT] = 1;
    this.num[base + PAIR_FIRST] = at;
    this.num[base + PAIR_LAST] = at;
    this.num[base + PAIR_GAP_AT] = 0;
    return ~slot;
  }

  private leastRecent(): number {
    let best = 0;
    for (let i = 1; i < this.dst.length; i++) if (this.get(i, PAIR_LAST) < this.get(best, PAIR_LAST)) best = i;
    return best;
  }

  /**
   * Count the new pair in `slot` toward fan-out; returns the count. Sliding: the pairs first seen
   * within `windowMs` before this one, read from the table itself (its first-seen times), so four
   * pairs late in one window and four early in the next are eight, not four and four. Once the
   * count has reached `minTargets` (a fan-out), it is a run that goes on counting while new pairs
   * keep coming less than `windowMs` apart, beyond what the fixed-size table holds. Until then the
   * count grows by at most one per new pair, so it passes `minTargets` exactly once per run.
   */
  countNew(at: number, windowMs: number, minTargets: number, slot: number): number {
    const { num } = this;
    let inWindow = 0;
    let start = at;
    let previous = -Infinity; // the latest first-seen of the other pairs: the previous new pair
    for (let i = 0, n = this.dst.length; i < n; i++) {
      const first = num[i * PAIR_STRIDE + PAIR_FIRST] as number;
      if (at - first > windowMs) continue;
      inWindow += 1;
      if (first < start) start = first;
      if (i !== slot && first > previous) previous = first;
    }
    if (this.fanOutCount >= minTargets && at - previous <= windowMs) {
      this.fanOutCount += 1;
    } else {
      this.fanOutCount = inWindow;
      this.fanOutStart = start;
    }
    return this.fanOutCount;
  }
}

/** Recent contacts with an RPC endpoint mapper (135): destination, time, whether permitted. */
export class EndpointMapperMemory {
  static readonly CAP = 4;
  dst: string[] = [];
  at: number[] = [];
  allowed: number[] = [];

  remember(dst: string, at: number, allowed: boolean): void {
    let i = this.dst.indexOf(dst);
    if (i < 0) {
      i = this.dst.length < EndpointMapperMemory.CAP ? this.dst.length : this.oldest();
      this.dst[i] = dst;
    }
    this.at[i] = at;
    this.allowed[i] = allowed ? 1 : 0;
  }

  /** 0: no recent contact; 1: a denied one; 2: a permitted one. */
  before(dst: string, at: number, windowMs: number): 0 | 1 | 2 {
    const i = this.dst.indexOf(dst);
    if (i < 0) return 0;
    const when = this.at[i] as number;
    if (when > at || at - when > windowMs) return 0;
    return this.allowed[i] ? 2 : 1;
  }

  private oldest(): number {
    let best = 0;
    for (let i = 1; i < this.at.length; i++) if ((this.at[i] as number) < (this.at[best] as number)) best = i;
    return best;
  }
}

/** What only a suspicious entity needs: its campaign risk, where it was pulled in from, its incident. */
export class Suspicion {
  /** Decaying campaign risk, when this entity is (or would be) a campaign root. */
  risk = 0;
  riskAt = 0;
  /** Start and latest time of the contributions behind `risk` (0: none since the last reset). */
  since = 0;
  last = 0;
  /** Ordinary denials folded in before an incident exists (only when their weight is not 0). */
  minorWeight = 0;
  minorCount = 0;
  /** Significant contributions before an incident exists, compact, capped (see `remember`). */
  pending: Contribution[] | null = null;
  /** Counted but not kept when `pending` was full: count and weight per rule (RULES order). */
  overflow: number[] | null = null;
  /** The entity whose campaign this one was pulled into as a target, and when. */
  upstream: string | null = null;
  upstreamAt = 0;
  /** The campaign got in (a permitted connection), rather than only tried (denied attempts). */
  foothold = false;
  /** When the propagation hop from `upstream` was credited (0: not yet). */
  hopAt = 0;
  /** The open (or not yet retired) incident this entity is the root of. */
  campaign: Campaign | null = null;
}

const NONE = new Suspicion();

class LateralMemory {
  sessions: PairTable | null = null;
  served: ServedMemory | null = null;
  periodic: PeriodicEdges | null = null;
}

/** Flag bit: the entity matched the allowlist when it was last described. */
export const ALLOWLISTED = 1 << 8;

/** Event time in minutes: a small integer, stored in the object itself (no boxed double). */
export function minuteOf(t: number): number {
  return Math.floor(t / 60_000);
}

const KINDS = [...WORKLOAD_KINDS, 'ip'] as const;

export class EntityState {
  /** The workload name, when it differs from the id at the end of the key (see `name`). */
  private label: string | undefined = undefined;
  ip: string | undefined = undefined;
  /** Minute of event time the entity was last seen (TTL, eviction). */
  seen: number;
  /** Behaviour flags (roles.ts) and ALLOWLISTED. */
  flags = 0;
  /** The configured role (label, inventory, kind); behaviour is applied when it is read. */
  role: RoleInfo = UNKNOWN;
  /** Minute the role and allowlist match were last computed from a workload (-1: never). */
  described = -1;
  pairs: PairTable | null = null;
  epm: EndpointMapperMemory | null = null;
  /** Sessions, served services and periodic edges, for the entities in remote-administration traffic (one field). */
  private x: LateralMemory | ServedMemory | null = null;
  private s: Suspicion | null = null;

  constructor(
    readonly key: string,
    at: number,
  ) {
    this.seen = minuteOf(at);
  }

  /** The kind, read from the key (`pod:ns/id`, `ip:10.0.0.1`): one field less per entity. */
  get kind(): string {
    for (const k of KINDS) if (this.key.startsWith(k) && this.key.charCodeAt(k.length) === 58 /* : */) return k;
    return 'ip';
  }

  /** Display name: the workload name (kept only when it is not simply the id in the key). */
  get name(): string | undefined {
    if (this.label !== undefined) return this.label;
    if (this.key.startsWith('ip:')) return undefined;
    return this.key.slice(Math.max(this.key.indexOf(':'), this.key.indexOf('/')) + 1);
  }

  get hasLabel(): boolean {
    return this.label !== undefined;
  }

  /** Keep the workload's name only if the key does not already say it. */
  setName(name: string): void {
    this.label = undefined;
    if (this.name !== name) this.label = name;
  }

  /** Recent permitted remote-administration sessions this entity opened (destination, port). */
  get sessions(): PairTable | null {
    return this.x instanceof LateralMemory ? this.x.sessions : null;
  }
  set sessions(t: PairTable | null) {
    if (t !== null || this.x instanceof LateralMemory) this.lateral().sessions = t;
  }

  /** Who reached this entity on which remote-administration service (a server of the fleet?). */
  get served(): ServedMemory | null {
    const x = this.x;
    return x === null || x instanceof ServedMemory ? x : x.served;
  }
  set served(m: ServedMemory | null) {
    const x = this.x;
    if (x instanceof LateralMemory) x.served = m;
    else this.x = m;
  }

  /** The edges this entity visits on a steady period (a scraper's, a health check's). */
  get periodic(): PeriodicEdges | null {
    return this.x instanceof LateralMemory ? this.x.periodic : null;
  }
  set periodic(p: PeriodicEdges | null) {
    if (p !== null || this.x instanceof LateralMemory) this.lateral().periodic = p;
  }

  /** Most entities in remote-administration traffic are only reached: `x` is then the served memory itself. */
  private lateral(): LateralMemory {
    const x = this.x;
    if (x instanceof LateralMemory) return x;
    const l = new LateralMemory();
    l.served = x;
    this.x = l;
    return l;
  }

  /** Read the suspicion record (a shared all-zero one when there is none: never write to it). */
  get sus(): Readonly<Suspicion> {
    return this.s ?? NONE;
  }

  /** The suspicion record, created on first need. */
  get mut(): Suspicion {
    return (this.s ??= new Suspicion());
  }

  get hasSuspicion(): boolean {
    return this.s !== null;
  }

  get campaign(): Campaign | null {
    return this.s === null ? null : this.s.campaign;
  }
  set campaign(c: Campaign | null) {
    if (c !== null || this.s !== null) this.mut.campaign = c;
  }

  get risk(): number {
    return this.s === null ? 0 : this.s.risk;
  }

  /** Decay the risk to `at` (never backwards: a late event adds at the current level). */
  decayTo(at: number, halfLifeMs: number): void {
    const s = this.mut;
    if (at <= s.riskAt) return;
    if (s.risk !== 0) s.risk *= Math.pow(2, -(at - s.riskAt) / halfLifeMs);
    s.riskAt = at;
  }

  /** The risk as it will be at `at`, without changing state. */
  riskNow(at: number, halfLifeMs: number): number {
    const s = this.s;
    if (s === null) return 0;
    return at <= s.riskAt ? s.risk : s.risk * Math.pow(2, -(at - s.riskAt) / halfLifeMs);
  }

  /** Keep a contribution until an incident opens: fold into a record of the same subject, or add. */
  remember(c: Contribution, cap: number): void {
    const s = this.mut;
    const list = (s.pending ??= []);
    const same = list.find((p) => sameSubject(p, c));
    if (same) {
      same.count += c.count;
      same.weight += c.weight;
      return;
    }
    if (list.length < cap) {
      list.push({ ...c });
      return;
    }
    const o = (s.overflow ??= new Array<number>(RULES.length * 2).fill(0));
    const i = RULES.indexOf(c.rule) * 2;
    o[i] = (o[i] ?? 0) + c.count; // a snapshot from before a rule was added has a shorter array
    o[i + 1] = (o[i + 1] ?? 0) + c.weight;
  }

  /** Every rule with overflow: rule, count, weight. */
  overflowTallies(): { rule: Rule; count: number; weight: number }[] {
    const o = this.sus.overflow;
    if (o === null) return [];
    return RULES.flatMap((rule, i) =>
      (o[i * 2] ?? 0) > 0 ? [{ rule, count: o[i * 2] as number, weight: o[i * 2 + 1] as number }] : [],
    );
  }

  /** Forget the link to an upstream campaign; the suspicion record goes if nothing else is in it. */
  unlink(): void {
    const s = this.s;
    if (s === null || s.upstream === null) return;
    s.upstream = null;
    s.upstreamAt = 0;
    s.hopAt = 0;
    s.foothold = false;
    if (s.campaign === null && s.risk === 0 && s.since === 0 && s.pending === null && s.minorCount === 0) this.s = null;
  }

  /** The risk was spent (an incident went quiet) or faded (idle): start from nothing. */
  resetRisk(): void {
    const s = this.s;
    if (s === null) return;
    if (s.upstream === null && s.campaign === null) {
      this.s = null;
      return;
    }
    Object.assign(s, { risk: 0, riskAt: 0, since: 0, last: 0, minorWeight: 0, minorCount: 0, pending: null, overflow: null });
  }
}

/** Snapshot form of an entity: a positional tuple of plain JSON values. */
export type EncodedEntity = [
  key: string,
  descriptor: { kind: string; name?: string; ip?: string; role: string; roleSource: RoleSource },
  numbers: number[], // seen, flags, described
  pairs: [dst: string[], num: number[], fanOutStart: number, fanOutCount: number] | null,
  epm: [dst: string[], at: number[], allowed: number[]] | null,
  suspicion: EncodedSuspicion | null,
  sessions?: EncodedPairs | null,
  served?: EncodedServed | null,
  periodic?: EncodedPeriodic | null,
];

type EncodedPairs = [dst: string[], num: number[], fanOutStart: number, fanOutCount: number];

function encodePairs(p: PairTable): EncodedPairs {
  return [[...p.dst], [...p.num], p.fanOutStart, p.fanOutCount];
}

function decodePairs(e: EncodedPairs): PairTable {
  const p = new PairTable();
  [p.dst, p.num, p.fanOutStart, p.fanOutCount] = [[...e[0]], [...e[1]], e[2], e[3]];
  return p;
}

type EncodedSuspicion = [
  numbers: number[], // risk, riskAt, since, last, minorWeight, minorCount, upstreamAt, hopAt, foothold (0/1)
  upstream: string | null,
  pending: Contribution[] | null,
  overflow: number[] | null,
  incident: string | null, // the id of the incident this entity is the root of
];

export function encodeEntity(e: EntityState): EncodedEntity {
  const name = e.hasLabel ? e.name : undefined;
  const desc = pruneUndefined({ kind: e.kind, name, ip: e.ip, role: e.role.role, roleSource: e.role.source });
  const s = e.hasSuspicion ? e.mut : null;
  return [
    e.key,
    desc,
    [e.seen, e.flags, e.described],
    e.pairs ? [[...e.pairs.dst], [...e.pairs.num], e.pairs.fanOutStart, e.pairs.fanOutCount] : null,
    e.epm ? [[...e.epm.dst], [...e.epm.at], [...e.epm.allowed]] : null,
    s === null
      ? null
      : [
          [s.risk, s.riskAt, s.since, s.last, s.minorWeight, s.minorCount, s.upstreamAt, s.hopAt, s.foothold ? 1 : 0],
          s.upstream,
          s.pending ? s.pending.map((p) => ({ ...p })) : null,
          s.overflow ? [...s.overflow] : null,
          s.campaign ? (s.campaign.d.id as string) : null,
        ],
    e.sessions ? encodePairs(e.sessions) : null,
    e.served ? encodeServed(e.served) : null,
    e.periodic ? encodePeriodic(e.periodic) : null,
  ];
}

export function decodeEntity(
  encoded: EncodedEntity,
  incident: (id: string) => Campaign | undefined,
  role: (role: string, source: RoleSource) => RoleInfo,
): EntityState {
  const [key, desc, n, pairs, epm, sus, sessions, served, periodic] = encoded;
  const e = new EntityState(key, 0);
  [e.seen, e.flags, e.described] = [n[0] as number, n[1] as number, n[2] as number];
  if (desc.name !== undefined) e.setName(desc.name);
  e.ip = desc.ip;
  e.role = role(desc.role, desc.roleSource);
  if (pairs) {
    e.pairs = new PairTable();
    [e.pairs.dst, e.pairs.num, e.pairs.fanOutStart, e.pairs.fanOutCount] = [[...pairs[0]], [...pairs[1]], pairs[2], pairs[3]];
  }
  if (sessions) e.sessions = decodePairs(sessions);
  if (served) e.served = decodeServed(served);
  if (periodic) e.periodic = decodePeriodic(periodic);
  if (epm) {
    e.epm = new EndpointMapperMemory();
    [e.epm.dst, e.epm.at, e.epm.allowed] = [[...epm[0]], [...epm[1]], [...epm[2]]];
  }
  if (sus) {
    const [num, upstream, pending, overflow, incidentId] = sus;
    const s = e.mut;
    const at = (i: number) => num[i] as number;
    [s.risk, s.riskAt, s.since, s.last] = [at(0), at(1), at(2), at(3)];
    [s.minorWeight, s.minorCount, s.upstreamAt, s.hopAt] = [at(4), at(5), at(6), at(7)];
    s.foothold = num[8] === 1; // absent in snapshots written before footholds: a denied-attempt link
    s.upstream = upstream;
    s.pending = pending ? pending.map((p) => ({ ...p })) : null;
    s.overflow = overflow ? [...overflow] : null;
    s.campaign = incidentId === null ? null : (incident(incidentId) ?? null);
  }
  return e;
}

function pruneUndefined<T extends object>(o: T): T {
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] === undefined) delete o[k];
  return o;
}
