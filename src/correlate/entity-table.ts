import { entityKey, type WorkloadRef } from '../events';
import type { CorrelationConfig } from './config';
import { ALLOWLISTED, EntityState, decodeEntity, encodeEntity, minuteOf, type EncodedEntity } from './entity-state';
import type { Directory, Holder } from './directory';
import type { Campaign } from './incident';
import { isLinkLocal } from './ports';
import { DIRECTORY_CLIENT, SERVES_DIRECTORY, type RoleResolver } from './roles';
import type { EntityDescriptor, Matcher } from './selectors';

/**
 * The tracked entities, identity first: a workload is found by its key (kind, namespace, id), an
 * address-only endpoint by the workload last seen holding that address, else by the address.
 * Also where entities are forgotten: after an idle TTL (exactly: checked when an entity is next
 * seen, and swept for memory), and, at the cap, the least risky and longest idle first. Never
 * forgotten: roots of incidents, and (up to `limits.maxLearnedRoles`) the entities learned to be
 * domain controllers, whose role would otherwise be lost and let spoofed flows make them targets.
 */
export class EntityTable {
  private readonly entities = new Map<string, EntityState>();
  /** Address to the workload that holds it. */
  private readonly bindings = new Map<string, EntityState>();
  private readonly learned = new Set<EntityState>();
  private readonly ttlMinutes: number;
  private readonly refreshMinutes: number;
  /** Set when engines share partitions: bindings other partitions announced, and where to announce ours. */
  private shared: { directory: Directory; announce: (s: EntityState, ip: string, t: number) => void } | undefined;
  evicted = 0;

  constructor(
    private readonly config: CorrelationConfig,
    private readonly roles: RoleResolver,
    private readonly allowlisted: Matcher | undefined,
  ) {
    this.ttlMinutes = Math.ceil(config.limits.entityTtlMs / 60_000);
    this.refreshMinutes = Math.max(0, Math.floor(config.limits.descriptorRefreshMs / 60_000));
  }

  get size(): number {
    return this.entities.size;
  }

  /** Bindings are shared across partitions: look bare addresses up in `directory`, announce ours. */
  share(directory: Directory, announce: (s: EntityState, ip: string, t: number) => void): void {
    this.shared = { directory, announce };
  }

  /** The key an endpoint resolves to, without creating or touching anything. */
  resolve(ep: { ip?: string; workload?: WorkloadRef }, t: number): string {
    if (ep.workload !== undefined) return entityKey(ep.workload);
    const ip = ep.ip as string;
    return this.holder(ip, minuteOf(t))?.key ?? this.shared?.directory.holderOf(ip, t)?.key ?? 'ip:' + ip;
  }

  get bindingCount(): number {
    return this.bindings.size;
  }

  get(key: string): EntityState | undefined {
    return this.entities.get(key);
  }

  values(): IterableIterator<EntityState> {
    return this.entities.values();
  }

  /**
   * Find or create the entity of an endpoint, and mark it seen at `t`. `trusted`: the event comes
   * from a source whose workload labels the config trusts; other labels describe nothing.
   */
  touch(ep: { ip?: string; workload?: WorkloadRef }, t: number, trusted: boolean): EntityState {
    const w = ep.workload;
    const ip = ep.ip;
    const minute = minuteOf(t);
    let s: EntityState | undefined;
    if (w !== undefined) {
      const key = flat(entityKey(w));
      s = this.fresh(this.entities.get(key), minute);
      if (s === undefined) {
        s = this.create(key, t);
        if (ip !== undefined) this.bind(s, ip);
        this.describe(s, w, minute, trusted);
        if (ip !== undefined) this.shared?.announce(s, ip, t);
      } else if (minute - s.described >= this.refreshMinutes) {
        if (ip !== undefined && s.ip !== ip && this.bindings.get(ip) !== s) this.bind(s, ip);
        this.describe(s, w, minute, trusted);
        if (ip !== undefined && this.shared !== undefined && this.bindings.get(ip) === s) this.shared.announce(s, ip, t);
      }
    } else {
      s = this.holder(ip as string, minute) ?? this.announced(ip as string, t, minute) ?? this.byAddress(ip as string, t, minute);
    }
    if (minute > s.seen) s.seen = minute;
    return s;
  }

  /** The workload that holds an address, while it is tracked, fresh, and nobody claimed it since. */
  private holder(ip: string, minute: number): EntityState | undefined {
    const s = this.bindings.get(ip);
    if (s === undefined || !this.isBound(ip, s) || minute - s.seen > this.ttlMinutes) return undefined;
    return s;
  }

  /**
   * The workload another partition announced for an address: its state here (created if need be)
   * takes what the owner knows of it. Not bound here, so a newer announcement wins at once.
   */
  private announced(ip: string, t: number, minute: number): EntityState | undefined {
    const h = this.shared?.directory.holderOf(ip, t);
    if (h === undefined) return undefined;
    const s = this.fresh(this.entities.get(h.key), minute) ?? this.create(h.key, t);
    this.takeHolder(s, ip, h, minute);
    return s;
  }

  private takeHolder(s: EntityState, ip: string, h: Holder, minute: number): void {
    if (s.ip === undefined || !isLinkLocal(ip)) s.ip = ip;
    if (h.name !== undefined && s.name !== h.name) s.setName(h.name);
    s.role = this.roles.revive(h.role, h.roleSource);
    const learned = (h.flags | (this.shared as { directory: Directory }).directory.flagsOf(ip)) & (ALLOWLISTED | LEARNED);
    s.flags = (s.flags & ~ALLOWLISTED) | learned;
    s.described = minute;
    this.learn(s);
  }

  private byAddress(ip: string, t: number, minute: number): EntityState {
    const key = flat('ip:' + ip);
    let s = this.fresh(this.entities.get(key), minute);
    if (s === undefined) {
      s = this.create(key, t);
      s.ip = ip;
      this.describe(s, undefined, minute, false);
    }
    const learned = this.shared === undefined ? 0 : this.shared.directory.flagsOf(ip) & LEARNED;
    if ((s.flags & learned) !== learned) {
      s.flags |= learned;
      this.learn(s);
    }
    return s;
  }

  /**
   * Compute what selectors say about an entity (its configured role, whether it is allowlisted)
   * from the workload in hand, and keep only the answers: on creation, then at most once per
   * `descriptorRefreshMs` (with a new address, if it has one), so relabelling and re-addressing
   * take effect within that time and nothing from the event is retained.
   */
  private describe(s: EntityState, w: WorkloadRef | undefined, minute: number, trusted: boolean): void {
    const desc: EntityDescriptor = w
      ? { kind: w.kind, id: w.id, name: w.name, namespace: w.namespace, labels: trusted ? w.labels : undefined, ip: s.ip }
      : { kind: s.kind, ip: s.ip };
    if (w !== undefined && s.name !== w.name) s.setName(w.name);
    s.role = this.roles.configured(desc);
    const allowed = this.allowlisted !== undefined && this.allowlisted(desc);
    s.flags = allowed ? s.flags | ALLOWLISTED : s.flags & ~ALLOWLISTED;
    s.described = minute;
  }

  /** An entity idle past its TTL is forgotten when next seen, whether or not a sweep got to it. */
  private fresh(s: EntityState | undefined, minute: number): EntityState | undefined {
    if (s === undefined || minute - s.seen <= this.ttlMinutes || this.kept(s)) return s;
    this.remove(s);
    return undefined;
  }

  private isBound(ip: string, s: EntityState): boolean {
    return this.entities.get(s.key) === s && this.bindings.get(ip) === s;
  }

  /**
   * A workload seen on an address: the address now means this workload. A new pod on an old IP
   * claims the address, not the history; a pod on a new IP keeps its history under its own key.
   * A host has several addresses (IPv4, IPv6 link-local): all stay bound; the one shown is the
   * latest that is not link-local.
   */
  private bind(s: EntityState, ip: string): void {
    this.bindings.set(ip, s);
    if (s.ip === undefined || !isLinkLocal(ip)) {
      s.ip = ip;
      s.described = -1; // address selectors may answer differently now
    }
  }

  private create(key: string, t: number): EntityState {
    if (this.entities.size >= this.config.limits.maxEntities) this.evict(t);
    const s = new EntityState(intern(key), t);
    this.entities.set(s.key, s);
    return s;
  }

  /** An entity whose behaviour taught it a role: kept for good while there is room. */
  learn(s: EntityState): void {
    if (s.flags & SERVES_DIRECTORY && this.learned.size < this.config.limits.maxLearnedRoles) this.learned.add(s);
  }

  /** Kept past its TTL and through eviction: an incident root, or a learned directory server. */
  private kept(s: EntityState): boolean {
    return s.campaign !== null || this.learned.has(s);
  }

  remove(s: EntityState): void {
    this.entities.delete(s.key);
    this.learned.delete(s);
    if (s.ip !== undefined && this.bindings.get(s.ip) === s) this.bindings.delete(s.ip);
  }

  /** At the cap: forget the least risky, longest idle entities (never the root of a live incident). */
  private evict(now: number): void {
    const keep = Math.floor(this.config.limits.maxEntities * EVICT_TO);
    const ranked: { s: EntityState; risk: number }[] = [];
    for (const s of this.entities.values()) {
      if ((s.campaign !== null && s.campaign.live) || this.learned.has(s)) continue;
      ranked.push({ s, risk: s.riskNow(now, this.config.halfLifeMs) });
    }
    ranked.sort((a, b) => a.risk - b.risk || a.s.seen - b.s.seen || compare(a.s.key, b.s.key));
    const excess = Math.min(this.entities.size - keep, ranked.length);
    for (let i = 0; i < excess; i++) this.remove((ranked[i] as { s: EntityState }).s);
    this.evicted += excess;
  }

  /** Forget entities idle past the TTL (except incident roots); returns how many went. */
  expire(now: number): number {
    const minute = minuteOf(now);
    let expired = 0;
    for (const s of this.entities.values()) {
      if (minute - s.seen <= this.ttlMinutes || this.kept(s)) continue;
      this.remove(s);
      expired += 1;
    }
    if (expired > 0) this.dropStaleBindings();
    return expired;
  }

  /** Drop the selected entities (a partition handed over); returns how many went. */
  forget(pick: (key: string) => boolean): number {
    let n = 0;
    for (const s of this.entities.values()) {
      if (!pick(s.key)) continue;
      this.remove(s);
      n += 1;
    }
    this.dropStaleBindings();
    return n;
  }

  private dropStaleBindings(): void {
    this.bindings.forEach((s, ip, map) => {
      if (this.entities.get(s.key) !== s) map.delete(ip);
    });
  }

  encode(pick: (key: string) => boolean): { entities: EncodedEntity[]; bindings: [string, string][] } {
    const entities: EncodedEntity[] = [];
    for (const s of this.entities.values()) if (pick(s.key)) entities.push(encodeEntity(s));
    const bindings: [string, string][] = [];
    for (const [ip, s] of this.bindings) if (pick(s.key) && this.isBound(ip, s)) bindings.push([ip, s.key]);
    return { entities, bindings };
  }

  load(
    entities: readonly EncodedEntity[],
    bindings: readonly [string, string][],
    incident: (id: string) => Campaign | undefined,
  ): void {
    for (const e of entities) {
      const s = decodeEntity(e, incident, (role, source) => this.roles.revive(role, source));
      this.entities.set(s.key, s);
      this.learn(s);
    }
    for (const [ip, key] of bindings) {
      const s = this.entities.get(key);
      if (s) this.bindings.set(ip, s);
    }
  }
}

const EVICT_TO = 0.9;
/** Behaviour flags another partition may teach. */
const LEARNED = SERVES_DIRECTORY | DIRECTORY_CLIENT;

/** A flat, internalized copy of a key built by concatenation (it would otherwise keep its parts alive). */
function intern(key: string): string {
  const holder: Record<string, 1> = { [key]: 1 };
  for (const k in holder) return k;
  return key;
}

/** The key built flat at once: a map lookup with a concatenated string takes a slow path. */
function flat(key: string): string {
  key.charCodeAt(0);
  return key;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
