import type { CordonEvent } from '../../src/events';
import { CorrelationEngine, type Change, type EngineSnapshot } from '../../src/correlate/engine';
import { replay } from '../../src/correlate/replay';
import { HOUR, MIN, SEC, T0, allowed, anomaly, denied, host, ip, pod, prng, trustingBuilder } from './builder';

/** A mixed stream: benign allowed/denied traffic, retries, a scan, a propagating attack, anomalies. */
function stream(seed: number, n: number): CordonEvent[] {
  const rnd = prng(seed);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rnd() * list.length)] as T;
  const pods = Array.from({ length: 60 }, (_, i) => pod(`app-${i}`, `10.244.${i >> 4}.${(i & 15) + 1}`, { role: i % 3 ? 'server' : 'workstation' }));
  const hosts = Array.from({ length: 30 }, (_, i) => host(`ws${i}`, `10.1.0.${i + 1}`, 'workstation'));
  const dc = host('dc1', '10.0.0.10');
  const everyone = [...pods, ...hosts];
  const events: CordonEvent[] = [];
  let t = T0;
  for (let i = 0; i < n; i++) {
    t += Math.floor(rnd() * 20 * SEC);
    const r = rnd();
    const src = pick(everyone);
    if (r < 0.5) events.push(allowed(src, pick(everyone), pick([443, 8080, 53, 5432]), t));
    else if (r < 0.55) events.push(allowed(src, dc, pick([88, 389, 445, 135]), t));
    else if (r < 0.8) events.push(denied(src, pick(everyone), pick([8443, 9000, 7000, 8080]), t));
    else if (r < 0.81) events.push(denied(src, pick(everyone), pick([6379, 22]), t));
    else if (r < 0.9) events.push(denied(pods[0]!, pods[1]!, 5432, t)); // a retrying app
    else if (r < 0.95) events.push(denied(pick(hosts), pick([...hosts, dc]), pick([445, 135, 3389, 5985]), t));
    else if (r < 0.98) events.push(denied(ip('10.66.0.1'), ip(`10.9.${Math.floor(rnd() * 4)}.${1 + Math.floor(rnd() * 200)}`), pick([445, 80, 8080]), t));
    else events.push(anomaly(pick(everyone), pick(['new_edge', 'credential_use', 'rare_port'] as const), rnd(), t));
    if (i % 997 === 0) t += 3 * HOUR; // quiet stretches: incidents go quiet, entities age
  }
  return events;
}

function feed(engine: CorrelationEngine, events: readonly CordonEvent[]): Change[] {
  const out: Change[] = [];
  for (const e of events) out.push(...engine.ingest(e));
  return out;
}

describe('determinism', () => {
  const events = stream(7, 6000);

  it('the stream exercises the engine', () => {
    const engine = new CorrelationEngine();
    const changes = feed(engine, events);
    const count = (type: Change['type']) => changes.filter((c) => c.type === type).length;
    expect(count('incident_opened')).toBeGreaterThan(3);
    expect(count('incident_updated')).toBeGreaterThan(3);
    expect(count('policy_gap')).toBeGreaterThan(0);
    expect(engine.listIncidents().some((i) => i.status === 'open')).toBe(true);
  });

  it('same events in the same order give deep-equal output', () => {
    const a = new CorrelationEngine();
    const b = new CorrelationEngine();
    expect(feed(a, events)).toEqual(feed(b, events));
    expect(a.listIncidents()).toEqual(b.listIncidents());
  });

  it.each([1, 1500, 3001, 5999])('snapshot (through JSON) at event %i and restore gives identical output', (cut) => {
    const whole = new CorrelationEngine();
    const expected = feed(whole, events);

    const first = new CorrelationEngine();
    const head = feed(first, events.slice(0, cut));
    const snap = JSON.parse(JSON.stringify(first.snapshot())) as EngineSnapshot;
    const second = CorrelationEngine.restore(snap);
    const tail = feed(second, events.slice(cut));

    expect([...head, ...tail]).toEqual(expected);
    expect(second.listIncidents()).toEqual(whole.listIncidents());
    expect(second.snapshot()).toEqual(whole.snapshot());
  });

  it('snapshots by partition: a predicate or a key set, restored together equal the whole', () => {
    const engine = new CorrelationEngine();
    feed(engine, events.slice(0, 4000));
    const whole = engine.snapshot();
    const even = (key: string) => key.length % 2 === 0;
    const a = engine.snapshot(even);
    const b = engine.snapshot(whole.entities.map((e) => e[0]).filter((k) => !even(k)));
    expect(a.entities.length + b.entities.length).toBe(whole.entities.length);
    expect(a.entities.every((e) => even(e[0]))).toBe(true);
    const merged = CorrelationEngine.restore([a, b]);
    expect(feed(merged, events.slice(4000))).toEqual(feed(CorrelationEngine.restore(whole), events.slice(4000)));
  });

  it('a snapshot is compact JSON: numbers and short arrays per entity, bounded incidents, no events', () => {
    const engine = new CorrelationEngine();
    feed(engine, events);
    const snap = engine.snapshot();
    const text = JSON.stringify(snap);
    expect(text).not.toContain('"observer"');
    const perEntity = JSON.stringify(snap.entities).length / snap.entities.length;
    const perIncident = JSON.stringify(snap.incidents).length / snap.incidents.length;
    process.stdout.write(`snapshot: ${snap.entities.length} entities, ${perEntity.toFixed(0)} B each; ${snap.incidents.length} incidents, ${perIncident.toFixed(0)} B each\n`);
    expect(perEntity).toBeLessThan(1024);
    expect(perIncident).toBeLessThan(16 * 1024);
  });

  it('forgets a partition: its entities and the incidents they root', () => {
    const engine = new CorrelationEngine();
    feed(engine, events.slice(0, 4000));
    const even = (key: string) => key.length % 2 === 0;
    const before = engine.snapshot();
    const gone = engine.forget(even);
    expect(gone).toBe(before.entities.filter((e) => even(e[0])).length);
    const after = engine.snapshot();
    expect(after.entities.every((e) => !even(e[0]))).toBe(true);
    expect(after.incidents.every((d) => !even(d.root))).toBe(true);
    expect(after.bindings.every(([, key]) => !even(key))).toBe(true);
    expect(after).toEqual(engine.snapshot((key) => !even(key)));
  });

  it('rejects what is not a snapshot', () => {
    expect(() => CorrelationEngine.restore({ v: 2 } as unknown as EngineSnapshot)).toThrow(/snapshot/);
  });
});

describe('replay', () => {
  it('sorts by event time (stably), runs the engine, returns final incidents and policy gaps', () => {
    const events = stream(11, 3000);
    const shuffled = [...events].reverse();
    const a = replay(events);
    const b = replay(shuffled.reverse());
    expect(a.incidents).toEqual(b.incidents);
    expect(a.policyGaps.length).toBeGreaterThan(0);
    expect(new Set(a.policyGaps.map((g) => g.id)).size).toBe(a.policyGaps.length);
    const scrambled = replay([...events].sort((x, y) => (x.id < y.id ? -1 : 1)));
    expect(scrambled.incidents).toEqual(a.incidents);
  });

  it('keeps equal-time events in their input order', () => {
    const a = ip('10.9.0.1');
    const b = ip('10.9.0.2');
    // endpoint mapper first, then the dynamic port, same millisecond: an RPC call (opens)
    expect(replay([allowed(a, b, 135, T0), denied(a, b, 50000, T0)]).incidents).toHaveLength(1);
    // the other way round it is an ordinary port
    expect(replay([denied(a, b, 50000, T0), allowed(a, b, 135, T0)]).incidents).toHaveLength(0);
  });

  it('reports the final state of an incident, not the first version', () => {
    const ws1 = host('ws1', '10.1.0.1', 'workstation');
    const r = replay([denied(ws1, host('ws2', '10.1.0.2', 'workstation'), 135, T0), denied(ws1, host('ws3', '10.1.0.3', 'workstation'), 445, T0 + MIN)], trustingBuilder());
    expect(r.incidents).toHaveLength(1);
    expect(r.incidents[0]!.path.edges).toHaveLength(2);
    expect(r.changes.map((c) => c.type)).toEqual(['incident_opened', 'incident_updated']);
  });
});
