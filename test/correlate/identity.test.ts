import { CorrelationEngine } from '../../src/correlate/engine';
import { HOUR, MIN, T0, allowed, denied, ip, keyOf, pod, run } from './builder';

/** Identity first: a workload keeps its history across addresses; an address does not carry one. */
describe('entity identity', () => {
  const b = ip('10.9.0.2');
  const c = ip('10.9.0.3');

  it('a pod that restarts with a new IP keeps its history', () => {
    const before = pod('worker-0', '10.244.0.5', { id: 'worker-0' });
    const after = pod('worker-0', '10.244.7.9', { id: 'worker-0' });
    const r = run([denied(before, b, 445, T0), denied(after, c, 445, T0 + 10 * MIN)]);
    expect(r.opened).toHaveLength(1); // 4 + 4: one campaign
    expect(r.opened[0]!.root).toBe(keyOf(before));
    expect(r.opened[0]!.path.nodes).toEqual([keyOf(before), keyOf(b), keyOf(c)]);
    expect(r.opened[0]!.entities[0]!.ip).toBe('10.244.7.9');
  });

  it('a new pod that reuses an old IP does not inherit its history', () => {
    const old = pod('job-a', '10.244.0.5');
    const fresh = pod('job-b', '10.244.0.5');
    const r = run([denied(old, b, 445, T0), denied(fresh, c, 445, T0 + 10 * MIN)]);
    expect(r.changes).toEqual([]); // 4 and 4, two different entities
  });

  it('an address-only endpoint resolves to the workload that holds the address', () => {
    const w = pod('api-1', '10.244.1.1');
    const r = run([allowed(w, ip('10.0.0.53'), 53, T0), denied(ip('10.244.1.1'), b, 445, T0 + 1), denied(w, c, 445, T0 + 2)]);
    expect(r.opened).toHaveLength(1);
    expect(r.opened[0]!.root).toBe(keyOf(w));
  });

  it('after the address moves to a new pod, address-only events belong to the new pod', () => {
    const old = pod('job-a', '10.244.0.5');
    const fresh = pod('job-b', '10.244.0.5');
    const r = run([
      denied(old, b, 445, T0),
      allowed(fresh, ip('10.0.0.53'), 53, T0 + MIN),
      denied(ip('10.244.0.5'), c, 445, T0 + 2 * MIN),
      denied(fresh, ip('10.9.0.4'), 445, T0 + 3 * MIN),
    ]);
    expect(r.opened.map((i) => i.root)).toEqual([keyOf(fresh)]);
    expect(r.opened[0]!.path.nodes).not.toContain(keyOf(b));
  });

  it('forgets idle entities after the TTL and drops stale address bindings', () => {
    const w = pod('api-1', '10.244.1.1');
    const r = run([allowed(w, pod('db', '10.244.9.9'), 5432, T0)], { limits: { entityTtlMs: HOUR } });
    expect(r.engine.size).toEqual({ entities: 1, incidents: 0, bindings: 1 }); // a plain permitted flow: only its source
    r.engine.ingest(denied(w, pod('db', '10.244.9.9'), 9000, T0 + MIN));
    expect(r.engine.size).toEqual({ entities: 2, incidents: 0, bindings: 2 });
    const swept = r.engine.advance(T0 + 2 * HOUR);
    expect(swept.expired).toBe(2);
    expect(r.engine.size).toEqual({ entities: 0, incidents: 0, bindings: 0 });
  });

  it('evicts the least risky idle entities at the cap, never the root of a live incident', () => {
    const ws1 = { ip: '10.1.0.1', workload: { kind: 'host' as const, id: 'ws1', name: 'ws1', labels: { 'cordon.io/role': 'workstation' } } };
    const ws2 = { ip: '10.1.0.2', workload: { kind: 'host' as const, id: 'ws2', name: 'ws2', labels: { 'cordon.io/role': 'workstation' } } };
    const noise = Array.from({ length: 60 }, (_, i) => allowed(ip(`10.7.0.${i + 1}`), ip('10.0.0.53'), 53, T0 + 1000 + i));
    // endpoint mapper: a lone attempt that stands on its own (a lone SMB one would wait for corroboration)
    const r = run([denied(ws1, ws2, 135, T0), ...noise, denied(ws1, ip('10.1.0.3'), 445, T0 + 5000)], { limits: { maxEntities: 20 } });
    expect(r.engine.size.entities).toBeLessThanOrEqual(20);
    expect(r.engine.evicted).toBeGreaterThan(0);
    expect(r.opened).toHaveLength(1);
    expect(r.updated).toHaveLength(1); // the root survived eviction: same incident, new edge
    expect(r.incidents[0]!.path.edges).toHaveLength(2);
  });

  it('never forgets an entity learned to be a domain controller, through eviction, its TTL and a snapshot; up to maxLearnedRoles', () => {
    const dc = ip('10.0.0.10');
    const kerberos = (i: number) => allowed(ip(`10.1.0.${i + 1}`), dc, 88, T0 + i);
    const noise = Array.from({ length: 60 }, (_, i) => allowed(ip(`10.7.0.${i + 1}`), ip('10.0.0.53'), 53, T0 + 1000 + i));
    const limits = { maxEntities: 20, entityTtlMs: HOUR };
    const r = run([kerberos(0), ...noise], { limits });
    expect(r.engine.evicted).toBeGreaterThan(0);
    r.engine.advance(T0 + 3 * HOUR);
    const copy = new CorrelationEngine({ limits });
    copy.load(r.engine.snapshot());
    copy.advance(T0 + 6 * HOUR);
    for (const e of [r.engine, copy]) expect(e.roles.effective(e.entity(keyOf(dc))!.role, e.entity(keyOf(dc))!.flags).role).toBe('domain-controller');

    const none = run([kerberos(0), ...noise], { limits: { ...limits, maxLearnedRoles: 0 } });
    none.engine.advance(T0 + 3 * HOUR);
    expect(none.engine.entity(keyOf(dc))).toBeUndefined();
  });
});
