import type { Format } from '../normalize/normalizer';
import { flowCluster, type Activity, type AnomalyActivity, type FlowActivity, type Tag } from './activity';
import { planAttacks, type AttackPlan } from './attacks';
import { backgroundSources, planPolicyGaps, type PolicyGap } from './background';
import { ScenarioConfig, type ScenarioConfigInput } from './config';
import { CalicoAggregator } from './formats/calico';
import { CordonWriter } from './formats/cordon';
import { HubbleWriter } from './formats/hubble';
import { WfpWriter } from './formats/wfp';
import { ZeekWriter, zeekState, type ZeekState } from './formats/zeek';
import { entityRef, type GroundTruth, type SelectorJson } from './groundtruth';
import { Rng } from './random';
import { MinHeap, SourceMerge, fromSorted, type ActivitySource } from './source';
import { DYN_RPC, WIN, buildEnterprise, type Enterprise, type Entity } from './topology';

/**
 * A scenario: the enterprise, its background and its attacks, streamed as raw vendor records in
 * event-time order, with the ground truth known up front. Deterministic from the seed; streaming
 * (sources are lazy generators merged by time, so memory does not grow with the record count).
 */

/** What the normalizer should make of a record (used to check the generator against it). */
export type Expect = 'denied' | 'allowed' | 'anomaly' | 'skip';

export interface SimRecord {
  format: Format;
  /** The exact raw record line. */
  text: string;
  /** Kafka key: the source entity. */
  key: string;
  /** Event time (epoch ms) as the normalizer will read it; use it as the Kafka message timestamp. */
  time: number;
  expect: Expect;
  tag: Tag;
  attackId?: string;
}

export interface ScenarioStats {
  records: number;
  byFormat: Record<string, number>;
  expected: Record<string, Record<string, number>>;
  byTag: Record<string, number>;
}

export function emptyStats(): ScenarioStats {
  return { records: 0, byFormat: {}, expected: {}, byTag: {} };
}

/** A record due at `t`, rendered when it is emitted (fixed shape: one hidden class). */
class Pending {
  seq = 0;
  host: Entity | undefined = undefined;
  inbound = false;
  zstate: ZeekState | undefined = undefined;
  text: string | undefined = undefined;
  anomaly: AnomalyActivity | undefined = undefined;

  constructor(
    readonly t: number,
    readonly fmt: Format,
    readonly key: string,
    readonly expect: Expect,
    readonly tag: Tag,
    readonly attackId: string | undefined,
    readonly flow: FlowActivity | undefined,
  ) {}
}

/** SYN retransmission offsets (ms) as the WFP recordings show them: 0, +1, +3, +7, +15 s. */
const RETRY_OFFSETS = [0, 1000, 3000, 7000, 15000];

export class Scenario {
  readonly config: ScenarioConfig;
  readonly enterprise: Enterprise;
  readonly truth: GroundTruth;
  private readonly attacks: AttackPlan[];
  private readonly gaps: PolicyGap[];

  constructor(input: ScenarioConfigInput | ScenarioConfig) {
    this.config = ScenarioConfig.parse(input);
    this.enterprise = buildEnterprise(this.config);
    this.gaps = planPolicyGaps(this.config, this.enterprise);
    this.attacks = planAttacks(this.config, this.enterprise, new Set(this.gaps.map((g) => g.src)));
    this.truth = this.groundTruth();
  }

  /** The records, in event-time order. Each call replays the scenario from its seed. */
  *records(stats: ScenarioStats = emptyStats()): Generator<SimRecord> {
    const cfg = this.config;
    const ent = this.enterprise;
    const sources: ActivitySource[] = [
      ...backgroundSources(cfg, ent, this.gaps),
      ...this.attacks.map((p) => fromSorted(p.truth.id, p.ahead, p.activities)),
    ];
    const main = new SourceMerge(sources.filter((s) => !s.ahead));
    const ahead = new SourceMerge(sources.filter((s) => s.ahead));
    const interval = cfg.formats.calicoInterval;
    const calico = new CalicoAggregator(interval);
    const expander = new Expander(cfg, ent);
    const pending = expander.pending;
    const max = cfg.maxRecords ?? Infinity;

    for (;;) {
      const tm = main.time();
      const ta = ahead.time();
      const bucket = ta === Infinity ? Infinity : Math.floor(ta / interval) * interval;
      const watermark = Math.min(tm, bucket);
      // everything due by the watermark can go: nothing later can produce a record before it
      while (pending.size > 0 && pending.peek()!.t <= watermark) {
        const rec = expander.render(pending.pop()!);
        if (!rec) continue;
        count(stats, rec);
        yield rec;
        if (stats.records >= max) return;
      }
      if (watermark === Infinity) break;
      if (bucket <= tm) {
        // run the ahead sources through one flush interval; Calico writes the interval's
        // aggregates with start_time = the interval start, which is their event time
        const until = bucket + interval;
        while (ahead.time() < until) {
          const a = ahead.take()!;
          if (a.type === 'flow' && expander.calicoObserved(a)) calico.add(a, a.t);
          else expander.expand(a);
        }
        for (const r of calico.flush(until)) {
          if (!r.denied && !cfg.formats.allowedFlows) continue;
          const p = new Pending(bucket, 'calico', r.key, r.denied ? 'denied' : 'skip', r.tag, r.attackId, undefined);
          p.text = r.text;
          expander.push(p);
        }
        continue;
      }
      const a = main.take()!;
      if (a.type === 'flow' && expander.calicoObserved(a)) {
        throw new Error(`source produced a Calico-observed flow without running ahead (${a.src.key} -> ${a.dst.key})`);
      }
      expander.expand(a);
    }
  }

  /** The records as an async stream, yielding to the event loop between batches. */
  async *stream(stats: ScenarioStats = emptyStats(), batch = 2048): AsyncGenerator<SimRecord> {
    let n = 0;
    for (const rec of this.records(stats)) {
      yield rec;
      if (++n % batch === 0) await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  private groundTruth(): GroundTruth {
    const ent = this.enterprise;
    const allowlisted = [
      ...ent.scanners.map((e) => ({ entity: entityRef(e), purpose: 'authorised vulnerability scanner' })),
      ...ent.monitors.map((e) => ({ entity: entityRef(e), purpose: 'monitoring poller' })),
      ...ent.clusters.flatMap((c) => (c.prometheus?.pods ?? []).map((e) => ({ entity: entityRef(e), purpose: `Prometheus of cluster ${c.name}` }))),
    ];
    return {
      scenario: this.config.name,
      seed: this.config.seed,
      start: this.config.start,
      end: this.config.start + this.config.duration,
      attacks: this.attacks.map((p) => p.truth),
      policyGaps: this.gaps.map((g) => ({ src: entityRef(g.src), dst: entityRef(g.dst), port: g.port, proto: g.proto, why: g.why })),
      allowlisted,
      engineConfig: engineConfigFor(ent),
    };
  }
}

/** The allowlist and role inventory the correlation engine should be configured with. */
export function engineConfigFor(ent: Enterprise): GroundTruth['engineConfig'] {
  const allowlist: SelectorJson[] = [
    ...[...ent.scanners, ...ent.monitors].map((e) => ({ cidr: `${e.ip}/32` })),
    ...(ent.clusters.some((c) => c.prometheus) ? [{ namespace: 'monitoring', labels: { 'app.kubernetes.io/name': 'prometheus' } }] : []),
  ];
  const inventory: Array<{ selector: SelectorJson; role: string }> = [
    ...ent.dcs.map((d) => ({ selector: { cidr: `${d.ip}/32` }, role: 'domain-controller' })),
    ...ent.dcs.map((d) => ({ selector: { kind: 'host', name: d.name.toLowerCase() }, role: 'domain-controller' })),
    ...ent.scanners.map((s) => ({ selector: { cidr: `${s.ip}/32` }, role: 'scanner' })),
    ...ent.monitors.map((s) => ({ selector: { cidr: `${s.ip}/32` }, role: 'monitoring' })),
    ...(ent.jumps.length ? [{ selector: { cidr: '10.30.0.0/24' }, role: 'jump-host' }] : []),
    ...(ent.workstations.length ? [{ selector: { cidr: '10.10.0.0/16' }, role: 'workstation' }] : []),
    ...(ent.servers.length ? [{ selector: { cidr: ['10.20.0.0/16', '10.21.0.0/16'] }, role: 'server' }] : []),
    ...(ent.nodes.length ? [{ selector: { cidr: ['10.50.0.0/16', '10.51.0.0/16'] }, role: 'node' }] : []),
  ];
  // The allowlist names Prometheus by label, and labels count only from trusted observers: the
  // enterprise trusts its own cluster sensors.
  const trustedLabelSources = ent.clusters.length ? ['hubble', 'calico'] : [];
  return { allowlist, roles: { inventory, trustedLabelSources } };
}

function count(stats: ScenarioStats, r: SimRecord): void {
  stats.records++;
  stats.byFormat[r.format] = (stats.byFormat[r.format] ?? 0) + 1;
  const e = (stats.expected[r.format] ??= {});
  e[r.expect] = (e[r.expect] ?? 0) + 1;
  stats.byTag[r.tag] = (stats.byTag[r.tag] ?? 0) + 1;
}

/** Turns activities into the records each product would write, and renders them when due. */
class Expander {
  readonly pending = new MinHeap<Pending>((a, b) => a.t < b.t || (a.t === b.t && a.seq < b.seq));
  private seq = 0;
  private readonly rng: Rng;
  private readonly wfp: WfpWriter;
  private readonly zeek: ZeekWriter;
  private readonly hubble: HubbleWriter;
  private readonly cordon: CordonWriter;
  private readonly allowed: boolean;

  constructor(
    private readonly cfg: ScenarioConfig,
    ent: Enterprise,
  ) {
    this.rng = Rng.derive(cfg.seed, 'expand');
    this.wfp = new WfpWriter(ent, cfg.seed, cfg.formats.windowsUtcOffsetMinutes);
    this.zeek = new ZeekWriter(cfg.seed, ent.zeekSensor);
    this.hubble = new HubbleWriter(cfg.seed);
    this.cordon = new CordonWriter(cfg.name);
    this.allowed = cfg.formats.allowedFlows;
  }

  push(p: Pending): void {
    if (p.expect === 'allowed' && !this.allowed) return;
    p.seq = this.seq++;
    this.pending.push(p);
  }

  private flowRecord(f: FlowActivity, t: number, fmt: Format, expect: Expect, host?: Entity, inbound = false, zstate?: ZeekState): void {
    if (expect === 'allowed' && !this.allowed) return;
    const p = new Pending(t, fmt, f.src.key, expect, f.tag, f.attackId, f);
    p.host = host;
    p.inbound = inbound;
    p.zstate = zstate;
    this.push(p);
  }

  calicoObserved(f: FlowActivity): boolean {
    return flowCluster(f) === 'calico';
  }

  expand(a: Activity): void {
    if (a.type === 'anomaly') {
      if (!this.cfg.formats.cordon) return;
      const p = new Pending(a.t, 'cordon', a.entity.key, 'anomaly', a.tag, a.attackId, undefined);
      p.anomaly = a;
      this.push(p);
      return;
    }
    const f = a;
    const cni = flowCluster(f);
    if (cni === 'hubble') {
      if (!this.cfg.formats.hubble) return;
      if (f.allowed) this.flowRecord(f, f.t, 'hubble', 'allowed');
      else for (let i = 0; i < f.tries; i++) this.flowRecord(f, f.t + RETRY_OFFSETS[Math.min(i, 4)]!, 'hubble', 'denied');
      return;
    }
    if (cni === 'calico') return; // aggregated by the caller
    const src = f.src;
    const dst = f.dst;
    const wfp = this.cfg.formats.wfp;
    const zeek = this.cfg.formats.zeek;
    // the source host logs its own outbound connection (permitted: host firewalls allow outbound)
    if (wfp && src.observer === 'wfp') this.flowRecord(f, f.t, 'wfp', 'allowed', src, false);
    if (dst.role === 'broadcast') {
      if (wfp) for (const r of f.receivers ?? []) this.flowRecord(f, f.t + this.rng.int(0, 40), 'wfp', 'denied', r, true);
      if (zeek && src.observer === 'zeek') this.flowRecord(f, f.t, 'zeek', 'allowed', undefined, false, 'S0');
      return;
    }
    // the destination host logs the inbound connection or each blocked SYN
    if (wfp && dst.observer === 'wfp') {
      if (f.allowed) this.flowRecord(f, f.t + this.rng.int(0, 3), 'wfp', 'allowed', dst, true);
      else for (let i = 0; i < f.tries; i++) this.flowRecord(f, f.t + RETRY_OFFSETS[Math.min(i, 4)]! + this.rng.int(0, 3), 'wfp', 'denied', dst, true);
    }
    // the sensor on the Linux server segment sees connections to and from it
    if (zeek && (dst.observer === 'zeek' || src.observer === 'zeek')) {
      const state = zeekState(f.allowed, dst, this.rng);
      if (state === 'REJ') {
        // a Windows client retries a refused connection once; a Linux client gives up
        const n = src.os === 'windows' ? 2 : 1;
        for (let i = 0; i < n; i++) this.flowRecord(f, f.t + i * this.rng.int(450, 600), 'zeek', 'denied', undefined, false, state);
      } else {
        this.flowRecord(f, f.t, 'zeek', state === 'S0' ? 'denied' : 'allowed', undefined, false, state);
      }
    }
  }

  render(p: Pending): SimRecord | undefined {
    let text: string;
    switch (p.fmt) {
      case 'calico':
        text = p.text!;
        break;
      case 'cordon':
        text = this.cordon.record(p.anomaly!);
        break;
      case 'hubble':
        text = this.hubble.record(p.flow!, p.t, p.flow!.srcPort);
        break;
      case 'zeek':
        text = this.zeek.record(p.flow!, p.t, p.zstate!, p.flow!.srcPort);
        break;
      case 'wfp': {
        const f = p.flow!;
        const image = p.inbound ? listener(p.host!, f) : (f.image ?? defaultImage(f));
        text = this.wfp.record(p.host!, p.t, p.expect === 'denied', p.inbound!, f.src.ip, f.srcPort, f.dst.ip, f.dstPort, f.proto, image);
        break;
      }
      default:
        return undefined;
    }
    const rec: SimRecord = { format: p.fmt, text, key: p.key, time: p.t, expect: p.expect, tag: p.tag };
    if (p.attackId) rec.attackId = p.attackId;
    return rec;
  }
}

/** The process that owns the socket a connection arrives at (WFP inbound `Application`). */
function listener(host: Entity, f: FlowActivity): string {
  if (f.dst.role === 'broadcast') return f.dstPort === 137 || f.dstPort === 138 ? WIN.system : WIN.svchost;
  const svc = host.services.find((s) => s.port === f.dstPort && s.proto === f.proto);
  if (svc && svc.process.startsWith('\\') || svc?.process === WIN.system) return svc.process;
  if (f.dstPort >= DYN_RPC.lo) return host.role === 'dc' ? WIN.lsass : WIN.services;
  return WIN.system;
}

function defaultImage(f: FlowActivity): string {
  switch (f.dstPort) {
    case 53:
    case 389:
      return WIN.svchost;
    case 88:
      return WIN.lsass;
    case 445:
    case 139:
    case 137:
    case 138:
      return WIN.system;
    default:
      return WIN.svchost;
  }
}
