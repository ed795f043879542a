import { isFlow, subjectKey, type Anomaly, type CordonEvent, type Flow } from '../events';
import { parseCorrelationConfig, type CorrelationConfig, type CorrelationConfigInput } from './config';
import {
  ALLOWLISTED,
  EndpointMapperMemory,
  EntityState,
  PAIR_COUNT,
  PAIR_FIRST,
  PAIR_GAP_AT,
  PAIR_LAST,
  PAIR_PORT,
  PairTable,
  type EncodedEntity,
} from './entity-state';
import { EntityTable } from './entity-table';
import {
  Campaign,
  copyCampaign,
  incidentId,
  materialChanges,
  type CampaignData,
  type Incident,
  type IncidentStatus,
  type Position,
} from './incident';
import { policyGapFinding, type PolicyGapFinding } from './policy-gap';
import {
  NOISE_PORTS,
  RPC_ENDPOINT_MAPPER,
  classifyPort,
  isBroadcastOrMulticast,
  isDynamicRpcPort,
  isLateral,
  isLoopback,
  type LateralService,
  type ServiceClass,
} from './ports';
import { DIRECTORY_CLIENT, DOMAIN_CONTROLLER, RoleResolver, SERVES_DIRECTORY, UNKNOWN } from './roles';
import { ServedMemory } from './baseline';
import * as signals from './signals';
import { LATERAL_RULES } from './evidence';
import * as rules from './scoring';
import { compileAny } from './selectors';
import { explainIncident, type Explanation } from './explain';
import { HandoffMemory, forwardId, type Bind, type EncodedLinks, type EntityNote, type Forward, type Handoff, type Link, type Reach } from './handoff';
import { Directory, type EncodedDirectory, type EncodedLearned } from './directory';
import { transition, type Transition } from '../incidents/lifecycle';

/**
 * The correlation engine: pure and deterministic. Event time drives everything (decay, windows,
 * expiry); there is no I/O and no wall clock inside. The same events in the same order give the
 * same changes, and a snapshot restored mid-stream continues exactly as if it had never stopped.
 */

export type Change =
  | { type: 'incident_opened'; incident: Incident }
  | { type: 'incident_updated'; incident: Incident; reasons: string[] }
  | { type: 'policy_gap'; finding: PolicyGapFinding };

export type StatusResult = (Transition | { outcome: 'unknown' }) & { changes: readonly Change[] };

export interface EngineSnapshot {
  v: 1;
  clock: number;
  lastSweep: number;
  entities: EncodedEntity[];
  /** Opened incidents (open or quiet) whose root is selected. */
  incidents: CampaignData[];
  bindings: [ip: string, key: string][];
  /** Links to campaigns rooted on other partitions, and the forwards applied (handoff.ts). */
  handoffs?: EncodedLinks;
  /** Addresses other partitions' workloads hold (directory.ts): the same in every partition's snapshot. */
  directory?: EncodedDirectory;
  learned?: EncodedLearned;
}

/** Which entities a snapshot holds: a predicate on the entity key, or a set of keys. */
export type EntitySelection = ((key: string) => boolean) | Iterable<string>;

export interface AdvanceResult {
  /** Incidents that went quiet (idle) in this sweep. */
  quieted: string[];
  /** Entities forgotten after their idle TTL. */
  expired: number;
  /** Quiet incidents dropped from memory after their retention. */
  forgotten: string[];
}

interface FlowContext {
  src: EntityState;
  dst: EntityState;
  port: number;
  service: ServiceClass;
  denied: boolean;
  /** This attempt is part of a fan-out... */
  fanOut: boolean;
  /** ...and the one that revealed it. */
  fanOutStarted: boolean;
  pairs: PairTable | null;
}

const EMPTY: readonly Change[] = Object.freeze([]) as readonly Change[];
const MAX_HOPS = 8;

export class CorrelationEngine implements rules.RuleContext {
  readonly config: CorrelationConfig;
  readonly stats = { events: 0, noise: 0, allowlisted: 0, expired: 0 };
  readonly roles: RoleResolver;
  private readonly entities: EntityTable;
  /** Opened incidents, open or quiet, until their retention ends. */
  private readonly incidents = new Map<string, Campaign>();
  private clock = 0;
  private lastSweep = 0;
  private readonly labelSources: ReadonlySet<string>;
  private onForgotten: ((incident: Incident) => void) | undefined = undefined;
  /** Set when campaigns cross partitions (the correlator); replay leaves it unset. */
  private partitionOf: ((key: string) => number) | undefined = undefined;
  /** Partitions this engine reads too (one replica owning several): a redirect there stays here. */
  private ownedHere: (partition: number) => boolean = () => false;
  private readonly handoffs: HandoffMemory;
  private readonly directory: Directory;
  private outbox: Handoff[] = [];
  readonly handoffStats = { reached: 0, forwarded: 0, applied: 0, declined: 0, refused: 0, bound: 0, redirected: 0 };

  constructor(config: CorrelationConfigInput = {}) {
    this.config = parseCorrelationConfig(config);
    this.labelSources = new Set(this.config.roles.trustedLabelSources);
    this.roles = new RoleResolver(this.config);
    this.entities = new EntityTable(this.config, this.roles, compileAny(this.config.allowlist));
    this.handoffs = new HandoffMemory(this.config.limits.maxHandoffs);
    this.directory = new Directory(this.config.limits.maxHandoffs, this.config.limits.entityTtlMs);
  }

  // ---- campaigns across partitions (handoff.ts) ---------------------------------------------

  /** Campaigns cross partitions: `partitionOf` says which partition owns an entity key. */
  shareAcross(partitionOf: (key: string) => number, ownedHere: (partition: number) => boolean = () => false): void {
    this.partitionOf = partitionOf;
    this.ownedHere = ownedHere;
    this.entities.share(this.directory, (s, ip, t) => this.announce(s, ip, t));
  }

  /** A workload holds an address: every partition learns it (a bare address then means it there too). */
  private announce(s: EntityState, ip: string, t: number): void {
    const flags = s.flags & (ALLOWLISTED | SERVES_DIRECTORY | DIRECTORY_CLIENT);
    const name = s.name;
    const bind: Bind = { type: 'bind', ip, holder: s.key, ...(name === undefined ? {} : { name }), role: s.role.role, roleSource: s.role.source, flags, at: t };
    this.onBind(bind);
    this.outbox.push(bind);
    this.handoffStats.bound += 1;
  }

  /** Behaviour learned here about an entity with an address: every partition learns it. */
  private share(s: EntityState, flags: number, t: number): void {
    if (this.partitionOf === undefined || s.ip === undefined) return;
    this.directory.learn(s.ip, flags, t);
    this.outbox.push({ type: 'learned', ip: s.ip, flags, at: t });
  }

  /**
   * An event about a bare address that a workload on another partition holds goes there: its
   * evidence belongs with that workload's state. True when it went.
   */
  private redirected(event: CordonEvent, t: number): boolean {
    const part = this.partitionOf;
    if (part === undefined) return false;
    const ep = isFlow(event) ? event.src : 'kind' in event.entity ? { workload: event.entity } : event.entity;
    if ('workload' in ep && ep.workload !== undefined) return false;
    const key = this.entities.resolve(ep, t);
    const to = part(key);
    if (to === part(subjectKey(event)) || this.ownedHere(to)) return false;
    this.outbox.push({ type: 'redirect', to: key, event });
    this.handoffStats.redirected += 1;
    return true;
  }

  /** The hand-offs raised since the last call, in the order they were raised. */
  takeHandoffs(): Handoff[] {
    const out = this.outbox;
    this.outbox = [];
    return out;
  }

  /**
   * Apply a hand-off from another partition's engine: a link to a remote campaign, or evidence for
   * a local one. It does not move the clock: only this partition's own events do (a hand-off from
   * far in the future must not expire everything here).
   */
  applyHandoff(h: Handoff): readonly Change[] {
    switch (h.type) {
      case 'reach':
        return this.onReach(h);
      case 'forward':
        return this.onForward(h);
      case 'bind':
        return this.onBind(h);
      case 'learned':
        this.directory.learn(h.ip, h.flags, h.at);
        return EMPTY;
      case 'redirect':
        return this.take(h.event, false);
    }
  }

  private onBind(h: Bind): readonly Change[] {
    const { ip, holder: key, type: _type, ...rest } = h;
    this.directory.bind(ip, { key, ...rest });
    return EMPTY;
  }

  // ---- input -------------------------------------------------------------------------------

  /** Feed one normalized event; returns what changed (usually nothing). */
  ingest(event: CordonEvent): readonly Change[] {
    return this.take(event, true);
  }

  /** `mayRedirect`: false for an event another partition redirected here (it stays). */
  private take(event: CordonEvent, mayRedirect: boolean): readonly Change[] {
    const t = event.time;
    if (t > this.clock) this.clock = t;
    if (this.clock - this.lastSweep >= this.config.limits.sweepEveryMs) this.sweep(this.clock);
    if (isFlow(event) && isNoise(event)) {
      this.stats.events += 1;
      this.stats.noise += 1;
      return EMPTY;
    }
    if (mayRedirect && this.redirected(event, t)) return EMPTY;
    this.stats.events += 1;
    return isFlow(event) ? this.onFlow(event, t) : this.onAnomaly(event, t);
  }

  /** Move the clock forward without an event: incidents go quiet, idle entities expire. */
  advance(now: number): AdvanceResult {
    if (now > this.clock) this.clock = now;
    return this.sweep(this.clock);
  }

  /** Be handed the final view of each incident as it is forgotten (replay reports it still). */
  whenForgotten(sink: (incident: Incident) => void): void {
    this.onForgotten = sink;
  }

  /** Alias of `advance`. */
  tick(now: number): AdvanceResult {
    return this.advance(now);
  }

  // ---- lifecycle, queries ------------------------------------------------------------------

  /**
   * Lifecycle transitions come from outside (containment, analysts); the engine applies them in
   * order with the evidence and publishes each change as a new version. An unknown incident or a
   * transition the lifecycle forbids changes nothing and says why.
   */
  setStatus(id: string, status: IncidentStatus): StatusResult {
    const c = this.incidents.get(id);
    if (!c) return { outcome: 'unknown', changes: EMPTY };
    const from = c.d.status;
    const step = transition(from, status);
    if (step.outcome !== 'changed') return { ...step, changes: EMPTY };
    c.d.status = status;
    c.d.version += 1;
    return { outcome: 'changed', changes: [{ type: 'incident_updated', incident: c.view(this.config), reasons: [`status ${from} -> ${status}`] }] };
  }

  incident(id: string): Incident | undefined {
    return this.incidents.get(id)?.view(this.config);
  }

  /** Every incident still in memory, oldest first. */
  listIncidents(): Incident[] {
    return [...this.incidents.values()]
      .sort((a, b) => a.d.firstSeen - b.d.firstSeen || compare(a.d.id ?? '', b.d.id ?? ''))
      .map((c) => c.view(this.config));
  }

  /** The evidence and rule weights that raised an incident (`--explain`). */
  explain(id: string): Explanation | undefined {
    const c = this.incidents.get(id);
    return c ? explainIncident(c.view(this.config), this.config) : undefined;
  }

  /** The state of one entity (rules read it; tests and tools may too). */
  entity(key: string): EntityState | undefined {
    return this.entities.get(key);
  }

  /** Entities evicted at the cap so far. */
  get evicted(): number {
    return this.entities.evicted;
  }

  get size(): { entities: number; incidents: number; bindings: number } {
    return { entities: this.entities.size, incidents: this.incidents.size, bindings: this.entities.bindingCount };
  }

  // ---- snapshots ---------------------------------------------------------------------------

  /** A JSON-serializable copy of the state of the selected entities (all when no selection). */
  snapshot(select?: EntitySelection): EngineSnapshot {
    const pick = toPredicate(select);
    const { entities, bindings } = this.entities.encode(pick);
    const incidents: CampaignData[] = [];
    for (const c of this.incidents.values()) if (pick(c.d.root)) incidents.push(copyCampaign(c.d));
    const shared = this.partitionOf === undefined ? {} : { directory: this.directory.encode(), learned: this.directory.encodeLearned() };
    return { v: 1, clock: this.clock, lastSweep: this.lastSweep, entities, incidents, bindings, handoffs: this.handoffs.encode(pick), ...shared };
  }

  /** A new engine from one snapshot, or several (partitions taken over together). */
  static restore(snapshots: EngineSnapshot | readonly EngineSnapshot[], config: CorrelationConfigInput = {}): CorrelationEngine {
    const engine = new CorrelationEngine(config);
    for (const snap of Array.isArray(snapshots) ? snapshots : [snapshots]) engine.load(snap as EngineSnapshot);
    return engine;
  }

  /** Merge a snapshot into this engine (a partition handed over while running). */
  load(snap: EngineSnapshot): void {
    if (snap.v !== 1 || !Array.isArray(snap.entities) || !Array.isArray(snap.incidents)) {
      throw new Error('not a correlation engine snapshot (v1)');
    }
    this.clock = Math.max(this.clock, snap.clock);
    this.lastSweep = Math.max(this.lastSweep, snap.lastSweep);
    for (const d of snap.incidents) this.incidents.set(d.id as string, new Campaign(copyCampaign(d)));
    this.entities.load(snap.entities, snap.bindings, (id) => this.incidents.get(id));
    if (snap.handoffs) this.handoffs.load(snap.handoffs);
    if (snap.directory) this.directory.load(snap.directory, snap.learned);
  }

  /**
   * Drop the state of the selected entities, and the incidents they root (a partition handed to
   * another replica, which restores it from the snapshot). Returns how many entities went.
   */
  forget(select: EntitySelection): number {
    const pick = toPredicate(select);
    for (const [id, c] of this.incidents) if (pick(c.d.root)) this.incidents.delete(id);
    this.handoffs.forget(pick);
    return this.entities.forget(pick);
  }

  // ---- flows -------------------------------------------------------------------------------

  private onFlow(f: Flow, t: number): readonly Change[] {
    const src = this.entities.touch(f.src, t, this.labelSources.has(f.observer.type));
    return f.action === 'denied' ? this.onDenied(f, src, t) : this.onAllowed(f, src, t);
  }

  /**
   * A permitted flow weighs nothing, but it teaches: where the source's workload is (its address),
   * who serves Kerberos/LDAP (a DC), who asked an endpoint mapper, and, on a hop already in a live
   * incident's path, that the attacker got through. It never adds a hop: a compromised
   * workstation's ordinary traffic to its DC is not a path. The destination is looked up only for
   * those lessons (the hot path of the engine is the permitted flow that teaches nothing).
   */
  private onAllowed(f: Flow, src: EntityState, t: number): readonly Change[] {
    const port = f.dstPort;
    const flags = this.roles.observedFlags(port);
    const root = this.rootOf(src, t);
    const c = root.campaign;
    if (flags === 0 && port !== RPC_ENDPOINT_MAPPER && c === null && !this.maySession(src, port)) return EMPTY;
    const dst = this.entities.touch(f.dst, t, this.labelSources.has(f.observer.type));
    if (dst === src) return EMPTY;
    if (port === RPC_ENDPOINT_MAPPER) (src.epm ??= new EndpointMapperMemory()).remember(dst.key, t, true);
    let out = EMPTY;
    if (flags !== 0 && (src.flags & DIRECTORY_CLIENT) === 0) {
      src.flags |= DIRECTORY_CLIENT;
      this.share(src, DIRECTORY_CLIENT, t);
    }
    if (flags !== 0 && (dst.flags & flags) !== flags) {
      dst.flags |= flags;
      this.entities.learn(dst);
      this.share(dst, flags, t);
      out = this.onRoleLearned(dst, t);
    }
    const service = this.serviceOf(src, dst, port, t);
    if (isLateral(service) && signals.establishes(this.config, f)) {
      const session = this.onSession(src, dst, port, service, t, f);
      if (session !== undefined) return concat(out, session);
    }
    if (c !== null && c.live) {
      // the campaign's targets talk all day: only its root and its pivots that acted can open a foothold
      const known = c.findEdge(src.key, dst.key) !== undefined;
      if (!known && src !== root && src.sus.hopAt === 0) return out;
      if (!isLateral(service)) return out;
      if (known) c.touchEdge(src.key, dst.key, port, service, false, t, this.config.incident.maxEdges);
      if (this.isFoothold(c, src, dst, service, known, t)) {
        if (!known) {
          c.touchEdge(src.key, dst.key, port, service, false, t, this.config.incident.maxEdges);
          this.note(c, dst, 'target');
        }
        this.link(dst, root.key, t, true, true);
      }
    }
    return out;
  }

  /** A permitted flow on a port that can carry a remote-administration session (a cheap test). */
  private maySession(src: EntityState, port: number): boolean {
    const a = this.config.allowedFlows;
    if (!a.enabled) return false;
    if (src.epm !== null && isDynamicRpcPort(port)) return true;
    const service = classifyPort(port, false);
    return isLateral(service) && a.services[service] > 0;
  }

  /**
   * A permitted remote-administration session (signals.ts): evidence when it is the source's first
   * on this (destination, port) and the destination does not serve it; the destination becomes a
   * foothold of the source's campaign (B's own moves then join A's: a hop chain). Undefined when it
   * is not evidence (ordinary business, or a repeat).
   */
  private onSession(src: EntityState, dst: EntityState, port: number, service: LateralService, t: number, f: Flow): readonly Change[] | undefined {
    const cfg = this.config;
    if (!cfg.allowedFlows.enabled || cfg.allowedFlows.services[service] === 0) return undefined;
    (dst.served ??= new ServedMemory()).note(service, src.key, t, cfg.windows.pairTtlMs, cfg.allowedFlows.fleetSources);
    if (src.flags & ALLOWLISTED || signals.ordinarySession(this, src, dst, service) !== undefined) return undefined;
    if (signals.periodicVisit(src, dst, port, t, cfg.limits.sessionsPerEntity)) return undefined;
    const sessions = (src.sessions ??= new PairTable());
    const window = cfg.windows.fanOutMs;
    const newTarget = !signals.reachedSince(sessions, dst.key, t - window);
    if (sessions.hit(dst.key, port, t, cfg.windows.pairTtlMs, cfg.limits.sessionsPerEntity) >= 0) return undefined;
    const root = this.rootOf(src, t);
    const remote = root === src ? this.remoteRoot(src, t) : undefined;
    const found: rules.Contribution[] = [signals.adminSession(this, src, dst, service, port, t, f)];
    const hop = remote ? this.remoteHop(src, t) : this.propagationHop(src, root, t);
    if (hop) found.push(hop);
    const fan = newTarget ? signals.sessionFanOut(this, src, signals.sessionTargets(src, t, window), t) : undefined;
    if (fan) found.push(fan);
    // a protected destination (a DC) is a target, never a pivot: its own busy traffic is not the campaign's
    if (!signals.isProtected(this, dst)) this.link(dst, remote ? remote.root : root.key, t, true, remote !== undefined || root.campaign?.live === true);
    const ctx: FlowContext = { src, dst, port, service, denied: false, fanOut: false, fanOutStarted: false, pairs: null };
    return remote ? this.forward(remote, src, found, t, ctx) : this.apply(root, found, t, ctx);
  }

  /**
   * Whether a permitted remote-administration connection from a live campaign's root, or from a
   * pivot that acted in it, is a foothold: the campaign had evidence within `footholdMs`, and the
   * source is not scanning (a scan probes every service without using one: what it opens next is
   * ordinary business); then either the campaign was already after this host (it got through
   * where it was refused), or the source was refused on this very service during the campaign
   * (the tool refused elsewhere got through here), the service gives a foothold (a database
   * connection is what applications do all day), and the host's role is known and is not a
   * domain controller (every member talks SMB and RPC to its DC; a host of unknown role may be
   * one not yet recognized as such).
   */
  private isFoothold(c: Campaign, src: EntityState, dst: EntityState, service: ServiceClass, known: boolean, t: number): boolean {
    if (t - c.d.lastSeen > this.config.windows.footholdMs) return false;
    if (!known && (service === 'database' || !this.refusedOn(src, service, c.d.start))) return false;
    if (c.d.evidence.items.some((i) => i.rule === 'fan_out' && i.src === src.key)) return false;
    if (known) return true;
    const role = this.roles.effective(dst.role, dst.flags).role;
    return role !== DOMAIN_CONTROLLER && role !== UNKNOWN.role;
  }

  /** Whether one of the entity's recent denied pairs, seen since `since`, is on `service`. */
  private refusedOn(src: EntityState, service: ServiceClass, since: number): boolean {
    const pairs = src.pairs;
    if (pairs === null) return false;
    for (let i = 0; i < pairs.dst.length; i++) {
      if (pairs.get(i, PAIR_LAST) < since) continue;
      const port = pairs.get(i, PAIR_PORT);
      if (classifyPort(port, isDynamicRpcPort(port)) === service) return true;
    }
    return false;
  }

  private onDenied(f: Flow, src: EntityState, t: number): readonly Change[] {
    if (src.flags & ALLOWLISTED) {
      this.stats.allowlisted += 1;
      return EMPTY;
    }
    const dst = this.entities.touch(f.dst, t, this.labelSources.has(f.observer.type));
    if (dst === src) return EMPTY;
    const port = f.dstPort;
    if (port === RPC_ENDPOINT_MAPPER) (src.epm ??= new EndpointMapperMemory()).remember(dst.key, t, false);
    const service = this.serviceOf(src, dst, port, t);
    const pairs = (src.pairs ??= new PairTable());
    const { limits, windows } = this.config;
    const slot = pairs.hit(dst.key, port, t, windows.pairTtlMs, limits.pairsPerEntity);
    if (slot >= 0) return this.onRepeat(f, src, dst, service, pairs, slot, t);
    return this.onNewPair(src, dst, port, service, pairs, ~slot, t);
  }

  private serviceOf(src: EntityState, dst: EntityState, port: number, t: number): ServiceClass {
    const afterMapper =
      isDynamicRpcPort(port) && src.epm !== null && src.epm.before(dst.key, t, this.config.windows.rpcChainMs) !== 0;
    return classifyPort(port, afterMapper);
  }

  /** A first attempt on a (destination, port) pair: this is where risk comes from. */
  private onNewPair(
    src: EntityState,
    dst: EntityState,
    port: number,
    service: ServiceClass,
    pairs: PairTable,
    slot: number,
    t: number,
  ): readonly Change[] {
    const cfg = this.config;
    const root = this.rootOf(src, t);
    const remote = root === src ? this.remoteRoot(src, t) : undefined;
    const fanCount = pairs.countNew(t, cfg.windows.fanOutMs, cfg.weights.fanOut.minTargets, slot);
    const fan = rules.fanOut(cfg, src, fanCount, t);
    if (!isLateral(service) && fan === undefined) {
      // an ordinary port outside a scan: no evidence; a hop already on the path counts it
      const c = root.campaign;
      if (c !== null && c.live && c.findEdge(src.key, dst.key) !== undefined) {
        c.touchEdge(src.key, dst.key, port, service, true, t, cfg.incident.maxEdges);
      }
      return this.addMinor(root, t);
    }
    const found: rules.Contribution[] = [];
    if (isLateral(service)) {
      found.push(rules.adminPort(this, src, dst, service, port, t));
      if (service === 'rpc-dynamic' && src.epm?.before(dst.key, t, cfg.windows.rpcChainMs) === 2) {
        found.push(rules.rpcChain(cfg, src, dst, port, t));
      }
      const hop = remote ? this.remoteHop(src, t) : this.propagationHop(src, root, t);
      if (hop) found.push(hop);
      if ((found[0] as rules.Contribution).weight >= cfg.thresholds.pullIn || root.campaign !== null || remote) {
        this.link(dst, remote ? remote.root : root.key, t, false, remote !== undefined || root.campaign?.live === true);
      }
    } else {
      found.push(rules.deniedOther(cfg, src, t));
    }
    if (fan) found.push(fan);
    const fanOutStarted = fanCount === cfg.weights.fanOut.minTargets;
    const ctx: FlowContext = { src, dst, port, service, denied: true, fanOut: fan !== undefined, fanOutStarted, pairs };
    return remote ? this.forward(remote, src, found, t, ctx) : this.apply(root, found, t, ctx);
  }

  /** A repeat weighs nothing; it keeps an incident's counters exact, or reveals a policy gap. */
  private onRepeat(
    f: Flow,
    src: EntityState,
    dst: EntityState,
    service: ServiceClass,
    pairs: PairTable,
    slot: number,
    t: number,
  ): readonly Change[] {
    const root = this.rootOf(src, t);
    const c = this.currentCampaign(root, t);
    if (c !== null && c.findEdge(src.key, dst.key) !== undefined) {
      c.touchEdge(src.key, dst.key, f.dstPort, service, true, t, this.config.incident.maxEdges);
      c.repeat(src.key, dst.key, f.dstPort, t);
      return EMPTY;
    }
    if (c !== null) return EMPTY; // an incident's member is not a policy gap
    // coming back to a target can be what corroborates lone attempts (persistence)
    const s = root.sus;
    if (s.pending !== null && root.riskNow(t, this.config.halfLifeMs) >= this.config.thresholds.incident) {
      root.decayTo(t, this.config.halfLifeMs);
      const opened = this.maybeOpen(root, t);
      if (opened.length > 0) return opened;
    }
    return this.policyGap(f, src, dst, service, pairs, slot, t);
  }

  private policyGap(
    f: Flow,
    src: EntityState,
    dst: EntityState,
    service: ServiceClass,
    pairs: PairTable,
    slot: number,
    t: number,
  ): readonly Change[] {
    const g = this.config.policyGap;
    const attempts = pairs.get(slot, PAIR_COUNT);
    const firstSeen = pairs.get(slot, PAIR_FIRST);
    const reportedAt = pairs.get(slot, PAIR_GAP_AT);
    if (attempts < g.minAttempts || t - firstSeen < g.minSpanMs) return EMPTY;
    if (reportedAt !== 0 && t - reportedAt < g.reemitMs) return EMPTY;
    pairs.set(slot, PAIR_GAP_AT, t);
    // a misconfigured client, not a campaign: its destination is nobody's target
    if (dst.sus.upstream === src.key) dst.unlink();
    const finding = policyGapFinding({
      src: party(src),
      dst: party(dst),
      port: f.dstPort,
      protocol: f.protocol,
      service,
      attempts,
      firstSeen,
      lastSeen: t,
      ...(f.policy ? { policy: f.policy } : {}),
    });
    return [{ type: 'policy_gap', finding }];
  }

  // ---- anomalies, roles --------------------------------------------------------------------

  private onAnomaly(a: Anomaly, t: number): readonly Change[] {
    const subject = this.entities.touch('kind' in a.entity ? { workload: a.entity } : { ip: a.entity.ip }, t, this.labelSources.has(a.detector));
    if (subject.flags & ALLOWLISTED) {
      this.stats.allowlisted += 1;
      return EMPTY;
    }
    const root = this.rootOf(subject, t);
    const remote = root === subject ? this.remoteRoot(subject, t) : undefined;
    const found = [rules.anomaly(this.config, subject, a)];
    return remote ? this.forward(remote, subject, found, t) : this.apply(root, found, t);
  }

  /** A destination attacked earlier turns out to serve Kerberos/LDAP: the campaign hit a DC. */
  private onRoleLearned(target: EntityState, t: number): readonly Change[] {
    const { upstream: up, upstreamAt } = target.sus;
    if (up === null || t - upstreamAt > this.config.windows.propagationMs) return EMPTY;
    const role = this.roles.effective(target.role, target.flags);
    if (role.role !== DOMAIN_CONTROLLER || role.source !== 'observed') return EMPTY;
    const upstream = this.entities.get(up);
    if (!upstream) return EMPTY;
    const root = this.rootOf(upstream, t);
    const c = this.currentCampaign(root, t);
    const attacker = c
      ? c.d.edges.find((e) => e.to === target.key)?.from
      : root.sus.pending?.find((p) => p.rule === 'admin_port' && p.dst === target.key)?.src;
    if (attacker === undefined) return EMPTY;
    return this.apply(root, [rules.targetRole(this.config, attacker, target, t)], t);
  }

  // ---- campaigns ---------------------------------------------------------------------------

  /**
   * Whose campaign an entity's activity belongs to: its own, or, when it was recently attacked
   * as part of another campaign, that campaign's root (A to B, then B to C is one campaign). A
   * link is followed only into an open incident whose campaign made it (not one that went quiet,
   * nor risk gathered before the link), for `propagationMs` after a foothold and `attemptedMs`
   * after a denied attempt, and along a chain only backwards in time (B was A's target before C
   * was B's).
   */
  private rootOf(start: EntityState, t: number): EntityState {
    const s0 = start.sus;
    if (s0.upstream === null || (s0.campaign !== null && s0.campaign.live)) return start; // the hot path
    const { windows, incident } = this.config;
    let cur = start;
    let after = t; // a link further up must be older than the one followed into it
    for (let depth = 0; depth < MAX_HOPS; depth++) {
      const s = cur.sus;
      const up = s.upstream;
      const at = s.upstreamAt;
      if (up === null || t - at > (s.foothold ? windows.propagationMs : windows.attemptedMs) || at > after) return start;
      const next = this.entities.get(up);
      if (next === undefined || next === start) return start;
      // a link counts only into an open incident, and only if that campaign made it: an entity
      // whose attempts never became an incident (or whose incident went quiet) roots nothing
      const c = next.sus.campaign;
      if (c !== null && c.live && t - c.d.lastSeen <= incident.idleMs) return at >= c.d.start ? next : start;
      cur = next;
      after = at;
    }
    return start;
  }

  /**
   * Mark a destination as a target of `root`'s campaign, unless it runs an incident of its own. A
   * foothold (the campaign got in) stays one while the link is refreshed by the same campaign.
   */
  private pullIn(dst: EntityState, root: string, t: number, foothold = false): boolean {
    if (dst.key === root || (dst.campaign !== null && dst.campaign.live)) return false;
    const s = dst.mut;
    s.foothold = foothold || (s.foothold && s.upstream === root && t - s.upstreamAt <= this.config.windows.propagationMs);
    s.upstream = root;
    s.upstreamAt = t;
    return true;
  }

  /**
   * Link a destination to `root`'s campaign (`pullIn`). When the campaign crosses partitions and
   * the destination's partition is not the root's, its owner is told (a reach), once the campaign
   * is an incident: links made before it opened are sent when it does (`reachTargets`).
   */
  private link(dst: EntityState, root: string, t: number, foothold: boolean, open: boolean): void {
    if (!this.pullIn(dst, root, t, foothold)) return;
    const part = this.partitionOf;
    if (part === undefined || part(dst.key) === part(root)) return;
    if (open) this.sendReach(dst, root);
  }

  /** The reach goes to the target's partition, through Kafka even when this engine owns it too. */
  private sendReach(dst: EntityState, root: string): void {
    const s = dst.sus;
    this.outbox.push({ type: 'reach', root, target: dst.key, at: s.upstreamAt, foothold: s.foothold });
    this.handoffStats.reached += 1;
  }

  /** A campaign just became an incident: its targets on other partitions learn they are linked to it. */
  private reachTargets(c: Campaign, root: EntityState): void {
    const part = this.partitionOf as (key: string) => number;
    for (const e of c.d.entities) {
      if (e.position !== 'target' || part(e.key) === part(root.key)) continue;
      const s = this.entities.get(e.key);
      if (s !== undefined && s.sus.upstream === root.key && s.sus.upstreamAt >= c.d.start) this.sendReach(s, root.key);
    }
  }

  /**
   * The remote campaign an entity's moves belong to, when nothing here roots them: a link from a
   * reach, still within its window, to a root another partition owns. A protected entity (a DC)
   * is never a pivot of a remote campaign, whatever the reach said.
   */
  private remoteRoot(start: EntityState, t: number): Link | undefined {
    const part = this.partitionOf;
    if (part === undefined) return undefined;
    const l = this.handoffs.linkOf(start.key);
    if (l === undefined || l.at > t) return undefined;
    const { windows } = this.config;
    if (t - l.at > (l.foothold ? windows.propagationMs : windows.attemptedMs)) return undefined;
    if ((start.campaign !== null && start.campaign.live) || part(l.root) === part(start.key)) return undefined;
    if (this.entities.get(l.root)?.campaign?.live) return undefined; // held here: rootOf decided
    return signals.isProtected(this, start) ? undefined : l;
  }

  /** Propagation for a pivot of a remote campaign: once per propagation window, like `propagationHop`. */
  private remoteHop(pivot: EntityState, t: number): rules.Contribution | undefined {
    const s = pivot.sus;
    if (s.hopAt !== 0 && t - s.hopAt <= this.config.windows.propagationMs) return undefined;
    pivot.mut.hopAt = t;
    return rules.propagation(this.config, pivot, t);
  }

  /** The pivot's evidence goes to the partition of the campaign's root, described here where its state is. */
  private forward(link: Link, pivot: EntityState, found: readonly rules.Contribution[], t: number, flow?: FlowContext): readonly Change[] {
    const carried = found
      .filter((x) => !(x.rule === 'denied_other' && x.weight === 0))
      .map((x) => {
        const { reason, techniques } = x.rule === 'propagation' ? this.remoteHopReason(x, link) : rules.describe(this, x);
        return { ...x, reason, techniques: [...techniques] };
      });
    if (carried.length === 0) return EMPTY;
    const body: Omit<Forward, 'id'> = { type: 'forward', root: link.root, pivot: pivot.key, linkedAt: link.at, at: t, found: carried, entities: [] };
    if (flow && (isLateral(flow.service) || flow.fanOut)) {
      body.edge = { from: flow.src.key, to: flow.dst.key, port: flow.port, service: flow.service, denied: flow.denied };
      body.entities.push({ entity: this.noteOf(flow.src), position: 'pivot' }, { entity: this.noteOf(flow.dst), position: 'target' });
    } else body.entities.push({ entity: this.noteOf(pivot), position: 'pivot' });
    this.outbox.push({ ...body, id: forwardId(body) });
    this.handoffStats.forwarded += 1;
    return EMPTY;
  }

  private remoteHopReason(x: rules.Contribution, link: Link): { reason: string; techniques: readonly string[] } {
    const pivot = this.entities.get(x.src);
    const how = link.foothold ? 'reached by a permitted connection from' : 'a target of';
    const w = Math.round(x.weight * 1000) / 1000;
    return { reason: `${pivot?.name ?? pivot?.ip ?? x.src}, ${how} ${link.root}, now attempts remote administration itself (${w})`, techniques: [] };
  }

  private noteOf(s: EntityState): EntityNote {
    const role = this.roles.effective(s.role, s.flags);
    return { key: s.key, kind: s.kind, role: role.role, roleSource: role.source, ...identity(s) };
  }

  /** A reach: remember the link (a protected target refuses it), and follow it from this entity's next move. */
  private onReach(h: Reach): readonly Change[] {
    const target = this.entities.get(h.target);
    if (target !== undefined && signals.isProtected(this, target)) {
      this.handoffStats.refused += 1;
      return EMPTY;
    }
    const link = { root: h.root, at: h.at, foothold: h.foothold };
    this.handoffs.link(h.target, link);
    if (target === undefined || (target.sus.upstream !== null && target.sus.upstreamAt > h.at)) return EMPTY;
    this.pullIn(target, h.root, h.at, h.foothold);
    return this.reroot(target, link);
  }

  /**
   * A reach that arrives after the target already moved (partitions are read at their own pace: a
   * backlog, a replay): what it gathered since the link, short of an incident of its own, was the
   * campaign's all along. It goes there (forwarded, or applied here when this engine holds the
   * root too) and leaves the target's own risk.
   */
  private reroot(target: EntityState, link: Link): readonly Change[] {
    const s = target.sus;
    if (s.pending === null || s.campaign !== null) return EMPTY;
    const root = this.rootOf(target, this.clock);
    const remote = root === target ? this.remoteRoot(target, this.clock) : undefined;
    if (root === target && remote === undefined) return EMPTY;
    const late = s.pending.filter((p) => p.at >= link.at && p.rule !== 'denied_other');
    if (late.length === 0) return EMPTY;
    const kept = s.pending.filter((p) => !late.includes(p));
    const m = target.mut;
    m.pending = kept.length > 0 ? kept : null;
    let out: readonly Change[] = EMPTY;
    for (const p of late) {
      m.risk = Math.max(0, m.risk - p.weight * Math.pow(2, -Math.max(0, m.riskAt - p.at) / this.config.halfLifeMs));
      const src = this.entities.get(p.src);
      const dst = p.dst === undefined ? undefined : this.entities.get(p.dst);
      const found = [p];
      const hop = src !== target ? undefined : remote ? this.remoteHop(target, p.at) : this.propagationHop(target, root, p.at);
      if (hop) found.push(hop);
      let flow: FlowContext | undefined;
      if (src !== undefined && dst !== undefined && p.port !== undefined && p.service !== undefined) {
        flow = { src, dst, port: p.port, service: p.service, denied: p.rule === 'admin_port', fanOut: false, fanOutStarted: false, pairs: null };
        if (dst.sus.upstream === target.key) this.link(dst, remote ? remote.root : root.key, p.at, p.rule === 'admin_session', true);
      }
      if (remote) this.forward(remote, src ?? target, found, p.at, flow);
      else out = concat(out, this.apply(root, found, p.at, flow));
    }
    if (kept.length === 0 && target.sus.minorCount === 0) target.resetRisk();
    return out;
  }

  /**
   * A pivot's evidence, from the partition that owns it, for a campaign rooted here: applied once,
   * to the root's current incident if the link was made during it; otherwise it is declined (one
   * process would have rooted it at the pivot, whose state is not here).
   */
  private onForward(f: Forward): readonly Change[] {
    const root = this.entities.get(f.root);
    const c = root === undefined ? null : this.currentCampaign(root, f.at);
    if (root === undefined || c === null || f.linkedAt < c.d.start) {
      this.handoffStats.declined += 1;
      return EMPTY;
    }
    if (!this.handoffs.firstTime(f.id, f.root, f.at)) return EMPTY;
    const cfg = this.config.incident;
    for (const x of f.found) {
      this.credit(root, x.weight, x.at);
      if (!c.foldEvidence(x, x.count, x.at)) {
        const { reason, techniques, detail: _detail, at: _at, count, ...rest } = x;
        c.addEvidence({ ...rest, reason }, x.at, cfg.maxEvidence, count);
        c.addTechniques(techniques);
      }
      if (x.anomaly !== undefined) c.annotateAnomaly(x.src, x.anomaly);
    }
    const e = f.edge;
    if (e) c.touchEdge(e.from, e.to, e.port, e.service, e.denied, f.at, cfg.maxEdges);
    for (const { entity, position } of f.entities) this.noteCarried(c, entity, position);
    c.seen(f.at);
    this.handoffStats.applied += 1;
    return this.publish(root, c);
  }

  /** What this engine knows of an entity wins over what a hand-off says, unless it knows no role. */
  private noteCarried(c: Campaign, entity: EntityNote, position: Position): void {
    const local = this.entities.get(entity.key);
    if (local !== undefined && this.roles.effective(local.role, local.flags).role !== UNKNOWN.role) return this.note(c, local, position);
    c.noteEntity(entity, position, this.config.incident.maxEntities);
  }

  /** Propagation is credited once per pivot per propagation window. */
  private propagationHop(pivot: EntityState, root: EntityState, t: number): rules.Contribution | undefined {
    const s = pivot.sus;
    if (root === pivot || s.upstream === null) return undefined;
    if (s.hopAt !== 0 && t - s.hopAt <= this.config.windows.propagationMs) return undefined;
    pivot.mut.hopAt = t;
    return rules.propagation(this.config, pivot, t);
  }

  /**
   * The root's incident if it is still current. An incident idle past `idleMs` (or closed) goes
   * quiet and its risk is spent; risk that gathered no new contribution for that long fades to 0.
   */
  private currentCampaign(root: EntityState, t: number): Campaign | null {
    const c = root.campaign;
    const idle = this.config.incident.idleMs;
    if (c !== null) {
      if (c.live && t - c.d.lastSeen <= idle) return c;
      c.d.quiet = true;
      root.campaign = null;
      root.resetRisk();
      return null;
    }
    const s = root.sus;
    if (s.since !== 0 && t - s.last > idle) root.resetRisk();
    return null;
  }

  /** Ordinary denials with no incident around: only numbers move. */
  private addMinor(root: EntityState, t: number): readonly Change[] {
    const w = this.config.weights.services.other;
    if (w === 0) return EMPTY; // the default: ordinary ports count only through fan-out
    if (this.currentCampaign(root, t) !== null) return this.apply(root, [rules.deniedOther(this.config, root, t)], t);
    this.credit(root, w, t);
    root.mut.minorWeight += w;
    root.mut.minorCount += 1;
    return this.maybeOpen(root, t);
  }

  private credit(root: EntityState, weight: number, t: number): void {
    root.decayTo(t, this.config.halfLifeMs);
    const s = root.mut;
    s.risk += weight;
    if (s.since === 0) s.since = t;
    if (t > s.last) s.last = t;
  }

  /** Credit contributions to the root: remembered compactly before an incident, evidence after. */
  private apply(root: EntityState, found: readonly rules.Contribution[], t: number, flow?: FlowContext): readonly Change[] {
    const c = this.currentCampaign(root, t);
    for (const x of found) this.credit(root, x.weight, t);
    if (c !== null) return this.extend(root, c, found, t, flow);
    for (const x of found) {
      if (x.rule !== 'denied_other') root.remember(x, this.config.limits.pendingPerEntity);
      else if (x.weight !== 0) {
        root.mut.minorWeight += x.weight;
        root.mut.minorCount += 1;
      }
    }
    return this.maybeOpen(root, t);
  }

  /** The risk crossed the threshold and there is movement in it: build the incident. */
  private maybeOpen(root: EntityState, t: number): readonly Change[] {
    const s = root.mut;
    if (s.campaign !== null || s.risk < this.config.thresholds.incident) return EMPTY;
    const pending = s.pending;
    if (pending === null || !pending.some((p) => LATERAL_RULES.has(p.rule))) return EMPTY;
    if (s.overflow === null && !this.corroborated(pending)) return EMPTY;
    const c = Campaign.start(root.key, s.since);
    s.campaign = c;
    this.note(c, root, 'root');
    if (s.minorCount > 0) this.addRecord(c, rules.minorRecord(root), s.minorCount);
    for (const p of pending) this.replayRecord(c, root, p, t);
    for (const o of root.overflowTallies()) c.addUnkept(o.rule, o.count, o.weight);
    for (const p of pending) if (p.rule === 'anomaly') this.annotate(c, root, p.src, p.anomaly as string);
    s.minorWeight = s.minorCount = 0;
    s.pending = s.overflow = null;
    c.seen(t);
    c.d.score = root.risk;
    c.d.id = this.freshId(root.key, c.d.start);
    c.d.version = 1;
    c.d.emitted = c.signature(this.config.thresholds);
    this.incidents.set(c.d.id, c);
    if (this.partitionOf) this.reachTargets(c, root);
    return [{ type: 'incident_opened', incident: c.view(this.config) }];
  }

  /**
   * Whether the movement behind a campaign stands (config `corroboration`): any movement other
   * than lone attempts on services people reach by hand, or such attempts in a burst, persisting,
   * or with anomalies close to them.
   */
  private corroborated(pending: readonly rules.Contribution[]): boolean {
    const cfg = this.config.corroboration;
    const lone: rules.Contribution[] = [];
    for (const p of pending) {
      if (p.rule === 'admin_port') {
        if (!cfg.services.includes(p.service as ServiceClass) || this.tierZero(p.dst)) return true;
        lone.push(p);
      } else if (p.rule !== 'anomaly') return true;
    }
    // attempts: [time, pair] for the first attempt on each pair, and the latest one when it came
    // back to the pair after the retransmissions were over
    const attempts: [number, number][] = [];
    lone.forEach((p, i) => {
      attempts.push([p.at, i]);
      const pairs = this.entities.get(p.src)?.pairs;
      const slot = pairs ? pairs.find(p.dst as string, p.port as number) : -1;
      const last = slot >= 0 ? (pairs as PairTable).get(slot, PAIR_LAST) : p.at;
      if (last - p.at > cfg.retransmitMs) attempts.push([last, i]);
    });
    attempts.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    const n = cfg.attempts;
    for (let i = 1; i < attempts.length; i++) {
      const [at, pair] = attempts[i] as [number, number];
      const prev = attempts[i - 1] as [number, number];
      if (pair !== prev[1] && at - prev[0] <= cfg.burstMs) return true;
      if (i + 1 < n) continue;
      const first = attempts[i - n + 1] as [number, number];
      if (at - first[0] > cfg.windowMs) continue;
      for (let j = i - n + 1; j < i; j++) if ((attempts[j] as [number, number])[1] !== pair) return true;
    }
    for (const p of lone) {
      let w = 0;
      for (const q of pending) if (q.rule === 'anomaly' && Math.abs(q.at - p.at) <= cfg.windowMs) w += q.weight;
      if (w > 0 && w >= cfg.anomalyWeight) return true;
    }
    return false;
  }

  private tierZero(key: string | undefined): boolean {
    const s = key === undefined ? undefined : this.entities.get(key);
    return s !== undefined && this.config.corroboration.targetRoles.includes(this.roles.effective(s.role, s.flags).role);
  }

  /** A remembered contribution becomes evidence; an attempt becomes a hop with its exact count. */
  private replayRecord(c: Campaign, root: EntityState, p: rules.Contribution, t: number): void {
    this.addRecord(c, p, p.count);
    const src = this.entities.get(p.src);
    if (p.rule === 'admin_port' && src && p.dst !== undefined && p.port !== undefined) {
      const slot = src.pairs ? src.pairs.find(p.dst, p.port) : -1;
      const attempts = slot >= 0 ? (src.pairs as PairTable).get(slot, PAIR_COUNT) : p.count;
      const edgeCap = this.config.incident.maxEdges;
      c.touchEdge(p.src, p.dst, p.port, p.service as ServiceClass, true, p.at, edgeCap, attempts);
      if (attempts > p.count) c.repeat(p.src, p.dst, p.port, p.at, attempts - p.count);
      this.note(c, src, src === root ? 'root' : 'pivot');
      const dst = this.entities.get(p.dst);
      if (dst) this.note(c, dst, 'target');
    }
    if (p.rule === 'admin_session' && src && p.dst !== undefined && p.port !== undefined) {
      c.touchEdge(p.src, p.dst, p.port, p.service as ServiceClass, false, p.at, this.config.incident.maxEdges, p.count);
      this.note(c, src, src === root ? 'root' : 'pivot');
      this.noteKey(c, p.dst, 'target');
    }
    if (p.rule === 'fan_out' && src?.pairs) this.backfillFanOut(c, root, src, src.pairs, p.at - this.config.windows.fanOutMs, t);
    if (p.rule === 'target_role' && p.dst !== undefined) this.noteKey(c, p.dst, 'target');
  }

  private noteKey(c: Campaign, key: string, position: Position): void {
    const s = this.entities.get(key);
    if (s) this.note(c, s, position);
  }

  /** Evidence is rendered (reason, techniques) only when it is new to the incident. */
  private addRecord(c: Campaign, p: rules.Contribution, count: number): void {
    if (c.foldEvidence(p, count, p.at)) return;
    const { reason, techniques } = rules.describe(this, p);
    const input = { rule: p.rule, weight: p.weight, src: p.src, reason, ...optional(p) };
    c.addEvidence(input, p.at, this.config.incident.maxEvidence, count);
    c.addTechniques(techniques);
  }

  /** An open incident takes the contributions as evidence, the attempt as a hop, and publishes. */
  private extend(
    root: EntityState,
    c: Campaign,
    found: readonly rules.Contribution[],
    t: number,
    flow?: FlowContext,
  ): readonly Change[] {
    for (const x of found) {
      if (x.rule === 'denied_other' && x.weight === 0) continue; // part of a scan: the hop says it
      this.addRecord(c, x, 1);
      if (x.rule === 'anomaly') this.annotate(c, root, x.src, x.anomaly as string);
      if (x.rule === 'target_role' && x.dst !== undefined) this.noteKey(c, x.dst, 'target');
    }
    if (flow?.fanOutStarted && flow.pairs) this.backfillFanOut(c, root, flow.src, flow.pairs, flow.pairs.fanOutStart, t, flow);
    if (flow && (isLateral(flow.service) || flow.fanOut || c.findEdge(flow.src.key, flow.dst.key))) {
      c.touchEdge(flow.src.key, flow.dst.key, flow.port, flow.service, flow.denied, t, this.config.incident.maxEdges);
      this.note(c, flow.src, flow.src === root ? 'root' : 'pivot');
      this.note(c, flow.dst, 'target');
    }
    c.seen(t);
    return this.publish(root, c);
  }

  private annotate(c: Campaign, root: EntityState, key: string, kind: string): void {
    c.annotateAnomaly(key, kind);
    const s = this.entities.get(key);
    if (s && !c.d.entities.some((e) => e.key === key)) this.note(c, s, s === root ? 'root' : 'target');
  }

  /** When fan-out is recognized, the ordinary attempts of its window join the path, oldest first. */
  private backfillFanOut(
    c: Campaign,
    root: EntityState,
    src: EntityState,
    pairs: PairTable,
    from: number,
    to: number,
    current?: FlowContext,
  ): void {
    const slots: number[] = [];
    for (let i = 0; i < pairs.dst.length; i++) {
      const first = pairs.get(i, PAIR_FIRST);
      const dstKey = pairs.dst[i] as string;
      const port = pairs.get(i, PAIR_PORT);
      if (first < from || first > to || (current && dstKey === current.dst.key && port === current.port)) continue;
      // lateral attempts are hops already; only ordinary ones are missing
      if (isLateral(classifyPort(port, false)) || c.findEdge(src.key, dstKey)) continue;
      slots.push(i);
    }
    slots.sort((a, b) => pairs.get(a, PAIR_FIRST) - pairs.get(b, PAIR_FIRST) || a - b);
    for (const i of slots) {
      const dstKey = pairs.dst[i] as string;
      const port = pairs.get(i, PAIR_PORT);
      const edgeCap = this.config.incident.maxEdges;
      c.touchEdge(src.key, dstKey, port, 'other', true, pairs.get(i, PAIR_FIRST), edgeCap, pairs.get(i, PAIR_COUNT));
      const dst = this.entities.get(dstKey);
      if (dst) this.note(c, dst, 'target');
    }
    this.note(c, src, src === root ? 'root' : 'pivot');
  }

  private note(c: Campaign, s: EntityState, position: Position): void {
    const role = this.roles.effective(s.role, s.flags);
    const entity = { key: s.key, kind: s.kind, role: role.role, roleSource: role.source, ...identity(s) };
    c.noteEntity(entity, position, this.config.incident.maxEntities);
  }

  /** Publish a material update of an open incident. */
  private publish(root: EntityState, c: Campaign): readonly Change[] {
    const th = this.config.thresholds;
    if (root.risk > c.d.score) c.d.score = root.risk;
    const signature = c.signature(th);
    if (signature === c.d.emitted) return EMPTY;
    const reasons = materialChanges(c.d.emitted, signature);
    c.d.emitted = signature;
    c.d.version += 1;
    return [{ type: 'incident_updated', incident: c.view(this.config), reasons }];
  }

  /** The deterministic id; a second campaign in the same bucket (after a close) gets a suffix. */
  private freshId(root: string, start: number): string {
    const base = incidentId(root, start, this.config.incident.idBucketMs);
    if (!this.incidents.has(base)) return base;
    let n = 2;
    while (this.incidents.has(`${base}-${n}`)) n += 1;
    return `${base}-${n}`;
  }

  /** Incidents idle past `idleMs` go quiet, idle entities expire, quiet incidents are forgotten. */
  private sweep(now: number): AdvanceResult {
    this.lastSweep = now;
    const quieted: string[] = [];
    const { propagationMs } = this.config.windows;
    for (const s of this.entities.values()) {
      if (!s.hasSuspicion) continue;
      const c = s.campaign;
      if (this.currentCampaign(s, now) === null && c !== null) quieted.push(c.d.id as string);
      if (s.sus.upstream !== null && now - s.sus.upstreamAt > propagationMs) s.unlink();
    }
    const expired = this.entities.expire(now);
    this.handoffs.expire(now, Math.max(propagationMs, this.config.windows.attemptedMs));
    this.directory.expire(now);
    const forgotten: string[] = [];
    const { idleMs, retentionMs } = this.config.incident;
    for (const [id, c] of this.incidents) {
      if (!c.live && now - c.d.lastSeen > idleMs + retentionMs) {
        this.incidents.delete(id);
        forgotten.push(id);
        this.onForgotten?.(c.view(this.config));
      }
    }
    this.stats.expired += expired;
    return { quieted, expired, forgotten };
  }
}

function optional(p: rules.Contribution): Partial<Pick<rules.Contribution, 'dst' | 'port' | 'service' | 'anomaly'>> {
  const out: Partial<Pick<rules.Contribution, 'dst' | 'port' | 'service' | 'anomaly'>> = {};
  if (p.dst !== undefined) out.dst = p.dst;
  if (p.port !== undefined) out.port = p.port;
  if (p.service !== undefined) out.service = p.service;
  if (p.anomaly !== undefined) out.anomaly = p.anomaly;
  return out;
}

function identity(s: EntityState): { name?: string; ip?: string } {
  const out: { name?: string; ip?: string } = {};
  if (s.name !== undefined) out.name = s.name;
  if (s.ip !== undefined) out.ip = s.ip;
  return out;
}

function party(s: EntityState): { key: string; name?: string; ip?: string } {
  return { key: s.key, ...identity(s) };
}

function concat(a: readonly Change[], b: readonly Change[]): readonly Change[] {
  if (a.length === 0) return b;
  if (b.length === 0) return a;
  return [...a, ...b];
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function toPredicate(select: EntitySelection | undefined): (key: string) => boolean {
  if (select === undefined) return () => true;
  if (typeof select === 'function') return select;
  const keys = new Set(select);
  return (key) => keys.has(key);
}

/** Flows that never say anything about lateral movement (name resolution, broadcast, loopback). */
function isNoise(f: Flow): boolean {
  return NOISE_PORTS.has(f.dstPort) || isBroadcastOrMulticast(f.dst.ip) || isLoopback(f.dst.ip);
}
