/**
 * Correlation engine benchmark: the pure engine alone, on one core.
 *
 *   npx tsc -p tsconfig.build.json && node dist/bench/correlate.js [--events=5000000] [--entities=100000]
 *
 * Generates events in-process (mostly benign allowed and denied flows across the active
 * entities, some of the allowed ones remote-administration sessions to each entity's usual admin
 * peer, a few hundred attackers moving laterally, some anomalies), feeds them chunk by chunk,
 * and times only `engine.ingest`. Every event is a fresh object, as if just parsed from Kafka.
 * State size: heap after GC minus the heap before the engine existed, divided by the entities the
 * engine tracks at the end (the events and the generator are dropped before measuring). The same
 * events are then fed to an engine with allowedFlows off: the difference per entity is what the
 * permitted-session signals and their baseline (who reached whom on which service) cost.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { CorrelationEngine } from '../src/correlate/engine';
import type { CordonEvent, Protocol, WorkloadRef } from '../src/events';

const TARGET_EVENTS_PER_SEC = 300_000;
const TARGET_BYTES_PER_ENTITY = 1024;
/** Cumulative shares of the event mix; anomalies take the rest. */
const MIX = { allowed: 0.75, blocked: 0.97, otherDenied: 0.995, attack: 0.998 };
/** Of the allowed flows, the share that are remote-administration sessions (SMB, RDP, WinRM, SSH). */
const ADMIN_SHARE = 0.04;
const ADMIN_PORTS = [445, 3389, 5985, 22];
const CHUNK = 500; // a consumer batch, just parsed: events are warm and die young, as in the service
const T0 = Date.UTC(2024, 2, 1, 8, 0, 0);

function arg(name: string, fallback: number): number {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`));
  return hit ? Number(hit.split('=')[1]) : fallback;
}

function collector(): () => void {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (exposed) return exposed;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

/** Seeded PRNG (mulberry32): the same run every time. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The world: who exists, whom each one usually talks to, what each one is blocked on. */
class World {
  readonly rnd = prng(42);
  readonly peers: Int32Array;
  readonly ports: Uint16Array;
  readonly blocked: Int32Array;
  readonly blockedPort: Uint16Array;
  private seq = 0;
  private time = T0;

  constructor(
    readonly size: number,
    private readonly stepMs: number,
    private readonly attackers: number,
  ) {
    this.peers = new Int32Array(size * 4);
    this.ports = new Uint16Array(size);
    this.blocked = new Int32Array(size);
    this.blockedPort = new Uint16Array(size);
    const servicePorts = [443, 8080, 5432, 6379, 53, 9092, 3306, 8443];
    for (let i = 0; i < size; i++) {
      for (let j = 0; j < 4; j++) this.peers[i * 4 + j] = this.int(size);
      this.ports[i] = servicePorts[this.int(servicePorts.length)] as number;
      this.blocked[i] = this.int(size);
      this.blockedPort[i] = this.rnd() < 0.05 ? 5432 : 9000 + this.int(50); // 5%: an app blocked on its database
    }
  }

  int(n: number): number {
    return Math.floor(this.rnd() * n);
  }

  /** Entity i as a fresh endpoint: pods, some workstations (role label), a few domain controllers. */
  endpoint(i: number, port: number): { ip: string; port: number; workload: WorkloadRef } {
    const ip = `10.${(i >> 14) & 255}.${(i >> 7) & 127}.${(i & 127) + 1}`; // unique, never a .255 broadcast
    return { ip, port, workload: this.workload(i) };
  }

  private workload(i: number): WorkloadRef {
    if (i % 10 === 0) {
      const labels = { 'cordon.io/role': 'workstation' };
      return { kind: 'host', id: `ws-${i}.corp.example`, name: `WS-${i}`, labels };
    }
    if (i % 25_000 === 1) {
      const labels = { 'cordon.io/role': 'domain-controller' };
      return { kind: 'host', id: `dc-${i}.corp.example`, name: `DC-${i}`, labels };
    }
    const labels = { app: `svc-${i % 997}`, tier: 'backend' };
    return { kind: 'pod', id: `app-${i}`, name: `app-${i}`, namespace: `team-${i % 200}`, labels };
  }

  flow(src: number, dst: number, port: number, denied: boolean): CordonEvent {
    this.time += this.stepMs;
    const protocol: Protocol = 'tcp';
    return {
      id: `bench-${++this.seq}`,
      time: Math.floor(this.time),
      src: this.endpoint(src, 49152 + (this.seq & 8191)),
      dst: this.endpoint(dst, port),
      protocol,
      dstPort: port,
      action: denied ? 'denied' : 'allowed',
      observer: { type: 'bench', name: 'generator' },
    } as CordonEvent;
  }

  next(): CordonEvent {
    const r = this.rnd();
    const src = this.int(this.size);
    if (r < MIX.allowed * ADMIN_SHARE) return this.flow(src, this.peers[src * 4] as number, ADMIN_PORTS[src % ADMIN_PORTS.length] as number, false);
    if (r < MIX.allowed) return this.flow(src, this.peers[src * 4 + this.int(4)] as number, this.ports[src] as number, false);
    if (r < MIX.blocked) return this.flow(src, this.blocked[src] as number, this.blockedPort[src] as number, true);
    if (r < MIX.otherDenied) return this.flow(src, this.peers[src * 4 + this.int(4)] as number, 8000 + this.int(2000), true);
    if (r < MIX.attack) return this.attack();
    this.time += this.stepMs;
    return {
      id: `bench-${++this.seq}`,
      time: Math.floor(this.time),
      entity: this.endpoint(this.int(this.size), 0).workload,
      kind: 'new_edge',
      score: this.rnd(),
      detector: 'bench',
    };
  }

  /** One of the attackers tries remote administration on a random host. */
  private attack(): CordonEvent {
    const who = (this.int(this.attackers) * 7919) % this.size;
    const ports = [445, 135, 3389, 5985, 22, 10250];
    return this.flow(who, this.int(this.size), ports[this.int(ports.length)] as number, true);
  }
}

function pct(share: number): string {
  return `${Math.round(share * 1000) / 10}%`;
}

function mb(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MB`;
}

interface Run {
  engine: CorrelationEngine;
  seconds: number;
  state: number;
  counts: { incident_opened: number; incident_updated: number; policy_gap: number };
}

/** Feeds `total` generated events to a fresh engine; engine time and state after GC. */
function runEngine(total: number, entities: number, allowedFlows: boolean, gc: () => void): Run {
  gc();
  const baseline = process.memoryUsage().heapUsed;
  let world: World | null = new World(entities, 3600_000 / total, 300); // one hour of event time
  const engine = new CorrelationEngine({ limits: { maxEntities: entities * 2 }, allowedFlows: { enabled: allowedFlows } });
  const counts = { incident_opened: 0, incident_updated: 0, policy_gap: 0 };
  let elapsedNs = 0n;
  let chunk: CordonEvent[] = new Array<CordonEvent>(CHUNK);
  for (let done = 0; done < total; done += CHUNK) {
    const n = Math.min(CHUNK, total - done);
    for (let i = 0; i < n; i++) chunk[i] = world.next();
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      const changes = engine.ingest(chunk[i] as CordonEvent);
      for (let k = 0; k < changes.length; k++) counts[(changes[k] as { type: keyof typeof counts }).type] += 1;
    }
    elapsedNs += process.hrtime.bigint() - start;
  }
  chunk = [];
  world = null;
  gc();
  gc();
  return { engine, seconds: Number(elapsedNs) / 1e9, state: process.memoryUsage().heapUsed - baseline, counts };
}

function main(): void {
  const total = arg('events', 5_000_000);
  const entities = arg('entities', 100_000);
  const gc = collector();
  const { engine, seconds, state, counts } = runEngine(total, entities, true, gc);
  const without = runEngine(total, entities, false, gc);
  const baselinePerEntity = state / engine.size.entities - without.state / without.engine.size.entities;

  const rate = total / seconds;
  const tracked = engine.size.entities;
  const perEntity = state / tracked;
  const ok = (pass: boolean) => (pass ? 'PASS' : 'FAIL');
  const n = (x: number) => Math.round(x).toLocaleString('en-US');
  const lines = [
    'cordon correlation engine benchmark (pure engine, one core)',
    `  events            ${n(total)} over ${n(entities)} entities, one hour of event time ` +
      `(${pct(MIX.allowed)} allowed, ${pct(MIX.allowed * ADMIN_SHARE)} admin sessions, every entity to its usual admin peer, ${pct(MIX.otherDenied - MIX.allowed)} benign denied, ` +
      `${pct(MIX.attack - MIX.otherDenied)} attacks by 300 attackers, ${pct(1 - MIX.attack)} anomalies)`,
    `  engine time       ${seconds.toFixed(2)} s (generation excluded)`,
    `  throughput        ${n(rate)} events/s   target >= ${n(TARGET_EVENTS_PER_SEC)}  ${ok(rate >= TARGET_EVENTS_PER_SEC)}`,
    `  state             ${mb(state)} for ${n(tracked)} tracked entities, ${n(engine.size.bindings)} address bindings, ` +
      `${engine.size.incidents} incidents (heap after GC minus heap before the engine)`,
    `  bytes per entity  ${n(perEntity)} B   target < ${TARGET_BYTES_PER_ENTITY}  ${ok(perEntity < TARGET_BYTES_PER_ENTITY)}`,
    `  of which sessions ${n(baselinePerEntity)} B per entity: permitted-session signals and their baseline (the same events with allowedFlows off: ${n(without.state / without.engine.size.entities)} B per entity)`,
    `  output            ${counts.incident_opened} incidents opened, ${counts.incident_updated} updates, ` +
      `${counts.policy_gap} policy gaps`,
    `  engine stats      ${JSON.stringify({ ...engine.stats, evicted: engine.evicted })}`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

main();
