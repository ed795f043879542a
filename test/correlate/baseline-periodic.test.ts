import { PeriodicEdges, ServedMemory, decodeServed, encodeServed } from '../../src/correlate/baseline';
import { CorrelationEngine } from '../../src/correlate/engine';
import type { AllowedFlow } from '../../src/events';
import { HOUR, MIN, SEC, T0, allowed, host, keyOf, prng, run, trustingBuilder } from './builder';

/**
 * Periodic scrapers and health checks told apart without configuration (baseline.ts
 * PeriodicEdges, signals.ts periodicVisit): an edge visited on a steady period stops raising
 * sessions once learned, and only that edge.
 */
describe('PeriodicEdges: steady visits of one edge', () => {
  const visits = (p: PeriodicEdges, times: readonly number[], dst = 'node:a', port = 10250) => times.map((t) => p.note(dst, port, t));

  it.each([15, 30, 60])('learns a %d s scrape with a few hundred ms of jitter by the sixth visit', (s) => {
    const rnd = prng(s);
    const times = Array.from({ length: 10 }, (_, i) => T0 + i * s * SEC + Math.round((rnd() - 0.5) * 600));
    const out = visits(new PeriodicEdges(), times);
    expect(out.slice(0, 5)).toEqual([false, false, false, false, false]);
    expect(out.slice(5)).toEqual([true, true, true, true, true]);
  });

  it('does not learn irregular visits, and a visit far off the period starts over', () => {
    const rnd = prng(7);
    let t = T0;
    for (let run = 0; run < 20; run++) {
      const irregular = Array.from({ length: 60 }, () => (t += (5 + rnd() * 55) * SEC));
      expect(visits(new PeriodicEdges(), irregular).some(Boolean)).toBe(false);
    }
    const p = new PeriodicEdges();
    const steady = Array.from({ length: 6 }, (_, i) => T0 + i * 30 * SEC);
    expect(visits(p, steady).at(-1)).toBe(true);
    expect(p.note('node:a', 10250, T0 + 5 * 30 * SEC + 3 * MIN)).toBe(false); // a gap 7 periods long
    expect(p.isPeriodic('node:a', 10250)).toBe(false);
  });

  it('counts arrivals less than a second apart as one visit (retries, two sensors)', () => {
    const times = [0, 1, 2, 3, 4, 5].flatMap((i) => [T0 + i * 30 * SEC, T0 + i * 30 * SEC + 200]);
    const out = visits(new PeriodicEdges(), times);
    expect(out.at(-1)).toBe(true);
    expect(new PeriodicEdges().note('node:a', 10250, T0)).toBe(false);
  });

  it('is per edge: another port or destination is its own edge', () => {
    const p = new PeriodicEdges();
    visits(p, [0, 1, 2, 3, 4, 5].map((i) => T0 + i * 15 * SEC));
    expect(p.isPeriodic('node:a', 10250)).toBe(true);
    expect(p.isPeriodic('node:a', 22)).toBe(false);
    expect(p.isPeriodic('node:b', 10250)).toBe(false);
  });

  it('holds at most CAP edges, the least recently visited giving way', () => {
    const p = new PeriodicEdges();
    for (let i = 0; i < 200; i++) p.note(`node:${i}`, 10250, T0 + i * SEC);
    expect(p.dst).toHaveLength(PeriodicEdges.CAP);
    expect(p.num).toHaveLength(PeriodicEdges.CAP * 4);
    expect(p.dst).toContain('node:199');
    expect(p.dst).not.toContain('node:0');
  });
});

describe('periodic edges in the engine', () => {
  const ws = (i: number) => host(`ws${i}`, `10.1.0.${i}`, 'workstation');
  const poller = ws(100); // a desk-side agent polling other desks over WinRM: not described anywhere
  const sessions = (events: AllowedFlow[], engine?: CorrelationEngine) =>
    run(events, engine).incidents.flatMap((i) => i.evidence.items).filter((i) => i.rule === 'admin_session');

  /** `targets` desks polled round-robin every `periodMs` for `cycles` cycles. */
  const polls = (targets: number, periodMs: number, cycles: number, from = 0): AllowedFlow[] =>
    Array.from({ length: cycles * targets }, (_, k) => {
      const cycle = Math.floor(k / targets) + from;
      const i = k % targets;
      return allowed(poller, ws(i + 1), 5985, T0 + cycle * periodMs + i * 100);
    });

  it('a poller that churns its session table (24 targets, 16 kept) stops raising sessions once its edges are periodic', () => {
    const early = sessions(polls(24, 30 * SEC, 8));
    const late = sessions(polls(24, 30 * SEC, 60));
    const count = (items: typeof early) => items.reduce((n, i) => n + i.count, 0);
    expect(count(early)).toBeGreaterThan(24); // the churn: every cycle's targets were forgotten and came back
    expect(count(late)).toBe(count(early)); // learned by the sixth visit: 54 more cycles add nothing
  });

  it('an attacker periodic toward one peer still raises its sessions and fan-out to the others', () => {
    const beacon = Array.from({ length: 10 }, (_, i) => allowed(poller, ws(1), 5985, T0 + i * MIN));
    const moves = [2, 3, 4, 5].map((i) => allowed(poller, ws(i), 5985, T0 + 10 * MIN + i * SEC));
    const r = run([...beacon, ...moves]);
    const items = r.incidents.flatMap((i) => i.evidence.items);
    expect(items.filter((i) => i.rule === 'admin_session').map((i) => i.dst).sort()).toEqual(
      [1, 2, 3, 4, 5].map((i) => keyOf(ws(i))).sort(),
    );
    expect(items.some((i) => i.rule === 'session_fan_out')).toBe(true);
  });

  it("never damps an edge's first visit, nor another service on a periodic peer", () => {
    const beacon = Array.from({ length: 10 }, (_, i) => allowed(poller, ws(1), 5985, T0 + i * MIN));
    const r = run([...beacon, allowed(poller, ws(1), 445, T0 + 10 * MIN + SEC)]);
    const items = r.incidents.flatMap((i) => i.evidence.items).filter((i) => i.rule === 'admin_session');
    expect(items.map((i) => i.port).sort()).toEqual([445, 5985]);
  });

  it('keeps what it learned through a snapshot', () => {
    const config = trustingBuilder();
    const first = run(polls(24, 30 * SEC, 10), new CorrelationEngine(config));
    const restored = CorrelationEngine.restore(JSON.parse(JSON.stringify(first.engine.snapshot())), config);
    expect(restored.entity(keyOf(poller))!.periodic!.isPeriodic(keyOf(ws(1)), 5985)).toBe(true);
    const before = sessions([], restored).reduce((n, i) => n + i.count, 0);
    expect(sessions(polls(24, 30 * SEC, 10, 10), restored).reduce((n, i) => n + i.count, 0)).toBe(before);
  });
});

describe('ServedMemory: who reached a destination on which service, packed', () => {
  it('learns a fleet service from `need` distinct sources within the window, per service', () => {
    const m = new ServedMemory();
    expect(m.note('winrm', 'a', T0, HOUR, 3)).toBe(false);
    expect(m.note('winrm', 'a', T0 + 1, HOUR, 3)).toBe(false); // the same source again
    expect(m.note('smb', 'b', T0 + 2, HOUR, 3)).toBe(false); // another service
    expect(m.note('winrm', 'b', T0 + 3, HOUR, 3)).toBe(false);
    expect(m.note('winrm', 'c', T0 + 2 * HOUR, HOUR, 3)).toBe(false); // a and b are outside the window
    expect(m.note('winrm', 'd', T0 + 2 * HOUR + 1, HOUR, 3)).toBe(false);
    expect(m.note('winrm', 'e', T0 + 2 * HOUR + 2, HOUR, 3)).toBe(true);
    expect(m.serves('winrm')).toBe(true);
    expect(m.serves('smb')).toBe(false);
  });

  it('keeps at most CAP contacts, the oldest giving way, and reads snapshots of the unpacked form', () => {
    const m = new ServedMemory();
    for (let i = 0; i < 40; i++) m.note('rdp', `s${i}`, T0 + i * MIN, HOUR, 64);
    expect(m.src).toHaveLength(ServedMemory.CAP);
    expect(m.src).toContain('s39');
    expect(m.src).not.toContain('s0');
    const encoded = encodeServed(m);
    expect(encoded[0].every((svc) => svc === 3)).toBe(true); // SERVICE_CLASSES: rdp is the fourth
    expect(encoded[2]).toContain(T0 + 39 * MIN);
    const back = decodeServed(JSON.parse(JSON.stringify(encoded)));
    expect(back.src).toEqual(m.src);
    expect(back.num).toEqual(m.num);
    expect(decodeServed([[0, 4], ['x', 'y'], [T0, T0 + 1], 0b10000]).serves('winrm')).toBe(true);
  });
});
