import type { AnomalyKind } from '../events';
import { flowCluster, type Activity, type AnomalyActivity, type FlowActivity } from './activity';
import { connect } from './background';
import { ATTACK_KINDS, AttackSpec, type AttackKind, type AttackPace, type ResolvedAttackSpec, type ScenarioConfig } from './config';
import { KIND_TECHNIQUES, entityRef, type AttackTruth, type HopTruth } from './groundtruth';
import { permits } from './policy';
import { Rng } from './random';
import { DYN_RPC, WIN, isAppPod, type Enterprise, type Entity } from './topology';

/**
 * Injected lateral movement with its ground truth. An attack is a root entity (patient zero) that
 * attempts remote administration on victims, fast (minutes) or slow (a few attempts an hour for
 * many hours), single-hop or propagating (A→B, then B→C from the foothold), with or without
 * corroborating anomalies on the attacker. Whether each attempt is denied follows from the
 * enterprise policy, exactly as for benign traffic.
 */

export interface AttackPlan {
  truth: AttackTruth;
  /** Sorted by time. */
  activities: Activity[];
  /** Touches a Calico-observed entity (its source runs one flow-log interval ahead). */
  ahead: boolean;
}

/** A port step; `dyn` = the dynamic RPC port the endpoint mapper hands out (only after 135 answered). */
type Step = number | 'dyn';

const SEQUENCES: Record<AttackKind, Step[]> = {
  smb: [445, 135, 'dyn'],
  wmi: [135, 'dyn'],
  winrm: [5985, 5986],
  rdp: [3389],
  ssh: [22],
  kubelet: [10250, 10255],
  etcd: [2379, 2380],
  pod_pivot: [],
  discovery: [],
  dc: [135, 'dyn', 445, 5985, 3389, 5986],
};

const PROPAGATES = new Set<AttackKind>(['smb', 'wmi', 'winrm', 'rdp', 'ssh', 'pod_pivot', 'dc']);
/** Kinds an attacker with valid credentials can run over permitted flows only. */
const CREDENTIALED = new Set<AttackKind>(['smb', 'wmi', 'winrm', 'rdp', 'ssh', 'dc']);
const DISCOVERY_PORTS = [445, 139, 135, 3389, 5985, 22, 80, 443, 1433, 3306, 5432, 8080, 21, 23, 5900];
const POD_PROBE_PORTS = [5432, 6379, 3306, 9200, 27017, 8080, 8443, 50051];

const MIN = 60_000;
const HOUR = 3_600_000;

/** Spread the configured attacks over the scenario and plan each one. */
export function planAttacks(config: ScenarioConfig, ent: Enterprise, reserved: ReadonlySet<Entity>): AttackPlan[] {
  const rng = Rng.derive(config.seed, 'attacks');
  const specs: ResolvedAttackSpec[] = [...config.attacks.map((s) => AttackSpec.parse(s))];
  for (const kind of ATTACK_KINDS) {
    const n = config.attackCounts[kind] ?? 0;
    for (let i = 0; i < n; i++) {
      const hops = PROPAGATES.has(kind) ? rng.weighted([[1, 7], [2, 2], [3, 1]] as const) : 1;
      specs.push({ kind, hops, pace: rng.chance(0.5) ? 'fast' : 'slow', anomalies: rng.chance(0.5), access: 'probing' });
    }
  }
  // Roots are chosen for every attack first, and no attack's victim is another attack's root or
  // pivot: each attack is then unambiguous (an independent attack whose root was the victim of
  // another within hours would equally read as that attack's propagation).
  const claimed = new Set<Entity>(reserved);
  const victimsSoFar = new Set<Entity>();
  const avail = config.duration - config.warmup;
  let podAttacks = 0;
  const planners = specs.map((spec, i) => {
    const r = Rng.derive(config.seed, `attack:${i}`);
    const pace: AttackPace = spec.pace ?? (r.chance(0.5) ? 'fast' : 'slow');
    const anomalies = (spec.anomalies ?? r.chance(0.5)) && config.formats.cordon;
    const id = `atk-${String(i + 1).padStart(3, '0')}-${spec.kind}`;
    const planner = new AttackPlanner(r, ent, config, claimed, victimsSoFar, id, pace, anomalies, podAttacks);
    const kind = planner.choose(spec.kind, spec.hops, spec.access);
    if (kind && planner.rootKind === 'pod') podAttacks++;
    return { spec, planner, kind, r };
  });
  const plans: AttackPlan[] = [];
  // discovery sweeps last, so that they avoid every other attack's hosts
  const order = planners.map((_, i) => i).sort((a, b) => Number(planners[a]!.kind === 'discovery') - Number(planners[b]!.kind === 'discovery') || a - b);
  const byIndex = new Map<number, AttackPlan>();
  for (const i of order) {
    const { spec, planner, kind, r } = planners[i]!;
    if (!kind) continue;
    // slot i of n over the attack window, jittered inside the slot; the planner makes slow ones fit
    const slot = avail / Math.max(1, specs.length);
    const startOffset = spec.at ?? config.warmup + slot * i + r.real(0, slot * 0.5);
    const plan = planner.plan(kind, spec.hops, config.start + Math.floor(startOffset), spec.at !== undefined);
    if (plan) byIndex.set(i, plan);
  }
  for (let i = 0; i < planners.length; i++) if (byIndex.has(i)) plans.push(byIndex.get(i)!);
  return plans;
}

interface Cursor {
  t: number;
}

class AttackPlanner {
  private readonly acts: Activity[] = [];
  private readonly edges = new Map<string, HopTruth>();
  private readonly victims = new Map<string, Entity>();
  private readonly compromised: Entity[] = [];
  private readonly end: number;
  private notes: string[] = [];
  private readonly slowSpan: number;

  constructor(
    private readonly rng: Rng,
    private readonly ent: Enterprise,
    private readonly config: ScenarioConfig,
    private readonly claimed: Set<Entity>,
    private readonly victimsSoFar: Set<Entity>,
    private readonly id: string,
    private readonly pace: AttackPace,
    private readonly anomalies: boolean,
    /** Pod attacks planned so far: they alternate between the clusters (Hubble, Calico). */
    private readonly podOrdinal: number,
  ) {
    this.end = config.start + config.duration;
    this.slowSpan = Math.min(rng.real(6, 10) * HOUR, (config.duration - config.warmup) * 0.7);
  }

  private root: Entity | undefined;

  get rootKind(): Entity['role'] | undefined {
    return this.root?.role;
  }

  private pivots: Entity[] = [];
  /** Only what the policy permits from the attacker's host is tried: every flow is permitted. */
  private credentialed = false;

  /** Whether the attacker tries this step at all (a credentialed one skips what would be denied). */
  private tries(src: Entity, dst: Entity, step: Step): boolean {
    return !this.credentialed || permits(src, dst, step === 'dyn' ? this.dynPort(dst) : step, 'tcp');
  }

  /** Settle the kind (a feasible one), claim the root and the footholds it will pivot through. */
  choose(requested: AttackKind, hops: number, access: 'probing' | 'credentialed' = 'probing'): AttackKind | undefined {
    let kind = requested;
    if (!this.feasible(kind)) {
      const fallback = ATTACK_KINDS.find((k) => this.feasible(k));
      if (!fallback) return undefined;
      this.notes.push(`${requested} is not possible in this topology; planned as ${fallback}`);
      kind = fallback;
    }
    if (access === 'credentialed') {
      this.credentialed = CREDENTIALED.has(kind);
      if (!this.credentialed) this.notes.push(`${kind} cannot run on credentials alone; planned as probing`);
    }
    this.root = this.pickRoot(kind);
    if (!this.root) return undefined;
    this.claimed.add(this.root);
    let src = this.root;
    for (let h = 1; h < (PROPAGATES.has(kind) ? hops : 1); h++) {
      const pivot = this.pickPivot(kind, src);
      if (!pivot) break;
      this.claimed.add(pivot);
      this.pivots.push(pivot);
      src = pivot;
    }
    return kind;
  }

  plan(kind: AttackKind, requestedHops: number, wanted: number, pinned: boolean): AttackPlan | undefined {
    const root = this.root;
    if (!root) return undefined;
    // the whole campaign must fit between the warm-up and the end of the scenario
    const need = (this.pace === 'slow' ? this.slowSpan * 1.1 : 45 * MIN) + 15 * MIN;
    const earliest = this.config.start + this.config.warmup;
    const t0 = pinned ? wanted : Math.max(earliest, Math.min(wanted, this.end - need));
    let hops = PROPAGATES.has(kind) ? requestedHops : 1;
    if (hops !== requestedHops) this.notes.push(`${kind} does not propagate; planned single-hop`);
    this.compromised.push(root);
    const cur: Cursor = { t: t0 };
    let src = root;
    // a slow campaign spreads its hops over its span
    const hopSpan = this.pace === 'slow' ? this.slowSpan / hops : 0;
    for (let h = 0; h < hops; h++) {
      const last = h === hops - 1;
      const hopStart = cur.t;
      this.anomaliesFor(src, cur.t);
      if (!last) {
        const pivot = this.pivots[h];
        if (!pivot) {
          this.notes.push(`no foothold reachable from ${src.name}; stopped after ${h + 1} hop(s)`);
          this.finalHop(kind, src, cur, hopSpan * (hops - h));
          hops = h + 1;
          break;
        }
        this.pivotHop(kind, src, pivot, cur, hopSpan);
        this.compromised.push(pivot);
        // the foothold is used after a pause: minutes (fast) or hours (slow)
        cur.t = Math.max(cur.t, hopStart) + (this.pace === 'fast' ? this.rng.real(2, 8) * MIN : this.rng.real(0.5, 1.5) * HOUR);
        src = pivot;
      } else {
        this.finalHop(kind, src, cur, hopSpan);
      }
    }
    return this.finish(kind, hops, root);
  }

  // ---- who

  private feasible(kind: AttackKind): boolean {
    const e = this.ent;
    const freeWs = e.workstations.some((w) => !this.claimed.has(w));
    switch (kind) {
      case 'smb':
      case 'wmi':
      case 'winrm':
      case 'rdp':
      case 'discovery':
        return freeWs && e.workstations.length + e.windowsServers.length >= 3 && e.workstations[0]?.observer === 'wfp';
      case 'dc':
        return freeWs && e.dcs.length > 0 && e.dcs[0]!.observer !== 'none';
      case 'ssh':
        return e.linuxServers.filter((s) => !this.claimed.has(s)).length >= 1 && e.linuxServers.length >= 3;
      case 'kubelet':
      case 'etcd':
      case 'pod_pivot':
        return this.ent.pods.some((p) => isAppPod(p) && !this.claimed.has(p));
    }
  }

  private pickRoot(kind: AttackKind): Entity | undefined {
    const free = (list: readonly Entity[]) => list.filter((e) => !this.claimed.has(e));
    switch (kind) {
      case 'ssh': {
        const web = free(this.ent.linuxServers.filter((s) => s.serverKind === 'linux-web'));
        return web.length ? this.rng.pick(web) : this.pickOne(free(this.ent.linuxServers));
      }
      case 'kubelet':
      case 'etcd':
      case 'pod_pivot': {
        // alternate clusters so that both Hubble and Calico carry attacks
        const clusters = this.ent.clusters.filter((c) => c.apps.some((a) => a.pods.some((p) => isAppPod(p) && !this.claimed.has(p))));
        if (!clusters.length) return undefined;
        const c = clusters[this.podOrdinal % clusters.length]!;
        const pods = free(c.apps.flatMap((a) => a.pods).filter(isAppPod));
        // a pod with callees makes a natural pivot chain
        const withCalls = pods.filter((p) => p.app!.calls.length > 0);
        return this.pickOne(kind === 'pod_pivot' && withCalls.length ? withCalls : pods);
      }
      default:
        return this.pickOne(free(this.ent.workstations));
    }
  }

  private pickOne(list: readonly Entity[]): Entity | undefined {
    return list.length ? this.rng.pick(list) : undefined;
  }

  private pickPivot(kind: AttackKind, src: Entity): Entity | undefined {
    const ok = (e: Entity) => e !== src && !this.claimed.has(e) && !this.victimsSoFar.has(e);
    if (kind === 'ssh') return this.pickOne(this.ent.linuxServers.filter((s) => ok(s) && permits(src, s, 22, 'tcp')));
    if (kind === 'pod_pivot') return this.pickOne((src.app?.calls ?? []).flatMap((a) => a.pods).filter(ok));
    return this.pickOne(this.ent.windowsServers.filter((s) => ok(s) && [5985, 445, 135].some((p) => permits(src, s, p, 'tcp'))));
  }

  private finalVictims(kind: AttackKind, src: Entity): Entity[] {
    const rng = this.rng;
    const slow = this.pace === 'slow';
    const reachable = (e: Entity) => !this.credentialed || this.sequence(kind, e).some((step) => this.tries(src, e, step));
    const notSelf = (e: Entity) => e !== src && !this.compromised.includes(e) && !this.claimed.has(e) && reachable(e);
    switch (kind) {
      case 'ssh': {
        // the hosts in the server's known_hosts: the other Linux servers, bastions, cluster nodes
        const pool = [...this.ent.linuxServers, ...this.ent.jumps.filter((j) => j.os === 'linux'), ...rng.sample(this.ent.nodes, 3)].filter(notSelf);
        return rng.sample(pool, slow ? rng.int(3, 5) : rng.int(3, 5));
      }
      case 'kubelet':
        return rng.sample(src.cluster!.nodes, slow ? rng.int(3, 5) : rng.int(2, 4));
      case 'etcd':
        return src.cluster!.controlPlane.slice();
      case 'dc':
        return rng.sample(this.ent.dcs, Math.min(this.ent.dcs.length, rng.int(1, 2)));
      case 'pod_pivot': {
        const pool = src.cluster!.apps
          .filter((a) => a !== src.app && a.namespace !== 'kube-system' && a.namespace !== 'monitoring' && !src.app!.calls.includes(a))
          .flatMap((a) => a.pods)
          .filter(notSelf);
        return rng.sample(pool, slow ? rng.int(4, 7) : rng.int(4, 8));
      }
      default: {
        // Windows remote administration: colleagues' workstations and servers
        const fromServer = src.role === 'server';
        const ws = this.ent.workstations.filter(notSelf);
        const srv = this.ent.windowsServers.filter(notSelf);
        const n = slow ? rng.int(3, 5) : rng.int(2, 3);
        const pool = fromServer ? [...srv, ...rng.sample(ws, 2)] : [...rng.sample(ws, n), ...rng.sample(srv, n)];
        return rng.sample(pool, n);
      }
    }
  }

  // ---- what

  private finalHop(kind: AttackKind, src: Entity, cur: Cursor, hopSpan: number): void {
    if (kind === 'discovery') return this.discovery(src, cur);
    const victims = this.finalVictims(kind, src);
    if (kind === 'kubelet' || kind === 'etcd') {
      // the API server first (permitted: the pod's service account), then the node / control plane
      const cp = src.cluster!.controlPlane[0];
      if (cp) this.attempt(src, cp, 6443, cur);
      this.gap(cur, 5_000, 40_000);
    }
    this.campaign(kind, src, victims, cur, hopSpan);
  }

  /** Attempts on every victim, following the kind's port sequence; slow ones keep cycling. */
  private campaign(kind: AttackKind, src: Entity, victims: readonly Entity[], cur: Cursor, span: number): void {
    const rng = this.rng;
    const order: Array<[Entity, Step]> = [];
    for (const v of victims) for (const s of this.sequence(kind, v)) if (this.tries(src, v, s)) order.push([v, s]);
    if (order.length === 0) return;
    if (this.pace === 'fast') {
      let prev: Entity | undefined;
      const epmAnswered = new Set<Entity>();
      for (const [v, step] of order) {
        if (prev && prev !== v) this.gap(cur, 20_000, 120_000);
        prev = v;
        if (step === 'dyn' && !epmAnswered.has(v)) continue;
        const port = step === 'dyn' ? this.dynPort(v) : step;
        const f = this.attempt(src, v, port, cur);
        if (port === 135 && f.allowed) epmAnswered.add(v);
        // a blocked step is retried once by the tool (new source port)
        if (!f.allowed && rng.chance(0.6)) {
          this.gap(cur, 16_000, 30_000);
          this.attempt(src, v, port, cur);
        }
        this.gap(cur, 2_000, 30_000);
      }
      return;
    }
    // slow: 2-4 attempts an hour over the span, cycling through the (victim, port) steps
    const end = Math.min(this.end - MIN, cur.t + span);
    const perHour = rng.real(2, 4);
    let i = 0;
    const epmAnswered = new Set<Entity>();
    while (cur.t < end) {
      const [v, step] = order[i % order.length]!;
      i++;
      if (step === 'dyn' && !epmAnswered.has(v)) continue;
      const port = step === 'dyn' ? this.dynPort(v) : step;
      const f = this.attempt(src, v, port, cur);
      if (port === 135 && f.allowed) {
        epmAnswered.add(v);
        // the RPC call follows the endpoint mapper within a second
        this.gap(cur, 100, 1500);
        continue;
      }
      cur.t += (HOUR / perHour) * rng.real(0.5, 1.5);
    }
  }

  private pivotHop(kind: AttackKind, src: Entity, pivot: Entity, cur: Cursor, hopSpan: number): void {
    // first a couple of denied tries elsewhere, then the foothold
    // (in a cluster the attacker maps the services around it first: a handful of probes)
    const decoys = this.finalVictims(kind, src).filter((v) => v !== pivot).slice(0, kind === 'pod_pivot' ? this.rng.int(3, 5) : this.rng.int(1, 2));
    const spanShare = this.pace === 'slow' ? hopSpan * 0.7 : 0;
    this.campaign(kind, src, decoys, cur, spanShare);
    this.gap(cur, 10_000, 60_000);
    let gained = false;
    const epm = new Set<Entity>();
    const all: Step[] = kind === 'pod_pivot' ? [pivot.app!.port] : kind === 'ssh' ? [22] : [...this.sequence(kind, pivot), 5985, 445];
    const steps = all.filter((step) => this.tries(src, pivot, step));
    for (const step of steps) {
      if (step === 'dyn' && !epm.has(pivot)) continue;
      const port = step === 'dyn' ? this.dynPort(pivot) : step;
      const f = this.attempt(src, pivot, port, cur, true);
      if (port === 135 && f.allowed) epm.add(pivot);
      if (f.allowed && port !== 135) gained = true;
      this.gap(cur, 500, 8_000);
      if (gained && step !== 135) break;
    }
    if (!gained) this.notes.push(`foothold on ${pivot.name} was not permitted by policy`);
  }

  private discovery(src: Entity, cur: Cursor): void {
    const rng = this.rng;
    const free = (e: Entity) => e !== src && !this.claimed.has(e);
    const sameSubnet = src.subnet ? src.subnet.members.filter(free) : [];
    const servers = [...this.ent.servers, ...this.ent.dcs].filter(free);
    const hosts = rng.sample([...rng.sample(sameSubnet, 30), ...rng.sample(servers, 20)], this.pace === 'fast' ? rng.int(20, 50) : rng.int(25, 40));
    const ports = rng.sample(DISCOVERY_PORTS, rng.int(6, 12));
    const probes: Array<[Entity, number]> = [];
    for (const h of hosts) for (const p of ports) probes.push([h, p]);
    const shuffled = rng.sample(probes, probes.length);
    if (this.pace === 'fast') {
      const perSecond = rng.real(8, 40);
      for (const [h, p] of shuffled) {
        this.attempt(src, h, p, cur, false, rng.int(1, 2));
        cur.t += rng.exp(1000 / perSecond);
      }
    } else {
      const end = Math.min(this.end - MIN, cur.t + this.slowSpan);
      const perHour = rng.real(20, 40);
      for (const [h, p] of shuffled) {
        if (cur.t >= end) break;
        this.attempt(src, h, p, cur, false, rng.int(1, 2));
        cur.t += rng.exp(HOUR / perHour);
      }
    }
  }

  private sequence(kind: AttackKind, victim: Entity): Step[] {
    if (kind === 'pod_pivot') {
      const own = victim.app!.port;
      const extra = this.rng.sample(POD_PROBE_PORTS.filter((p) => p !== own), this.rng.int(0, 2));
      return [own, ...extra];
    }
    return SEQUENCES[kind];
  }

  private dynPort(v: Entity): number {
    // stable per victim: the endpoint mapper hands out the service's registered port
    return DYN_RPC.lo + ((v.idx * 7919 + 1031) % 16000);
  }

  private gap(cur: Cursor, lo: number, hi: number): void {
    cur.t += this.rng.int(lo, hi);
  }

  private attempt(src: Entity, dst: Entity, port: number, cur: Cursor, foothold = false, tries?: number): FlowActivity {
    const image = src.os !== 'windows' ? undefined : port === 445 || port === 139 ? WIN.system : port === 3389 ? WIN.mstsc : port === 5985 || port === 5986 ? WIN.powershell : port === 135 ? WIN.wmic : this.implant(src);
    const f = connect(this.rng, Math.floor(cur.t), src, dst, port, 'attack', { image, tries, attackId: this.id });
    this.acts.push(f);
    if (dst.role !== 'node' || port !== 6443) {
      this.victims.set(dst.key, dst);
      this.victimsSoFar.add(dst);
    }
    const key = `${src.key}>${dst.key}`;
    let e = this.edges.get(key);
    if (!e) {
      e = { from: entityRef(src), to: entityRef(dst), ports: [], denied: 0, allowed: 0, first: f.t, last: f.t, foothold: false };
      this.edges.set(key, e);
    }
    if (!e.ports.includes(port)) e.ports.push(port);
    if (f.allowed) e.allowed++;
    else e.denied++;
    e.last = f.t + (f.allowed ? 0 : 15_000);
    if (foothold && f.allowed) e.foothold = true;
    return f;
  }

  private implantName?: string;
  private implant(src: Entity): string {
    this.implantName ??= `\\device\\harddiskvolume2\\users\\${src.short.toLowerCase()}-user\\appdata\\local\\temp\\${this.rng.base62(8).toLowerCase()}.exe`;
    return this.implantName;
  }

  /** Corroborating detections on a hop source, shortly after its first attempts. */
  private anomaliesFor(src: Entity, t: number): void {
    if (!this.anomalies) return;
    const rng = this.rng;
    const pod = src.role === 'pod';
    const add = (kind: AnomalyKind, at: number, score: number, detector: string, detail: Record<string, unknown>) => {
      const a: AnomalyActivity = { type: 'anomaly', t: Math.floor(at), entity: src, kind, score, detector, detail, tag: 'attack', attackId: this.id };
      this.acts.push(a);
    };
    add('credential_use', t + rng.int(3_000, 40_000), rng.real(0.75, 0.95), pod ? 'k8s-audit' : src.os === 'windows' ? 'idp:ad-logon' : 'linux-auth', {
      account: pod ? `system:serviceaccount:${src.namespace}:${src.app?.serviceAccount}` : rng.pick(['svc-backup', 'adm-jdoe', 'helpdesk02']),
      logonType: pod ? 'token' : 3,
    });
    add('new_edge', t + rng.int(20_000, 90_000), rng.real(0.55, 0.8), 'flow-baseline', { note: 'first contact with this peer in 30 days' });
    add('rare_port', t + rng.int(30_000, 120_000), rng.real(0.5, 0.85), 'flow-baseline', { note: 'remote administration port never used by this entity' });
  }

  private finish(kind: AttackKind, hops: number, root: Entity): AttackPlan | undefined {
    const flows = this.acts.filter((a): a is FlowActivity => a.type === 'flow');
    if (flows.length === 0) return undefined;
    // stable time order
    const acts = this.acts.map((a, i) => [a, i] as const).sort((x, y) => x[0].t - y[0].t || x[1] - y[1]).map(([a]) => a);
    const start = Math.min(...acts.map((a) => a.t));
    const end = Math.max(...flows.map((f) => f.t + (f.allowed ? 0 : 15_000)), ...acts.map((a) => a.t));
    const observers = new Set<string>();
    let ahead = false;
    for (const f of flows) {
      const cni = flowCluster(f);
      if (cni) observers.add(cni);
      else {
        // host traffic: the destination's own log (not a node: nodes are seen only by the CNI, for pods)
        if (f.dst.role !== 'node') observers.add(f.dst.observer);
        if (f.src.observer === 'zeek') observers.add('zeek');
      }
      if (cni === 'calico') ahead = true;
      if (f.src.os === 'windows' && f.src.observer === 'wfp' && this.config.formats.allowedFlows) observers.add('wfp');
    }
    if (acts.some((a) => a.type === 'anomaly')) observers.add('cordon');
    const truth: AttackTruth = {
      id: this.id,
      kind,
      pace: this.pace,
      hops,
      anomalies: this.anomalies,
      root: entityRef(root),
      compromised: this.compromised.map(entityRef),
      victims: [...this.victims.values()].filter((v) => v !== root).map(entityRef),
      path: [...this.edges.values()],
      start,
      end,
      techniques: [...KIND_TECHNIQUES[kind]],
      deniedAttempts: flows.filter((f) => !f.allowed).length,
      allowedAttempts: flows.filter((f) => f.allowed).length,
      formats: [...observers].filter((o) => o !== 'none').sort(),
    };
    if (this.notes.length) truth.note = this.notes.join('; ');
    return { truth, activities: acts, ahead };
  }
}
