import type { CordonEvent } from '../../src/events';
import { CorrelationEngine } from '../../src/correlate/engine';
import { HandoffMemory, broadcast, decodeHandoff, forwardId, handoffKey, type Forward, type Handoff } from '../../src/correlate/handoff';
import type { Incident } from '../../src/correlate/incident';
import { replay } from '../../src/correlate/replay';
import { partitionFor } from '../../src/partition';
import { Cluster, shape } from './cluster';
import { SERVES_DIRECTORY } from '../../src/correlate/roles';
import { HOUR, MIN, SEC, T0, allowed, anomaly, denied, host, keyOf, trustingBuilder, type Party } from './builder';

/** Hosts named `<prefix><n>` whose keys land on the given partitions, in order. */
function hostsOn(partitions: number, wanted: number[], prefix = 'ws'): Party[] {
  const out: Party[] = [];
  for (let n = 1; out.length < wanted.length && n < 500; n++) {
    const h = host(`${prefix}${n}`, `10.7.${Math.floor(n / 200)}.${n % 200}`, 'workstation');
    if (partitionFor(keyOf(h), partitions) === wanted[out.length]) out.push(h);
  }
  return out;
}


describe('hop chains across partitions (hand-offs)', () => {
  const [a, b, c] = hostsOn(2, [0, 1, 0]);

  it('joins A to B on one partition and B to C on the other into one incident rooted at A, as replay does', () => {
    const events = [denied(a!, b!, 135, T0), denied(b!, c!, 445, T0 + 30 * MIN)];
    const cluster = new Cluster(2).feed(events);
    const live = cluster.incidents();
    expect(live).toHaveLength(1);
    expect(live[0]!.root).toBe(keyOf(a!));
    expect(live[0]!.path.nodes).toEqual([keyOf(a!), keyOf(b!), keyOf(c!)]);
    expect(live[0]!.entities.find((e) => e.key === keyOf(b!))!.position).toBe('pivot');
    expect(live[0]!.evidence.byRule.propagation).toEqual({ count: 1, weight: 4 });
    expect(live.map(shape)).toEqual(replay(events, trustingBuilder()).incidents.map(shape));
    expect(cluster.sent.filter((h) => !broadcast(h)).map((h) => h.type)).toEqual(['reach', 'forward']);
    // B's partition holds no incident of its own: the evidence went to A's
    expect(cluster.engineOf(keyOf(b!)).listIncidents()).toEqual([]);
  });

  it('does the same for permitted sessions (WinRM A to B, then SMB B to C), and along three partitions', () => {
    const sessions = [allowed(a!, b!, 5985, T0), allowed(b!, c!, 445, T0 + 10 * MIN)];
    expect(new Cluster(2).feed(sessions).incidents().map(shape)).toEqual(replay(sessions, trustingBuilder()).incidents.map(shape));
    const [p, q, r, s] = hostsOn(3, [0, 1, 2, 0], 'h');
    const chain = [denied(p!, q!, 135, T0), denied(q!, r!, 445, T0 + 10 * MIN), denied(r!, s!, 5985, T0 + 20 * MIN)];
    const live = new Cluster(3).feed(chain).incidents();
    expect(live).toHaveLength(1);
    expect(live[0]!.path.nodes).toEqual([keyOf(p!), keyOf(q!), keyOf(r!), keyOf(s!)]);
    expect(live.map(shape)).toEqual(replay(chain, trustingBuilder()).incidents.map(shape));
  });

  it('links a target reached before the incident opened once it opens, and carries an anomaly on the pivot', () => {
    // A's first attempt (4) pulls B in; its second opens the incident: only then is B told
    const d = hostsOn(2, [1], 'x')[0]!;
    const events = [denied(a!, b!, 445, T0), denied(a!, d, 135, T0 + MIN), anomaly(b!, 'process_spawn', 0.9, T0 + 20 * MIN), denied(b!, c!, 5985, T0 + 30 * MIN)];
    const cluster = new Cluster(2).feed(events);
    expect(cluster.sent.filter((h) => h.type === 'reach').map((h) => (h as { target: string }).target).sort()).toEqual([keyOf(b!), keyOf(d)].sort());
    expect(cluster.incidents().map(shape)).toEqual(replay(events, trustingBuilder()).incidents.map(shape));
    expect(cluster.incidents()[0]!.evidence.byRule.anomaly?.count).toBe(1);
  });

  it('still joins when hand-offs arrive after the events of their batch', () => {
    const events = [denied(a!, b!, 135, T0), denied(a!, c!, 135, T0 + MIN)];
    const cluster = new Cluster(2, trustingBuilder(), 'later').feed(events);
    cluster.feed([denied(b!, hostsOn(2, [1], 'y')[0]!, 445, T0 + 30 * MIN)]);
    expect(cluster.incidents().map((i) => i.root)).toEqual([keyOf(a!)]);
  });

  it('re-roots what B gathered before a late reach arrived (a backlog read at its own pace), as replay does', () => {
    const peer = { ip: '10.7.9.9' }; // a host of unknown role: B's attempt alone opens nothing
    const events = [denied(a!, b!, 135, T0), denied(b!, peer, 445, T0 + 10 * MIN)];
    const cluster = new Cluster(2, trustingBuilder(), 'later').feed(events);
    expect(cluster.incidents().map(shape)).toEqual(replay(events, trustingBuilder()).incidents.map(shape));
    expect(cluster.incidents()[0]!.path.nodes).toEqual([keyOf(a!), keyOf(b!), 'ip:10.7.9.9']);
    expect(cluster.engineOf(keyOf(b!)).entity(keyOf(b!))!.risk).toBe(0);
    expect(cluster.engineOf(keyOf(b!)).handoffStats.forwarded).toBe(1);
  });

  it('re-roots them too when one engine owns both partitions and read B\'s partition first', () => {
    const peer = { ip: '10.7.9.9' };
    const events = [denied(a!, b!, 135, T0), denied(b!, peer, 445, T0 + 10 * MIN)];
    const engine = new CorrelationEngine(trustingBuilder());
    engine.shareAcross((key) => partitionFor(key, 2));
    engine.ingest(events[1]!); // B's partition's backlog first
    engine.ingest(events[0]!);
    const changes = engine.takeHandoffs().flatMap((h) => engine.applyHandoff(h));
    expect(changes.map((c) => c.type)).toEqual(['incident_updated']);
    expect(engine.listIncidents().map(shape)).toEqual(replay(events, trustingBuilder()).incidents.map(shape));
  });

  it('applies a repeated hand-off once (a partition replayed after a crash sends the same ones again)', () => {
    const events = [denied(a!, b!, 135, T0), denied(b!, c!, 445, T0 + 30 * MIN)];
    const cluster = new Cluster(2).feed(events);
    const before = shape(cluster.incidents()[0]!);
    for (const h of cluster.sent) expect(cluster.engineOf(handoffKey(h)).applyHandoff(h)).toEqual([]);
    expect(shape(cluster.incidents()[0]!)).toEqual(before);
  });

  it("keeps B's link through a snapshot of B's partition: a restarted owner still joins B to C into A's incident", () => {
    const cluster = new Cluster(2).feed([denied(a!, b!, 135, T0)]);
    const pb = partitionFor(keyOf(b!), 2);
    const own = (key: string) => partitionFor(key, 2) === pb;
    const restored = CorrelationEngine.restore(JSON.parse(JSON.stringify(cluster.engines[pb]!.snapshot(own))), trustingBuilder());
    restored.shareAcross((key) => partitionFor(key, 2));
    cluster.engines[pb] = restored;
    cluster.feed([denied(b!, c!, 445, T0 + 30 * MIN)]);
    expect(cluster.incidents().map((i) => [i.root, i.path.nodes.length])).toEqual([[keyOf(a!), 3]]);
  });

  it('never makes a protected host a pivot: a reach naming a domain controller is refused, its moves stay its own', () => {
    const config = trustingBuilder({ roles: { inventory: [{ selector: { name: b!.workload!.name }, role: 'domain-controller' }] } });
    const dc = host(b!.workload!.name, b!.ip!); // same key as B, no role label: the inventory says DC
    const attack = [denied(a!, dc, 135, T0), denied(a!, dc, 445, T0 + MIN), denied(dc, c!, 5985, T0 + 30 * MIN)];
    // B known on its partition before the reach: refused on arrival
    const known = new Cluster(2, config).feed([allowed(dc, c!, 80, T0 - MIN), ...attack]);
    expect(known.engineOf(keyOf(b!)).handoffStats.refused).toBe(2); // one reach per new attempt on B
    // B first seen after it: the link is kept but never followed from a protected host
    const unknown = new Cluster(2, config).feed(attack);
    for (const cluster of [known, unknown]) {
      expect(cluster.incidents().find((i) => i.root === keyOf(a!))!.path.nodes).not.toContain(keyOf(c!));
      expect(cluster.sent.some((h) => h.type === 'forward')).toBe(false);
    }
  });

  it('sends nothing for a lone spoofed attempt that opens no incident: a hand-off needs a campaign', () => {
    const spoofed = denied(host('ghost', '10.66.0.1', 'workstation'), b!, 445, T0);
    const cluster = new Cluster(2).feed([spoofed]);
    expect(cluster.incidents()).toEqual([]);
    // only the addresses' bindings went out, to every partition: no reach, no forward
    expect(cluster.sent.map((h) => h.type)).toEqual(['bind', 'bind']);
  });

  it("declines evidence for a campaign that was closed meanwhile, and counts it", () => {
    const cluster = new Cluster(2).feed([denied(a!, b!, 135, T0)]);
    const id = cluster.incidents()[0]!.id;
    cluster.engineOf(keyOf(a!)).setStatus(id, 'closed');
    cluster.feed([denied(b!, c!, 445, T0 + 30 * MIN)]);
    expect(cluster.engineOf(keyOf(a!)).handoffStats.declined).toBe(1);
    expect(cluster.incidents().find((i) => i.id === id)!.path.nodes).toEqual([keyOf(a!), keyOf(b!)]);
  });

  it('sends no hand-off in a single process (replay): the chain is joined in memory', () => {
    const r = replay([denied(a!, b!, 135, T0), denied(b!, c!, 445, T0 + 30 * MIN)], trustingBuilder());
    expect(r.engine.takeHandoffs()).toEqual([]);
    expect(r.incidents).toHaveLength(1);
  });

  it('lets no hand-off move the clock: one from far in the future expires nothing', () => {
    const cluster = new Cluster(2).feed([denied(a!, b!, 135, T0)]);
    const ea = cluster.engineOf(keyOf(a!));
    ea.applyHandoff({ type: 'reach', root: 'host:evil', target: keyOf(a!), at: T0 + 1000 * 24 * HOUR, foothold: true });
    cluster.feed([denied(a!, c!, 445, T0 + 20 * MIN)]);
    expect(ea.listIncidents().map((i) => [i.root, i.path.nodes.length])).toEqual([[keyOf(a!), 3]]);
  });

  it('expires links after the propagation window', () => {
    const cluster = new Cluster(2).feed([allowed(a!, b!, 5985, T0)]);
    const eb = cluster.engineOf(keyOf(b!));
    expect(eb.snapshot().handoffs!.links.map((l) => l[0])).toEqual([keyOf(b!)]);
    eb.advance(T0 + 25 * HOUR);
    expect(eb.snapshot().handoffs!.links).toEqual([]);
  });
});

describe('hand-off records at the edge', () => {
  const forward: Forward = {
    type: 'forward',
    id: 'a'.repeat(32),
    root: 'host:ws1',
    pivot: 'host:ws2',
    linkedAt: T0,
    at: T0 + MIN,
    found: [{ rule: 'admin_port', weight: 6, at: T0 + MIN, src: 'host:ws2', dst: 'host:ws3', port: 445, service: 'smb', count: 1, reason: 'x', techniques: ['T1021.002'] }],
    edge: { from: 'host:ws2', to: 'host:ws3', port: 445, service: 'smb', denied: true },
    entities: [],
  };

  it('takes a well-formed record', () => {
    expect(decodeHandoff(JSON.stringify(forward))).toEqual({ ok: true, handoff: forward });
    expect(decodeHandoff(JSON.stringify({ type: 'reach', root: 'host:a', target: 'host:b', at: T0, foothold: false })).ok).toBe(true);
  });

  it.each([
    ['not JSON', '{', 'malformed JSON'],
    ['a prototype-polluting key', '{"type":"reach","__proto__":{}}', 'forbidden key'],
    ['an unknown type', JSON.stringify({ ...forward, type: 'merge' }), 'type'],
    ['an inflated weight', JSON.stringify({ ...forward, found: [{ ...forward.found[0], weight: 1e6 }] }), 'found.0.weight'],
    ['a field it does not know', JSON.stringify({ ...forward, extra: 1 }), '(root)'],
    ['no evidence', JSON.stringify({ ...forward, found: [] }), 'found'],
    ['more than 8 pieces of evidence', JSON.stringify({ ...forward, found: Array.from({ length: 9 }, () => forward.found[0]) }), 'found'],
    ['a rule it does not know', JSON.stringify({ ...forward, found: [{ ...forward.found[0], rule: 'trust_me' }] }), 'found.0.rule'],
    ['a bad id', JSON.stringify({ ...forward, id: 'x' }), 'id'],
  ])('refuses %s and names the field', (_what, bytes, field) => {
    const d = decodeHandoff(bytes);
    expect(d.ok).toBe(false);
    expect((d as { reason: string }).reason.startsWith(field)).toBe(true);
  });

  it('keeps at most its cap of links and applied forwards, the oldest going first', () => {
    const m = new HandoffMemory(16);
    for (let i = 0; i < 20; i++) m.link(`host:t${i}`, { root: 'host:a', at: T0 + i, foothold: false });
    expect(m.size.links).toBe(16);
    expect(m.linkOf('host:t3')).toBeUndefined();
    expect(m.linkOf('host:t19')).toEqual({ root: 'host:a', at: T0 + 19, foothold: false });
    // an older reach does not replace a newer link
    expect(m.link('host:t19', { root: 'host:z', at: T0, foothold: true })).toBe(false);
  });
});

describe('a forward applied to the root\'s incident', () => {
  it('keeps the role the root\'s partition knows over the one the forward carries', () => {
    const [a, dc, c] = [host('a1', '10.9.1.1', 'workstation'), host('dc1', '10.9.1.2'), host('c1', '10.9.1.3', 'workstation')];
    const config = trustingBuilder({ roles: { inventory: [{ selector: { name: 'dc1' }, role: 'domain-controller' }] } });
    const engine = new CorrelationEngine(config);
    engine.shareAcross(() => 0);
    engine.ingest(denied(a, c, 135, T0));
    engine.ingest(denied(a, dc, 445, T0 + MIN));
    const body: Omit<Forward, 'id'> = {
      type: 'forward',
      root: keyOf(a),
      pivot: keyOf(c),
      linkedAt: T0,
      at: T0 + 10 * MIN,
      found: [{ rule: 'admin_port', weight: 4, at: T0 + 10 * MIN, src: keyOf(c), dst: keyOf(dc), port: 445, service: 'smb', count: 1, reason: 'r', techniques: [] }],
      edge: { from: keyOf(c), to: keyOf(dc), port: 445, service: 'smb', denied: true },
      entities: [{ entity: { key: keyOf(dc), kind: 'host', role: 'workstation', roleSource: 'label', name: 'dc1' }, position: 'target' }],
    };
    engine.applyHandoff({ ...body, id: forwardId(body) });
    const inc = engine.listIncidents()[0]!;
    expect(inc.path.edges.map((e) => [e.from, e.to])).toContainEqual([keyOf(c), keyOf(dc)]);
    expect(inc.entities.find((e) => e.key === keyOf(dc))).toMatchObject({ role: 'domain-controller', roleSource: 'inventory' });
  });
});

describe('bindings and learned behaviour across partitions (bind, learned, redirect)', () => {
  /** A host whose key and whose bare address land on different partitions of two. */
  function splitHost(name: string, net: string): Party {
    for (let n = 1; ; n++) {
      const h = host(`${name}${n}`, `${net}.${n}`, 'workstation');
      if (partitionFor(keyOf(h), 2) !== partitionFor(`ip:${h.ip}`, 2)) return h;
    }
  }
  const a = splitHost('sa', '10.9.0');
  const [b] = hostsOn(2, [partitionFor(keyOf(a), 2) === 0 ? 1 : 0], 'sb');
  const bare = { ip: a.ip! };

  it('redirects a flow from a bare address to the partition of the workload holding it, as replay attributes it', () => {
    // A's own event binds its address; its peer logs A's next call by address only
    const events = [allowed(a, { ip: '10.9.9.1' }, 443, T0), denied(bare, b!, 445, T0 + MIN), denied(bare, b!, 135, T0 + 2 * MIN)];
    const cluster = new Cluster(2).feed(events);
    expect(cluster.engineOf(`ip:${a.ip}`).handoffStats.redirected).toBe(2);
    expect(cluster.engineOf(`ip:${a.ip}`).entity(`ip:${a.ip}`)).toBeUndefined();
    expect(cluster.incidents().map(shape)).toEqual(replay(events, trustingBuilder()).incidents.map(shape));
    expect(cluster.incidents()[0]!.root).toBe(keyOf(a));
  });

  it('resolves a bare destination address to its workload on a partition that never saw the workload', () => {
    const events = [allowed(a, { ip: '10.9.9.1' }, 443, T0), denied(b!, bare, 445, T0 + MIN)];
    const cluster = new Cluster(2).feed(events);
    const here = cluster.engineOf(keyOf(b!));
    expect(here).not.toBe(cluster.engineOf(keyOf(a)));
    expect(here.entity(keyOf(a))?.ip).toBe(a.ip);
    expect(here.entity(`ip:${a.ip}`)).toBeUndefined();
  });

  it('keeps the bindings through a snapshot of any partition: a restarted replica still redirects', () => {
    const cluster = new Cluster(2).feed([allowed(a, { ip: '10.9.9.1' }, 443, T0)]);
    const own = (key: string) => partitionFor(key, 2) === partitionFor(`ip:${a.ip}`, 2);
    const snap = JSON.parse(JSON.stringify(cluster.engineOf(`ip:${a.ip}`).snapshot(own)));
    const restored = CorrelationEngine.restore(snap, trustingBuilder());
    restored.shareAcross((key) => partitionFor(key, 2));
    const call = denied(bare, b!, 445, T0 + MIN);
    expect(restored.ingest(call)).toEqual([]);
    expect(restored.takeHandoffs()).toEqual([{ type: 'redirect', to: keyOf(a), event: call }]);
  });

  it('announces a binding when a workload is first seen on an address, then once per descriptor refresh while it is', () => {
    const engine = new CorrelationEngine(trustingBuilder({ limits: { descriptorRefreshMs: 10 * MIN } }));
    engine.shareAcross((key) => partitionFor(key, 2));
    for (let m = 0; m < 25; m++) engine.ingest(allowed(a, { ip: '10.9.9.1' }, 443, T0 + m * MIN));
    const binds = engine.takeHandoffs().filter((h) => h.type === 'bind');
    expect(binds.map((h) => (h.type === 'bind' ? [h.ip, h.holder, h.role, (h.at - T0) / MIN] : []))).toEqual([
      [a.ip, keyOf(a), 'workstation', 0],
      [a.ip, keyOf(a), 'workstation', 10],
      [a.ip, keyOf(a), 'workstation', 20],
    ]);
  });

  it('reads an event about an address held on a partition it also owns in place: no redirect', () => {
    const engine = new CorrelationEngine(trustingBuilder());
    engine.shareAcross((key) => partitionFor(key, 2), () => true);
    engine.ingest(allowed(a, { ip: '10.9.9.1' }, 443, T0));
    engine.ingest(denied(bare, b!, 445, T0 + MIN));
    expect(engine.takeHandoffs().map((h) => h.type)).toEqual(['bind', 'bind']);
    expect(engine.entity(keyOf(a))!.risk).toBeGreaterThan(0);
    expect(engine.entity(`ip:${a.ip}`)).toBeUndefined();
  });

  it('ingests a redirected event where it lands, never sending it on again', () => {
    const engine = new CorrelationEngine(trustingBuilder());
    engine.shareAcross((key) => partitionFor(key, 2));
    engine.applyHandoff({ type: 'bind', ip: a.ip!, holder: keyOf(a), role: 'workstation', roleSource: 'label', flags: 0, at: T0 });
    engine.applyHandoff({ type: 'redirect', to: keyOf(a), event: denied(bare, b!, 445, T0 + MIN) });
    expect(engine.takeHandoffs().filter((h) => h.type === 'redirect')).toEqual([]);
    expect(engine.entity(keyOf(a))?.risk).toBeGreaterThan(0);
  });

  it('teaches every partition a domain controller learned on one: spoofed calls to its address stay protected', () => {
    const dc = { ip: '10.9.5.5' };
    const members = Array.from({ length: 6 }, (_, i) => host(`m${i}`, `10.9.1.${i + 1}`, 'workstation'));
    const asking = members.filter((m) => partitionFor(keyOf(m), 2) === 0).slice(0, 2);
    const attacker = members.find((m) => partitionFor(keyOf(m), 2) === 1)!;
    const events = [...asking.map((m, i) => allowed(m, dc, 88, T0 + i * SEC)), denied(attacker, dc, 445, T0 + MIN)];
    const cluster = new Cluster(2).feed(events);
    const there = cluster.engineOf(keyOf(attacker)).entity(`ip:${dc.ip}`)!;
    expect(there.flags & SERVES_DIRECTORY).toBe(SERVES_DIRECTORY);
    expect(cluster.incidents().map(shape)).toEqual(replay(events, trustingBuilder()).incidents.map(shape));
  });

  it.each([
    ['a bind naming no address', { type: 'bind', ip: 'ws1', holder: 'host:ws1', role: 'x', roleSource: 'label', flags: 0, at: T0 }, 'ip'],
    ['a bind with flags out of range', { type: 'bind', ip: '10.0.0.1', holder: 'host:ws1', role: 'x', roleSource: 'label', flags: 1 << 12, at: T0 }, 'flags'],
    ['a learned record that teaches nothing', { type: 'learned', ip: '10.0.0.1', flags: 0, at: T0 }, 'flags'],
    ['a redirect whose event is not one', { type: 'redirect', to: 'host:ws1', event: { action: 'denied' } }, 'event'],
  ])('refuses %s at the edge, naming the field', (_what, record, field) => {
    const decoded = decodeHandoff(JSON.stringify(record));
    expect(decoded.ok).toBe(false);
    expect(decoded.ok ? '' : decoded.reason).toContain(field);
  });
});
